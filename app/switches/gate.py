"""The gate: one raw ASGI middleware, first in the app's stack, that answers 503 with Retry-After for the routes
the current degraded mode closes (maintenance and load shedding: everything but `paths.ESSENTIAL`;
organisations read-only: `paths.ORGANISATION_WRITES`), before any session, CSRF or handler work.

It runs on the sign-up hot path: with no mode on it costs one attribute read of this process's switch board
(board.py), never a Redis call. With a mode on, the verdict per route and method is computed once and kept, and the
French page is rendered once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import msgspec
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, HTTPScope, Receive, Scope, Send

from app.http import route_template
from app.switches import pages
from app.switches.board import SwitchBoard
from app.switches.paths import ESSENTIAL, ORGANISATION_WRITES
from app.switches.patterns import any_matches


@dataclass(frozen=True, slots=True)
class Route:
    essential: bool
    organisation_write: bool
    api: bool


def route_of(method: str, template: str) -> Route:
    return Route(essential=any_matches(ESSENTIAL, method, template),
                 organisation_write=any_matches(ORGANISATION_WRITES, method, template),
                 api=template == "/api" or template.startswith("/api/"))


def _template(scope: HTTPScope) -> str:
    return route_template(scope) or scope["path"]


def _wants_json(scope: HTTPScope, route: Route) -> bool:
    if route.api:
        return True
    return any(name == b"accept" and b"application/json" in value for name, value in scope["headers"])


class SwitchGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[tuple[str, str], Route] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:  # by key: Litestar's State answers attribute reads ten times slower
                board: SwitchBoard = scope["litestar_app"].state["web"].switches
            except KeyError:  # no lifespan ran (an app driven straight through ASGI): no switch to read
                await self.app(scope, receive, send)
                return
            if board.closing:
                http = cast("HTTPScope", scope)
                closed = self._verdict(board, http)
                if closed is not None:
                    await self._refuse(board, http, send, closed)
                    return
        await self.app(scope, receive, send)

    def _verdict(self, board: SwitchBoard, scope: HTTPScope) -> pages.Closed | None:
        route = self._route(scope)
        if board.maintenance and not route.essential:
            return pages.MAINTENANCE
        if board.shedding and not route.essential:
            return pages.BUSY
        if board.read_only and route.organisation_write:
            return pages.READ_ONLY
        return None

    def _route(self, scope: HTTPScope) -> Route:
        key = (scope["method"], _template(scope))
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = route_of(*key)
        return route

    async def _refuse(self, board: SwitchBoard, scope: HTTPScope, send: Send, closed: pages.Closed) -> None:
        if _wants_json(scope, self._route(scope)):
            body, media_type = msgspec.json.encode(closed.json), b"application/json"
        else:
            body = board.pages.get(closed.code) or b""
            engine = scope["litestar_app"].template_engine
            if not body and engine is not None:
                body = board.pages[closed.code] = pages.render(engine, closed)
            media_type = b"text/html; charset=utf-8"
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", media_type),
            (b"content-length", str(len(body)).encode()),
            *((name.lower().encode(), value.encode()) for name, value in closed.headers.items()),
        ]
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 503, "headers": headers}
        end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body,
                                      "more_body": False}
        await send(start)
        await send(end)
