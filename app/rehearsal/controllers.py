"""`/ops/rehearsal/…`: the JSON endpoints loadtests/rehearse.py calls, behind the ops token."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import MappingProxyType
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler

from app.console.controllers import ops_only
from app.deps import Db, Web
from app.rehearsal import purge, service

MAX_BODY = 1_048_576  # an integrity request's receipts (service.MAX_ITEMS of them)
# What reaches PostgreSQL as a parameter is checked here: a NUL byte or an id past BIGINT is a 400, not a database
# error.
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
Receipt = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]  # volunteers.service.new_receipt's
Address = Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^\x00]*$")]
CommuneCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9][0-9AB][0-9]{3}$")]  # INSEE, Corsica's 2A and 2B included


def bearer_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """These endpoints serve scripts, which send the token as Bearer. A browser sends Basic credentials on its own
    once typed, never Bearer, so another site cannot make an ops person's browser call them (they skip CSRF)."""
    if not connection.headers.get("authorization", "").lower().startswith("bearer "):
        raise NotAuthorizedException("Jeton d'exploitation attendu dans l'en-tête Authorization: Bearer.")


def refused(_: Request[Any, Any, Any], error: service.RehearsalRefused) -> Response[Any]:
    return Response({"errors": error.errors}, status_code=422, media_type=MediaType.JSON)


def _handlers() -> dict[int | type[Exception], Callable[[Request[Any, Any, Any], Any], Response[Any]]]:
    return {service.RehearsalRefused: refused}


class SeedRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    run: str
    missions: int = 3
    places: int = 5
    commune_code: CommuneCode = "69123"
    emergency: bool = False


class LinksRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    emails: list[str]


class IntegrityRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    receipts: list[Receipt] = []
    applications: list[tuple[RowId, Address]] = []  # (mission, address) answered with a place or the wait-list
    missions: list[RowId] = []


class PurgeRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    run: str | None = None


class RehearsalController(Controller):
    path = "/ops/rehearsal"
    guards = (ops_only, bearer_only)
    opt = MappingProxyType({"exclude_from_csrf": True})  # authenticated by a header, never by a cookie
    exception_handlers = _handlers()
    include_in_schema = False

    @post("/seed", status_code=200)
    async def seed_missions(self, data: SeedRequest, db: Db) -> service.Seeded:
        """The rehearsal's own organisation and missions (and emergency): the same again for the same run."""
        return await service.seed(db, run=data.run, missions=data.missions, places=data.places,
                                  commune_code=data.commune_code, emergency=data.emergency)

    @post("/links", status_code=200)
    async def sign_in_links(self, data: LinksRequest, web: Web, db: Db) -> dict[str, dict[str, str | None]]:
        """Sign-in links for rehearsal applicants, whose addresses receive no e-mail; any other address: a 422."""
        return {"links": await service.signin_links(db, web.redis, web.settings, data.emails, now=time.time())}

    @post("/integrity", status_code=200, request_max_body_size=MAX_BODY)
    async def check_integrity(self, data: IntegrityRequest, web: Web, db: Db) -> dict[str, Any]:
        """The run's accepted writes against PostgreSQL, and whether the queues are empty (else: ask again)."""
        found = await service.integrity(db, receipts=data.receipts, applications=data.applications,
                                        mission_ids=data.missions)
        return {**msgspec.to_builtins(found), "ok": found.ok, "queues_empty": await purge.queues_empty(web)}

    @post("/purge", status_code=200)
    async def purge_round(self, request: Request[Any, Any, Any], data: PurgeRequest, web: Web) -> purge.Purged:
        """One bounded round of the purge (app/rehearsal/purge.py): call again while `remaining` is not 0."""
        run = service.check_run(data.run) if data.run is not None else None
        return await purge.purge(web, request.app.stores.get("sessions"), run=run)
