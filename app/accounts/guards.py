"""Role checks for Litestar route handlers (`guards=[signed_in]`, `guards=[coordinator_of("department_code")]`).

Each guard reads the account from the session and asks one question of its roles; a failure raises a domain error
that app/errors.py turns into a redirect to /connexion (nobody signed in) or a 403 (signed in, not allowed).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from app.accounts.schemas import Roles, SignedIn
from app.accounts.sessions import current_account

# Async, so Litestar calls them on the event loop: a sync guard would be run in a worker thread on every request.
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class SignInRequired(Exception):
    """Nobody is signed in."""


class RoleRequired(Exception):
    """Signed in, without the role this page needs."""


def require_account(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn:
    account = current_account(connection)
    if account is None:
        raise SignInRequired
    return account


def _require(allowed: Callable[[Roles, ASGIConnection[Any, Any, Any, Any]], bool]) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not allowed(require_account(connection).roles, connection):
            raise RoleRequired

    return guard


signed_in: Guard = _require(lambda roles, connection: True)
admin: Guard = _require(lambda roles, connection: roles.admin)
coordinator: Guard = _require(lambda roles, connection: roles.coordinator)
national_coordinator: Guard = _require(lambda roles, connection: roles.national_coordinator)
moderator: Guard = _require(lambda roles, connection: roles.moderator)


def coordinator_of(path_param: str) -> Guard:
    """A coordinator of the department named by the route's `path_param` (national coordinators included)."""
    return _require(lambda roles, connection: roles.coordinates(str(connection.path_params.get(path_param, ""))))


def organisation_manager(path_param: str) -> Guard:
    """A manager of the organisation whose id is the route's `path_param`."""
    return _require(lambda roles, connection: roles.manages(int(connection.path_params.get(path_param, 0))))
