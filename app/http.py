"""Small request helpers shared by pages and API controllers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request
from litestar.params import PathParameter
from litestar.types import Scope

# A row id in a path (missions, organisations, runs…): PostgreSQL's BIGINT range, so a number past it is a 400 with
# the French "malformed request" page instead of a database error.
RowId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]


def client_ip(request: Request[Any, Any, Any], trusted_proxy_hops: int) -> str:
    """The caller's address: the socket peer, or the entry our own proxies added to X-Forwarded-For."""
    if trusted_proxy_hops > 0:
        forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
        if len(forwarded) >= trusted_proxy_hops:
            return forwarded[-trusted_proxy_hops]
    return request.client.host if request.client else "unknown"


def route_template(scope: Scope) -> str | None:
    """The route a request was routed to (`/organisations/{organisation_id}/modifier`), None before routing or when
    no route matched. For a mounted app (`/urgence`), whose template Litestar leaves as its parent's: the mount's
    path."""
    handler = scope.get("route_handler")
    if handler is not None and getattr(handler, "is_mount", False):
        return min(handler.paths)
    return scope.get("path_template") or None


def wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.scope["path"].startswith("/api/") or "application/json" in request.headers.get("accept", "")
