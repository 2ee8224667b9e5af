"""The `partner` dependency of every key-authenticated route: `x-api-key` (or the legacy `apikey`) → the calling
partner, counted against its rate limit; a 401 or a 429 otherwise. No SQL per request: app/partners/directory.py
holds the keys, and one Redis script both counts the request and tells whether that copy is current. The rate
limit headers reach every response of the route, errors included, through `rate_limit_headers` (a before_send
hook)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.types import Message, Scope

from app.deps import provide_web
from app.partners.context import PartnerContext
from app.partners.directory import PartnerDirectory
from app.partners.errors import PartnerApiError
from app.partners.keys import digest_of
from app.partners.rate_limit import RateLimiter

MAX_KEY_LENGTH = 200
UNAUTHORIZED = "Clé d'API manquante ou invalide : envoyez la clé de votre plateforme dans l'en-tête x-api-key."
TOO_MANY = ("Trop de requêtes pour votre clé d'API : la limite de votre plateforme par minute est atteinte. "
            "Réessayez après le délai indiqué par l'en-tête Retry-After.")
HEADERS_STATE = "partner_rate_limit_headers"
DIRECTORY_STATE = "partner_directory"
LIMITER_STATE = "partner_rate_limiter"


def directory_of(state: State) -> PartnerDirectory:
    """This process's directory, made at its first use (one per app, hence per process)."""
    directory: PartnerDirectory | None = state.get(DIRECTORY_STATE)
    if directory is None:
        web = provide_web(state)
        directory = state[DIRECTORY_STATE] = PartnerDirectory(web.engine, web.redis)
    return directory


def _limiter_of(state: State) -> RateLimiter:
    limiter: RateLimiter | None = state.get(LIMITER_STATE)
    if limiter is None:
        limiter = state[LIMITER_STATE] = RateLimiter(provide_web(state).redis)
    return limiter


def _key_of(request: Request[Any, Any, Any]) -> str:
    key = request.headers.get("x-api-key") or request.headers.get("apikey") or ""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise PartnerApiError(401, "UNAUTHORIZED", UNAUTHORIZED)
    return key


async def provide_partner(request: Request[Any, Any, Any]) -> PartnerContext:
    digest = digest_of(_key_of(request))
    state = request.app.state
    directory = directory_of(state)
    partner = await directory.find_or_reload(digest)
    if partner is None:
        raise PartnerApiError(401, "UNAUTHORIZED", UNAUTHORIZED)
    version, quota = await _limiter_of(state).hit(partner.id, partner.rate_limit_per_minute)
    await directory.saw(version)
    current = await directory.find(digest)  # the copy as of this very version: revoked since, it is gone
    if current is None:
        raise PartnerApiError(401, "UNAUTHORIZED", UNAUTHORIZED)
    headers = quota.headers()
    request.scope.setdefault("state", {})[HEADERS_STATE] = headers
    if quota.exceeded:
        raise PartnerApiError(429, "TOO_MANY_REQUESTS", TOO_MANY,
                              headers={**headers, "Retry-After": str(quota.reset_seconds)})
    return current


async def rate_limit_headers(message: Message, scope: Scope) -> None:
    """A `before_send` hook: the quota counted by `provide_partner` goes out on the route's response, whatever it
    is."""
    if message["type"] != "http.response.start":
        return
    headers = scope.get("state", {}).get(HEADERS_STATE)
    if headers:
        response_headers = MutableScopeHeaders.from_message(message)
        for name, value in headers.items():
            response_headers.setdefault(name, value)


class PartnerPing(Controller):
    """`GET /v0/ping`: lets a partner check its key (and see its quota in the headers)."""

    path = "/v0/ping"
    dependencies = {"partner": Provide(provide_partner)}  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/", sync_to_thread=False)
    def ping(self, partner: PartnerContext) -> dict[str, Any]:
        return {"ok": True, "data": {"partner": partner.name}}
