"""`POST /v2/activity` and `PUT /v2/activity/{id}` (API Engagement's server-to-server conversions): a partner reports
that a visitor we sent to one of ITS missions (an outbound click) applied or opened an account, then how that
application went. One row per click: reporting again returns the same row."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post, put
from litestar.di import Provide
from litestar.params import FromPath
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Db, Web
from app.missions.models import Mission
from app.partners.auth import provide_partner
from app.partners.context import PartnerContext
from app.partners.errors import PartnerApiError
from app.partners.models import PartnerApplication, PartnerClick
from app.partners.tracking import row_id, sign, unsign

MAX_BODY = 16_384
MAX_TEXT = 200
TYPES = ("apply", "account")


class ActivityStatus(StrEnum):
    PENDING = "PENDING"
    VALIDATED = "VALIDATED"
    CANCELED = "CANCELED"
    REFUSED = "REFUSED"
    CARRIED_OUT = "CARRIED_OUT"


STATUSES = tuple(ActivityStatus)
CLICK_NOT_FOUND = "Clic introuvable : envoyez dans clickId la valeur apiengagement_id reçue sur votre page."
NOT_YOURS = "Ce clic ne concerne pas une de vos missions."
MISSION_NOT_FOUND = "Mission introuvable parmi les vôtres : missionClientId ne correspond pas à la mission du clic."
ACTIVITY_NOT_FOUND = "Activité introuvable."


class ActivityRead(msgspec.Struct, frozen=True, kw_only=True, rename={"id": "_id", "click_id": "clickId",
                                                                      "mission_id": "missionId",
                                                                      "created_at": "createdAt"}):
    id: str
    click_id: str
    mission_id: str | None
    type: str
    status: str
    created_at: datetime


def _invalid(message: str) -> PartnerApiError:
    return PartnerApiError(400, "INVALID_BODY", message)


async def _body(request: Request[Any, Any, Any]) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(await request.body())
    except (msgspec.DecodeError, RecursionError):  # deep nesting: msgspec's decoder recurses
        raise _invalid("Le corps de la requête doit être un objet JSON valide.") from None
    if not isinstance(body, dict):
        raise _invalid("Le corps de la requête doit être un objet JSON.")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise _invalid(f"Le champ {name} est obligatoire.")
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value:
        raise _invalid(f"Le champ {name} doit être un texte de {MAX_TEXT} caractères au plus.")
    return value


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], default: str | None) -> str:
    value = body.get(name, default)
    if value is None or not isinstance(value, str) or value not in allowed:
        raise _invalid(f"Le champ {name} doit valoir l'une de ces valeurs : {', '.join(allowed)}.")
    return value


def _read(application: PartnerApplication, token: str, secret: str) -> dict[str, Any]:
    data = ActivityRead(id=str(application.id), click_id=sign(secret, token),
                        mission_id=None if application.mission_id is None else str(application.mission_id),
                        type=application.activity_type, status=application.status, created_at=application.created_at)
    return {"ok": True, "data": msgspec.to_builtins(data)}


async def report(session: AsyncSession, partner: PartnerContext, body: dict[str, Any], secret: str
                 ) -> dict[str, Any]:
    kind = _choice(body, "type", TYPES, "apply")
    signed = _text(body, "clickId", required=True)
    client_id = _text(body, "missionClientId")
    status = _choice(body, "status", STATUSES, ActivityStatus.PENDING)
    token = unsign(secret, signed)
    click = None if token is None else await session.scalar(select(PartnerClick).where(PartnerClick.token == token))
    if click is None or token is None:
        raise PartnerApiError(404, "NOT_FOUND", CLICK_NOT_FOUND)
    if click.direction != "outbound" or click.partner_id != partner.id:
        raise PartnerApiError(403, "FORBIDDEN", NOT_YOURS)
    if client_id is not None and client_id != await session.scalar(
            select(Mission.client_id).where(Mission.id == click.mission_id, Mission.partner_id == partner.id)):
        raise PartnerApiError(404, "NOT_FOUND", MISSION_NOT_FOUND)
    # ON CONFLICT: two reports of one click racing each other both get the one row.
    await session.execute(pg_insert(PartnerApplication).values(
        click_id=click.id, partner_id=partner.id, mission_id=click.mission_id, direction="outbound", status=status,
        activity_type=kind,
    ).on_conflict_do_nothing(index_elements=["click_id"]))
    application = await session.scalar(
        select(PartnerApplication).where(PartnerApplication.click_id == click.id).with_for_update()
        .execution_options(populate_existing=True)
    )
    assert application is not None  # inserted above, or already there; rows are never deleted but with the partner
    if kind == "apply" and application.activity_type != "apply":
        application.activity_type = kind  # an account first, then the application: the stronger one is kept
        application.updated_at = datetime.now(UTC)
    await session.flush()
    await session.refresh(application)
    return _read(application, token, secret)


async def update_status(session: AsyncSession, partner: PartnerContext, raw_id: str, body: dict[str, Any],
                        secret: str) -> dict[str, Any]:
    status = _choice(body, "status", STATUSES, None)
    activity_id = row_id(raw_id)
    row = None if activity_id is None else (await session.execute(
        select(PartnerApplication, PartnerClick.token)
        .join(PartnerClick, PartnerClick.id == PartnerApplication.click_id)
        .where(PartnerApplication.id == activity_id, PartnerApplication.partner_id == partner.id,
               PartnerApplication.direction == "outbound").with_for_update(of=PartnerApplication)
    )).first()
    if row is None:
        raise PartnerApiError(404, "NOT_FOUND", ACTIVITY_NOT_FOUND)
    application, token = row
    if application.status != status:
        application.status = status
        application.updated_at = datetime.now(UTC)
        await session.flush()
    return _read(application, token, secret)


class ActivityApi(Controller):
    path = "/v2/activity"
    dependencies = {"partner": Provide(provide_partner)}  # noqa: RUF012  (Litestar reads it as a class attribute)
    include_in_schema = False

    @post("/", status_code=200, request_max_body_size=MAX_BODY)
    async def report(self, request: Request[Any, Any, Any], partner: PartnerContext, web: Web, db: Db
                     ) -> Response[Any]:
        return Response(await report(db, partner, await _body(request), web.settings.secret_key.reveal()))

    @put("/{activity_id:str}", request_max_body_size=MAX_BODY)
    async def update(self, request: Request[Any, Any, Any], activity_id: FromPath[str], partner: PartnerContext,
                     web: Web, db: Db) -> Response[Any]:
        return Response(await update_status(db, partner, activity_id, await _body(request),
                                            web.settings.secret_key.reveal()))
