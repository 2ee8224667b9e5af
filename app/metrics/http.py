"""Around every HTTP request, outside Litestar's router so that unmatched paths are seen too: a request id (the
client's `X-Request-Id` when it is sane, else a new one) bound for the request's log lines and the jobs it enqueues
and returned in the response's `X-Request-Id`; the request counted and timed by route template; one access line.

A raw ASGI callable, since it runs on the sign-up path at thousands of requests a second: no Request object, the
label children cached per (route, method, status), nothing awaited of its own.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from app.metrics.instruments import HTTP_DURATION, HTTP_REQUESTS
from app.observability import ACCESS_LOGGER, REQUEST_ID

UNMATCHED = "unmatched"  # the route label of a path no route serves (404, 405): one series, whatever was asked
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HEADER = b"x-request-id"
# What a proxy or a client may hand us as a request id (a UUID, nginx's $request_id, a PaaS router's): anything
# else, a new one. Strict, so that what lands in every log line cannot be a payload.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

access_log = logging.getLogger(ACCESS_LOGGER)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


class ObservedRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _record(self, route: str, method: str, status: int, seconds: float) -> None:
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = (
                HTTP_REQUESTS.labels(route, method, str(status)), HTTP_DURATION.labels(route, method)
            )
        series[0].inc()
        series[1].observe(seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked: str = cast("HTTPScope", scope)["method"]
        method = asked if asked in METHODS else "OTHER"
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        header = (HEADER, request_id.encode())
        status = 500  # what the client gets when the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or UNMATCHED
            self._record(route, method, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(method, route, status, seconds)
            REQUEST_ID.reset(token)


def _log_access(method: str, route: str, status: int, seconds: float) -> None:
    """Never the raw path, its query string, the client's address, cookies or body. The record is made here rather
    than by `Logger.info`, which would walk the stack to find its caller: a third of the line's cost."""
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, f"{method} {route} {status}", None, None)
    record.access = {"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)}
    access_log.handle(record)
