"""API Engagement's write API for a partner's own missions: `POST /v2/mission`, `PUT /v2/mission/{clientId}` (only
the fields sent change) and `DELETE /v2/mission/{clientId}` (soft, idempotent). Every message is in French; the
verdict of the automatic moderation comes back as statusCode ACCEPTED or REFUSED with its statusComment."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Request, delete, post, put
from litestar.di import Provide
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Db
from app.missions.models import Mission
from app.partners.auth import provide_partner
from app.partners.context import PartnerContext
from app.partners.errors import PartnerApiError
from app.partners.normalise import MAX_CLIENT_ID, REMOTE, flag
from app.partners.placing import Placer
from app.partners.records import PartnerRecord
from app.partners.upsert import delete_one as soft_delete
from app.partners.upsert import upsert_records

PLACER_SECONDS = 3_600  # communes change only with a release: a web process reloads them at most hourly
CLIENT_ID_PATH = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
TYPE_NAMES = {"str": "du texte", "int": "un nombre entier", "float": "un nombre", "bool": "un booléen (true/false)",
              "array": "une liste", "object": "un objet", "null": "null"}
NOT_JSON = "Le corps de la requête n'est pas un JSON valide."
NOT_OBJECT = "Le corps de la requête doit être un objet JSON."
NOT_FOUND = "Mission introuvable : aucune mission de votre plateforme n'a ce clientId."
EXISTS = "Une mission avec ce clientId existe déjà pour votre plateforme (supprimée ou non) : modifiez-la par PUT."
BAD_CLIENT_ID = f"clientId invalide : de 1 à {MAX_CLIENT_ID} caractères, sans caractère de contrôle."

_placer: tuple[float, Placer] | None = None


class MissionV2(msgspec.Struct, kw_only=True, rename="camel"):
    """API Engagement's `buildData`: the partner's own values, plus our verdict."""

    id: str
    client_id: str
    publisher_id: str
    status_code: str
    status_comment: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    title: str
    description: str | None
    application_url: str | None
    domain: str | None
    activities: list[str]
    type: str | None
    remote: str
    schedule: str | None
    start_at: str | None
    end_at: str | None
    places: int
    open_to_minors: bool | None
    reduced_mobility_accessible: bool | None
    addresses: list[dict[str, Any]]
    organization_client_id: str | None
    organization_name: str | None
    organization_rna: str | None = msgspec.field(name="organizationRNA")
    organization_siret: str | None
    organization_siren: str | None
    organization_url: str | None
    organization_type: str | None
    organization_description: str | None
    organization_post_code: str | None
    organization_city: str | None


class MissionV2Body(msgspec.Struct, frozen=True):
    ok: bool
    data: MissionV2


class DeletedBody(msgspec.Struct, frozen=True):
    ok: bool
    data: dict[str, Any]


async def placer_of(session: AsyncSession) -> Placer:
    global _placer
    now = time.monotonic()
    if _placer is None or now - _placer[0] > PLACER_SECONDS:
        _placer = (now, await Placer.load(session))
    return _placer[1]


def _french(error: msgspec.ValidationError) -> str:
    text = str(error)
    where = re.search(r"at `\$\.?([^`]*)`", text)
    expected = re.match(r"Expected `([^`]*)`", text)
    if where is None:
        return NOT_OBJECT if expected and "object" in expected.group(1) else f"Corps de la requête invalide : {text}."
    field = re.sub(r"\[\d+\]", "", where.group(1)) or "corps"
    if expected:
        wanted = " ou ".join(TYPE_NAMES.get(part.strip(), part.strip()) for part in expected.group(1).split("|")
                             if part.strip() != "null")
        return f"Le champ « {field} » doit être {wanted}."
    return f"Le champ « {field} » est invalide."


def _decode(body: bytes) -> tuple[PartnerRecord, set[str]]:
    """The record and the names of the fields the body carries (a partial update changes only those)."""
    try:
        present = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
        record = msgspec.json.decode(body, type=PartnerRecord)
    except msgspec.ValidationError as error:
        raise PartnerApiError(400, "INVALID_BODY", _french(error)) from None
    except (msgspec.DecodeError, RecursionError):
        raise PartnerApiError(400, "INVALID_BODY", NOT_JSON) from None
    return record, set(present)


def _client_id(value: str) -> str:
    if not CLIENT_ID_PATH.fullmatch(value):
        raise PartnerApiError(400, "INVALID_PARAMS", BAD_CLIENT_ID)
    return value


def _text(record: dict[str, Any], name: str) -> str | None:
    value = record.get(name)
    return value if isinstance(value, str) else None


async def _answer(session: AsyncSession, partner_id: int, client_id: str) -> MissionV2:
    mission = (await session.execute(
        select(Mission.id, Mission.status, Mission.status_reason, Mission.created_at, Mission.updated_at,
               Mission.deleted_at, Mission.title, Mission.places, Mission.partner_record)
        .where(Mission.partner_id == partner_id, Mission.client_id == client_id)
    )).one()
    record: dict[str, Any] = mission.partner_record or {}
    remote = REMOTE.get((_text(record, "remote") or "").strip().casefold(), "no")
    return MissionV2(
        id=str(mission.id), client_id=client_id, publisher_id=str(partner_id),
        status_code="REFUSED" if mission.status_reason else "ACCEPTED", status_comment=mission.status_reason or "",
        created_at=mission.created_at, updated_at=mission.updated_at, deleted_at=mission.deleted_at,
        title=mission.title, description=_text(record, "description"),
        application_url=_text(record, "applicationUrl"), domain=_text(record, "domain"),
        activities=[value for value in record.get("activities") or [] if isinstance(value, str)],
        type=_text(record, "type"), remote=remote, schedule=_text(record, "schedule"),
        start_at=_text(record, "startAt"), end_at=_text(record, "endAt"), places=mission.places,
        open_to_minors=flag(record.get("openToMinors")),
        reduced_mobility_accessible=flag(record.get("reducedMobilityAccessible")),
        addresses=[address for address in record.get("addresses") or [] if isinstance(address, dict)],
        **{field.name: _text(record, field.encode_name) for field in _ORGANISATION_FIELDS},
    )


_ORGANISATION_FIELDS = [field for field in msgspec.structs.fields(PartnerRecord)
                        if field.name.startswith("organization_")]


class PartnerMissionWriteApi(Controller):
    path = "/v2/mission"
    dependencies = {"partner": Provide(provide_partner)}  # noqa: RUF012  (Litestar reads it as a class attribute)

    @post("/", status_code=201)
    async def create(self, request: Request[Any, Any, Any], partner: PartnerContext, db: Db) -> MissionV2Body:
        record, _ = _decode(await request.body())
        if not isinstance(record.client_id, str) or not record.client_id.strip():
            raise PartnerApiError(400, "INVALID_BODY", "Le champ « clientId » est obligatoire.")
        client_id = _client_id(record.client_id.strip())
        if not isinstance(record.title, str):
            raise PartnerApiError(400, "INVALID_BODY", "Le champ « title » est obligatoire.")
        record = msgspec.structs.replace(record, client_id=client_id)
        result = await upsert_records(db, partner_id=partner.id, records=[record], placer=await placer_of(db),
                                      create_only=True)
        if result.conflicts:
            raise PartnerApiError(409, "RESSOURCE_ALREADY_EXIST", EXISTS)
        return MissionV2Body(ok=True, data=await _answer(db, partner.id, client_id))

    @put("/{client_id:str}")
    async def change(self, request: Request[Any, Any, Any], partner: PartnerContext, db: Db,
                     client_id: str) -> MissionV2Body:
        client_id = _client_id(client_id)
        patch, present = _decode(await request.body())
        existing = (await db.execute(
            select(Mission.partner_record, Mission.deleted_at)
            .where(Mission.partner_id == partner.id, Mission.client_id == client_id).with_for_update()
        )).one_or_none()
        if existing is None or existing.deleted_at is not None:
            raise PartnerApiError(404, "NOT_FOUND", NOT_FOUND)
        merged = dict(existing.partner_record or {})
        sent = msgspec.to_builtins(patch)
        merged.update({name: sent.get(name) for name in present if name in _WIRE_NAMES})
        merged["clientId"] = client_id
        record = msgspec.convert(merged, PartnerRecord)
        await upsert_records(db, partner_id=partner.id, records=[record], placer=await placer_of(db))
        return MissionV2Body(ok=True, data=await _answer(db, partner.id, client_id))

    @delete("/{client_id:str}", status_code=200)
    async def remove(self, partner: PartnerContext, db: Db, client_id: str) -> DeletedBody:
        client_id = _client_id(client_id)
        deleted_at = await soft_delete(db, partner_id=partner.id, client_id=client_id)
        if deleted_at is None:
            raise PartnerApiError(404, "NOT_FOUND", NOT_FOUND)
        return DeletedBody(ok=True, data={"clientId": client_id, "deletedAt": deleted_at})


_WIRE_NAMES = frozenset(field.encode_name for field in msgspec.structs.fields(PartnerRecord))
