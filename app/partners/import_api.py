"""A partner's own feed imports: `POST /v2/import` asks for its feed to be imported now (202, the run's id),
`GET /v2/import/{id}` tells how that run went (only the caller's own runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.di import Provide
from sqlalchemy import select

from app.deps import Db
from app.partners import imports
from app.partners.auth import provide_partner
from app.partners.context import PartnerContext
from app.partners.errors import PartnerApiError
from app.partners.models import PartnerImport

NO_FEED = ("Aucun flux XML n'est configuré pour votre plateforme : demandez à l'équipe Renfort d'enregistrer "
           "l'adresse de votre flux, ou publiez vos missions par POST /v2/mission.")
NOT_FOUND = "Import introuvable : aucun import de votre plateforme ne porte cet identifiant."
MAX_ID = 2**63 - 1


class ImportStarted(msgspec.Struct, frozen=True):
    id: int
    status: str


class ImportRead(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    id: int
    status: str
    started_at: datetime
    finished_at: datetime | None
    received: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    refused: int
    refusals: list[dict[str, Any]]
    error: str | None


class ImportStartedBody(msgspec.Struct, frozen=True):
    ok: bool
    data: ImportStarted


class ImportReadBody(msgspec.Struct, frozen=True):
    ok: bool
    data: ImportRead


class PartnerImportApi(Controller):
    path = "/v2/import"
    dependencies = {"partner": Provide(provide_partner)}  # noqa: RUF012  (Litestar reads it as a class attribute)

    @post("/", status_code=202)
    async def start(self, partner: PartnerContext, db: Db) -> Response[ImportStartedBody]:
        wait = await imports.cooldown_left(db, partner.id)
        if wait:
            raise PartnerApiError(429, "TOO_MANY_REQUESTS", f"Le dernier import de votre flux vient de se terminer : "
                                  f"vous pourrez en demander un autre dans {wait} s.", {"Retry-After": str(wait)})
        try:
            import_id = await imports.request_import(db, partner.id)
        except imports.NoFeed:
            raise PartnerApiError(404, "NOT_FOUND", NO_FEED) from None
        return Response(ImportStartedBody(ok=True, data=ImportStarted(id=import_id, status="running")),
                        status_code=202)

    @get("/{import_id:int}")
    async def read(self, partner: PartnerContext, db: Db, import_id: int) -> ImportReadBody:
        row = None
        if 0 < import_id <= MAX_ID:
            row = (await db.execute(
                select(PartnerImport).where(PartnerImport.id == import_id, PartnerImport.partner_id == partner.id)
            )).scalar_one_or_none()
        if row is None:
            raise PartnerApiError(404, "NOT_FOUND", NOT_FOUND)
        return ImportReadBody(ok=True, data=ImportRead(
            id=row.id, status=row.status, started_at=row.started_at, finished_at=row.finished_at,
            received=row.received, created=row.created, updated=row.updated, unchanged=row.unchanged,
            deleted=row.deleted, refused=row.refused, refusals=list(row.refusals or []), error=row.error,
        ))
