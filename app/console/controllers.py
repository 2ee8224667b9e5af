from __future__ import annotations

import base64
import hmac
from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.response import Redirect, Template

from app.deps import Web


def _password(authorization: str) -> str:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def ops_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """HTTP Basic (any user name) or Bearer with OPS_TOKEN; without a token configured the console does not exist."""
    token = connection.app.state.web.settings.ops_token
    if token is None:
        raise NotFoundException
    given = _password(connection.headers.get("authorization", ""))
    if not hmac.compare_digest(given.encode(), token.reveal().encode()):
        raise NotAuthorizedException(headers={"WWW-Authenticate": 'Basic realm="Renfort ops", charset="UTF-8"'})


def masked(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


class ConsoleController(Controller):
    path = "/ops"
    guards = (ops_only,)
    include_in_schema = False

    @get("/dead-letters")
    async def dead_letters(self, web: Web) -> Template:
        letters = await web.signups.dead_letters(limit=200)
        rows = [
            {
                "receipt": letter.record.receipt,
                "email": masked(letter.record.email),
                "postal_code": letter.record.postal_code,
                "reason": letter.reason,
                "failed_at": letter.failed_at,
            }
            for letter in letters
        ]
        total = await web.signups.dead_count()
        return Template("console/dead_letters.html", context={"rows": rows, "total": total})

    @post("/dead-letters/retry")
    async def retry(self, request: Request[Any, Any, Any], web: Web) -> Redirect:
        moved = await web.signups.retry_dead_letters()
        if moved and await web.signups.request_drain():
            await web.request_drain()
        return Redirect(f"/ops/dead-letters?remis={moved}", status_code=303)
