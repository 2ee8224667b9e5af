"""Role checks for Litestar route handlers (`guards=[signed_in]`, `guards=[coordinator_of("department_code")]`).

`signed_in` reads the account from the session only: the volunteer's own pages and the application path of a surge
stay free of SQL. Every other guard re-reads the roles from PostgreSQL (one indexed query, app/accounts/roles.py)
before asking its question, and writes them back to the session when they changed, so a revoked role stops working
at the next request and the handler's `require_account()` sees the current roles. A failure raises a domain error
that app/errors.py turns into a redirect to /connexion (nobody signed in; on a GET, with the page to come back to)
or a 403 (signed in, not allowed). Every guard also sends a person who has not accepted the current major terms of
use to accept them first (app/legal/consent.py: a per-process copy of Redis, no SQL).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from app.accounts.roles import current_roles
from app.accounts.schemas import Roles, SignedIn
from app.accounts.sessions import current_account, end_session, update_account
from app.legal.consent import check_terms

# Async, so Litestar calls them on the event loop: a sync guard would be run in a worker thread on every request.
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]
Allowed = Callable[[Roles, ASGIConnection[Any, Any, Any, Any]], bool]


class SignInRequired(Exception):
    """Nobody is signed in."""


class RoleRequired(Exception):
    """Signed in, without the role this page needs."""


def require_account(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn:
    account = current_account(connection)
    if account is None:
        raise SignInRequired
    return account


async def require_current_account(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn:
    """The signed-in account with its roles as PostgreSQL holds them now."""
    account = require_account(connection)
    roles = await current_roles(connection.app.state.web.engine, account.user_id, volunteer=account.roles.volunteer)
    if roles is None:  # the account is gone
        end_session(connection)
        raise SignInRequired
    if roles != account.roles:
        account = msgspec.structs.replace(account, roles=roles)
        update_account(connection, account)
    return account


async def current_or_none(connection: ASGIConnection[Any, Any, Any, Any]) -> SignedIn | None:
    """As `require_current_account`, for the pages open to everyone: None when signed out or the account is gone."""
    try:
        return await require_current_account(connection)
    except SignInRequired:
        return None


def _require(allowed: Allowed) -> Guard:
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        account = await require_current_account(connection)
        await check_terms(connection, account)
        if not allowed(account.roles, connection):
            raise RoleRequired

    return guard


async def signed_in(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    await check_terms(connection, require_account(connection))


# Signed in, roles re-read: for the pages whose service decides which role may act (managing a mission, its
# applications, a dispatch run).
privileged: Guard = _require(lambda roles, connection: True)
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
