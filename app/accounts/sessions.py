"""Server-side sessions in Redis (Litestar's `RedisStore`), so any web process can serve any signed-in person.

Litestar's backend stores a session for every visitor and rewrites it on every response. Ours differs in three
ways that matter here: an anonymous visitor gets no cookie and no Redis key (a bot hammering a page creates
nothing); an unchanged session is not written back, only its expiry renewed (a request still in flight cannot
resurrect a session that a sign-out just deleted); and signing in moves the session to a fresh id, so a session id
planted before sign-in (session fixation) is worthless. Each signed-in session id is also filed under its user, so
deleting an account ends its sessions on every device, not only the one that asked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from app.accounts.schemas import SignedIn

ACCOUNT = "account"
SESSION_LIFETIME = 30 * 86_400  # absolute, however active the session
_LOADED = "renfort.session.loaded"
_ROTATE = "renfort.session.rotate"
SESSIONS_OF = "renfort:accounts:sessions:"  # + user id → set of the ids of that user's sessions


class SessionBackend(ServerSideSessionBackend):
    def _cookie_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
        value = connection.cookies.get(self.config.key)
        return value if value and value != "null" else None

    async def load_from_connection(self, connection: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
        session_id = self._cookie_id(connection)
        if session_id is None:
            return {}
        raw = await self.get(session_id, store=self._store(connection))  # renew_on_access: the sliding expiry
        if raw is None:
            return {}
        connection.scope["state"][_LOADED] = raw
        return self.deserialize_data(raw)

    async def store_in_message(
        self, scope_session: ScopeSession, message: Message, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> None:
        store, headers = self._store(connection), MutableScopeHeaders.from_message(message)
        params = dict(extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys()))
        session_id = self._cookie_id(connection)
        if not scope_session or scope_session is Empty:  # Empty (what clear_session leaves) is truthy
            if session_id is not None:
                await self.delete(session_id, store=store)
                expired = Cookie(value="null", key=self.config.key, expires=0, **params)
                headers.add("Set-Cookie", expired.to_header(header=""))
            return
        data = self.serialize_data(scope_session, connection.scope)
        loaded = connection.scope["state"].get(_LOADED)
        if session_id is None or loaded is None or connection.scope["state"].get(_ROTATE):
            if session_id is not None:
                await self.delete(session_id, store=store)
            session_id = self.generate_session_id()
            await self.set(session_id, data, store=store)
            account = scope_session.get(ACCOUNT) if isinstance(scope_session, dict) else None
            if isinstance(account, dict) and "user_id" in account:
                await _file_session(connection, int(account["user_id"]), session_id)
        elif data != loaded:
            await self.set(session_id, data, store=store)
        # Sent again on every response so that the cookie's expiry slides with the session's.
        headers.add("Set-Cookie", Cookie(value=session_id, key=self.config.key, **params).to_header(header=""))

    def _store(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Store:
        return self.config.get_store_from_app(connection.scope["app"])


@dataclass
class SessionConfig(ServerSideSessionConfig):
    _backend_class = SessionBackend


def session_config(*, secure: bool, idle_days: int) -> SessionConfig:
    return SessionConfig(
        key="renfort_session",
        max_age=idle_days * 86_400,
        renew_on_access=True,
        secure=secure,
        httponly=True,
        samesite="lax",
        # The surge paths (sign-up API, static files, probes) never load a session: not one Redis call more. The API
        # is exempt from CSRF, so it must never authenticate with the session cookie either.
        exclude=["^/api/", "^/static/", "^/health$", "^/ready$", "^/metrics$", "^/$", "^/urgence/", "^/v0/", "^/v2/"],
        store="sessions",
    )


async def _file_session(connection: ASGIConnection[Any, Any, Any, Any], user_id: int, session_id: str) -> None:
    redis = connection.scope["app"].state.web.redis  # the Redis the session store lives on (see app.main)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.sadd(SESSIONS_OF + str(user_id), session_id)
        pipe.expire(SESSIONS_OF + str(user_id), SESSION_LIFETIME)
        await pipe.execute()


async def end_every_session(connection: ASGIConnection[Any, Any, Any, Any], user_id: int) -> None:
    """Signs a user out everywhere (their account is gone); the current session too, through `end_session`."""
    redis = connection.scope["app"].state.web.redis
    store = connection.scope["app"].stores.get("sessions")
    for member in await redis.smembers(SESSIONS_OF + str(user_id)):
        await store.delete(member.decode() if isinstance(member, bytes) else str(member))
    await redis.delete(SESSIONS_OF + str(user_id))
    end_session(connection)


def start_session(connection: ASGIConnection[Any, Any, Any, Any], account: SignedIn) -> None:
    """Signs in: the session gets the account and a fresh id."""
    connection.scope["state"][_ROTATE] = True
    connection.set_session({ACCOUNT: msgspec.to_builtins(account)})


def update_account(connection: ASGIConnection[Any, Any, Any, Any], account: SignedIn) -> None:
    """Keeps the session (same id) with a changed account, e.g. one more organisation managed."""
    connection.set_session({ACCOUNT: msgspec.to_builtins(account)})


def end_session(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    connection.clear_session()


def current_account(connection: ASGIConnection[Any, Any, Any, Any], now: float | None = None) -> SignedIn | None:
    """The signed-in account, or None: anonymous, expired, or a path that loads no session (the API)."""
    if "session" not in connection.scope:
        return None
    session = connection.scope.get("session")
    data = session.get(ACCOUNT) if isinstance(session, dict) else None
    if not data:
        return None
    try:
        account = msgspec.convert(data, SignedIn)
    except msgspec.ValidationError:
        return None
    if account.since + SESSION_LIFETIME <= (time.time() if now is None else now):
        return None
    return account
