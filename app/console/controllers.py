from __future__ import annotations

import base64
import hmac
from typing import Any

from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.console.dead_letters import WriteQueue, listing, retry, write_queues
from app.deps import Web
from app.state import WebState

PAGE_LIMIT = 200


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


def _queues(web: WebState) -> dict[str, WriteQueue]:
    return write_queues(web.signups, web.places.queue)


class ConsoleController(Controller):
    path = "/ops"
    guards = (ops_only,)
    include_in_schema = False

    @get("/dead-letters")
    async def page(
        self, web: Web, remis: FromQuery[int | None] = None, file: FromQuery[str | None] = None
    ) -> Template:
        """Both write queues' dead letters; `file` and `remis` report the retry that redirected here."""
        queues = _queues(web)
        listings = [await listing(queue, PAGE_LIMIT) for queue in queues.values()]
        retried = queues.get(file or "")
        context = {"listings": listings, "limit": PAGE_LIMIT, "moved": remis, "retried": retried}
        return Template("console/dead_letters.html", context=context)

    @post("/dead-letters/{queue_name:str}/retry")
    async def retry_queue(self, web: Web, queue_name: FromPath[str]) -> Redirect:
        queue = _queues(web).get(queue_name)
        if queue is None:
            raise NotFoundException
        moved = await retry(queue, web.request_drain)
        return Redirect(f"/ops/dead-letters?file={queue.name}&remis={moved}", status_code=303)
