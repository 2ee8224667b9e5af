"""Writing a partner's missions: the bulk upsert shared by the write API (`/v2/mission`) and the feed import, and the
soft deletes. The transaction belongs to the caller (the request or the import job); the missions cache is bumped
after its commit."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

import msgspec
from sqlalchemy import (
    ARRAY,
    String,
    Table,
    all_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.cache import mark_changed
from app.missions.models import Mission, MissionAddress
from app.partners.normalise import Normalised, client_key, digest_of, normalise
from app.partners.organisations import OrganisationDraft, upsert_organisations
from app.partners.placing import Placed, Placer
from app.partners.records import PartnerRecord, RecordAddress
from app.youth.models import OfferSource, OfferStatus, YouthOffer

LOOKUP_CHUNK = 5_000
MISSIONS = cast(Table, Mission.__table__)
ADDRESSES = cast(Table, MissionAddress.__table__)
OFFERS = cast(Table, YouthOffer.__table__)
SNU_HOURS = 84
# The organisation of a record that names none (refused, but stored so the partner reads why).
UNKNOWN_ORGANISATION = OrganisationDraft(partner_key="unknown", name="Structure non identifiée", type="association",
                                         rna=None, siret=None,
                                         description="Structure non renseignée par la plateforme partenaire.")


class Refusal(msgspec.Struct, frozen=True):
    client_id: str | None = msgspec.field(name="clientId")
    reason: str


class UpsertResult(msgspec.Struct, kw_only=True):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0  # records stored as drafts with their reason, plus those that could not even be keyed
    refusals: list[Refusal] = msgspec.field(default_factory=list)
    # Every clientId the batch carried that could be keyed (accepted or refused): what `delete_absent` keeps.
    client_ids: list[str] = msgspec.field(default_factory=list)
    # clientId → mission id of what was written (created or updated) by this call.
    written: dict[str, int] = msgspec.field(default_factory=dict)
    # With `create_only`: the clientIds that already existed (deleted or not), left untouched.
    conflicts: list[str] = msgspec.field(default_factory=list)


async def upsert_records(session: AsyncSession, *, partner_id: int, records: Sequence[PartnerRecord],
                         placer: Placer, create_only: bool = False) -> UpsertResult:
    """Creates or updates the partner's missions (and their organisations) from `records`, keyed on
    (partner_id, clientId). Accepted records are published; refused ones are stored as drafts with the reason
    (when they have a clientId) and listed in `refusals`. An unchanged record (same digest, not deleted) is not
    written; a soft-deleted one that comes back is restored. Records sharing a clientId: the last one wins.
    `placer` comes from `await Placer.load(session)`, once per import. `created`/`updated`/`unchanged` count the
    stored records, `refused` every refused one (stored or not). `create_only` (POST /v2/mission): an existing
    clientId is not touched but reported in `conflicts`, also when a concurrent transaction created it."""
    result = UpsertResult()
    latest: dict[str, PartnerRecord] = {}
    for record in records:
        client_id = client_key(record)
        if client_id is None:
            result.refused += 1
            result.refusals.append(Refusal(None, normalise(record, placer).refusal or "ClientId manquant"))
            continue
        latest.pop(client_id, None)  # the last one wins, in its own position
        latest[client_id] = record
    result.client_ids = list(latest)
    existing = await _existing(session, partner_id, result.client_ids)
    to_write: list[Normalised] = []
    for client_id, record in latest.items():
        known = existing.get(client_id)
        if known is not None and create_only:
            result.conflicts.append(client_id)
            continue
        # The digest of the record as sent: an unchanged one is not even normalised again.
        if known is not None and known.deleted_at is None and known.digest == digest_of(msgspec.json.encode(record)):
            result.unchanged += 1
            reason = known.reason
        else:
            normalised = normalise(record, placer)
            to_write.append(normalised)
            reason = normalised.refusal
        if reason:
            result.refused += 1
            result.refusals.append(Refusal(client_id, reason))
    if not to_write:
        return result
    latest_normalised = {normalised.client_id: normalised for normalised in to_write}
    organisations = await upsert_organisations(session, partner_id=partner_id, drafts=[
        (normalised.organisation or UNKNOWN_ORGANISATION, _organisation_place(normalised, placer))
        for normalised in to_write
    ])
    written: dict[str, int] = {}
    inserted: set[str] = set()
    rows = [{
        **normalised.mission, "partner_id": partner_id, "client_id": normalised.client_id,
        "organisation_id": organisations[(normalised.organisation or UNKNOWN_ORGANISATION).partner_key],
        "partner_record": normalised.record, "deleted_at": None, "priority": False,
    } for normalised in to_write]
    # One statement compiled once (cached), sent as executemany: SQLAlchemy batches the rows into multi-row INSERTs
    # itself ("insertmanyvalues"), where `.values(rows)` compiled a new statement for every chunk.
    for mission_id, client_id, was_inserted in await session.execute(_write(tuple(rows[0]), create_only), rows):
        written[client_id] = mission_id
        if was_inserted:
            inserted.add(client_id)
    if create_only:
        result.conflicts += [normalised.client_id for normalised in to_write if normalised.client_id not in written
                             and normalised.client_id is not None]
    result.created, result.updated = len(inserted), len(written) - len(inserted)
    result.written = written
    await _replace_addresses(session, [(written[key], latest_normalised[key].addresses) for key in written])
    await _write_offers(session, [(written[key], latest_normalised[key]) for key in written], placer)
    if written:
        mark_changed(session)
    return result


class _Known(NamedTuple):
    digest: str | None
    deleted_at: datetime | None
    reason: str | None


async def _existing(session: AsyncSession, partner_id: int, client_ids: list[str]) -> dict[str, _Known]:
    found: dict[str, _Known] = {}
    for start in range(0, len(client_ids), LOOKUP_CHUNK):
        rows = await session.execute(
            select(Mission.client_id, Mission.import_digest, Mission.deleted_at, Mission.status_reason)
            .where(Mission.partner_id == partner_id, Mission.client_id.in_(client_ids[start:start + LOOKUP_CHUNK]))
        )
        found.update({client_id: _Known(digest, deleted_at, reason) for client_id, digest, deleted_at, reason in rows
                      if client_id is not None})
    return found


def _organisation_place(normalised: Normalised, placer: Placer) -> Placed:
    if normalised.addresses:
        return normalised.addresses[0]
    record = normalised.record
    placed = placer.place(RecordAddress(postal_code=_text(record.get("organizationPostCode")),
                                        city=_text(record.get("organizationCity"))))
    fallback = placed or placer.fallback()
    if fallback is None:
        raise RuntimeError("no commune is loaded: run the release (migrations and geography) first")
    return fallback


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@functools.cache
def _write(columns: tuple[str, ...], create_only: bool) -> Any:
    # On the table, not the mapped class: a Core executemany, without the ORM's per-row bulk bookkeeping.
    table = MISSIONS
    statement = insert(table)
    inserted: Any = literal_column("xmax = 0")  # PostgreSQL's tell for a row this INSERT created rather than updated
    if create_only:
        return statement.on_conflict_do_nothing(index_elements=[table.c.partner_id, table.c.client_id]).returning(
            table.c.id, table.c.client_id, inserted)
    excluded = statement.excluded
    # The partner owns its text; our side owns a referent's suspension (it stays, with its reason, until a referent
    # reinstates the mission) and a coordinator's priority flag.
    updates: dict[str, Any] = {name: excluded[name] for name in columns
                               if name not in ("partner_id", "client_id", "priority")}
    held = (table.c.status == "suspended") & (excluded.status == "published")
    status = case((held, table.c.status), else_=excluded.status)
    updates["status"] = status
    updates["status_reason"] = case((held, table.c.status_reason), else_=excluded.status_reason)
    updates["updated_at"] = func.now()
    updates["status_changed_at"] = case((table.c.status.is_distinct_from(status), func.now()),
                                        else_=table.c.status_changed_at)
    return statement.on_conflict_do_update(index_elements=[table.c.partner_id, table.c.client_id],
                                           set_=updates).returning(table.c.id, table.c.client_id, inserted)


async def _replace_addresses(session: AsyncSession, missions: list[tuple[int, list[Placed]]]) -> None:
    ids = [mission_id for mission_id, _ in missions]
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start:start + LOOKUP_CHUNK]
        await session.execute(delete(MissionAddress).where(MissionAddress.mission_id.in_(chunk)))
    rows = [{"mission_id": mission_id, "address_line": place.address_line, "postal_code": place.postal_code,
             "commune_code": place.commune_code, "latitude": place.latitude, "longitude": place.longitude}
            for mission_id, places in missions for place in places]
    if rows:
        await session.execute(insert(ADDRESSES), rows)


async def _write_offers(session: AsyncSession, missions: list[tuple[int, Normalised]], placer: Placer) -> None:
    """The SNU offers of the missions just written, in two set-based statements: an upsert of those sent with `snu`
    (places, dates, tutor) and the withdrawal of the others' partner offers."""
    rows = [{"mission_id": mission_id, "department_code": _department(normalised, placer),
             "places": normalised.snu.places, "start_date": normalised.snu.start_date,
             "end_date": normalised.snu.end_date, "hours": SNU_HOURS, "tutor_name": normalised.snu.tutor_name,
             "tutor_email": normalised.snu.tutor_email, "source": OfferSource.PARTNER.value,
             "status": OfferStatus.AWAITING_VALIDATION.value}
            for mission_id, normalised in missions if normalised.snu is not None]
    if rows:
        await session.execute(_offer_write(), rows)
    others = [mission_id for mission_id, normalised in missions if normalised.snu is None]
    if others:
        # Only the partner's own: an offer an organisation's manager opened on its mission stays theirs.
        await _withdraw_offers(session, others, partner_only=True)


def _department(normalised: Normalised, placer: Placer) -> str:
    """As app/missions/scope.py: the first address's department, else the organisation's."""
    place = normalised.addresses[0] if normalised.addresses else _organisation_place(normalised, placer)
    return place.department_code


@functools.cache
def _offer_write() -> Any:
    table = OFFERS
    statement = insert(table)
    excluded = statement.excluded
    # A withdrawn offer sent again, or one whose terms changed, goes back to the referents; an unchanged one keeps
    # their decision.
    again = or_(table.c.status == OfferStatus.WITHDRAWN.value,
                *(table.c[name].is_distinct_from(excluded[name])
                  for name in ("places", "start_date", "end_date", "department_code", "tutor_email")))
    awaiting = OfferStatus.AWAITING_VALIDATION.value
    return statement.on_conflict_do_update(
        index_elements=[table.c.mission_id],
        set_={**{name: excluded[name] for name in ("department_code", "places", "start_date", "end_date",
                                                   "tutor_name", "tutor_email")},
              "status": case((again, awaiting), else_=table.c.status),
              "status_reason": case((again, None), else_=table.c.status_reason),
              "decided_by": case((again, None), else_=table.c.decided_by),
              "decided_at": case((again, None), else_=table.c.decided_at),
              "updated_at": func.now()},
        where=table.c.source == OfferSource.PARTNER.value,
    )


async def _withdraw_offers(session: AsyncSession, mission_ids: list[int], *, partner_only: bool = False) -> None:
    only = (YouthOffer.source == OfferSource.PARTNER.value,) if partner_only else ()
    for start in range(0, len(mission_ids), LOOKUP_CHUNK):
        await session.execute(
            update(YouthOffer)
            .where(YouthOffer.mission_id.in_(mission_ids[start:start + LOOKUP_CHUNK]),
                   YouthOffer.status != OfferStatus.WITHDRAWN.value, *only)
            .values(status=OfferStatus.WITHDRAWN.value, updated_at=func.now())
        )


async def delete_absent(session: AsyncSession, *, partner_id: int, present: Collection[str]) -> int:
    """Soft-deletes (cancelled, `deleted_at` now) the partner's live missions whose clientId is not in `present`;
    returns how many."""
    if not present:  # a feed that named none of its missions says nothing about which ones went away
        return 0
    kept = bindparam("present", value=list(present), type_=ARRAY(String))
    deleted = (await session.execute(
        update(Mission)
        .where(Mission.partner_id == partner_id, Mission.deleted_at.is_(None), Mission.client_id != all_(kept))
        .values(status="cancelled", deleted_at=func.now(), status_changed_at=func.now(), updated_at=func.now())
        .returning(Mission.id)
    )).scalars().all()
    if deleted:
        await _withdraw_offers(session, list(deleted))
        mark_changed(session)
    return len(deleted)


async def delete_one(session: AsyncSession, *, partner_id: int, client_id: str) -> datetime | None:
    """Soft-deletes one mission; idempotent (an already deleted one keeps, and returns, its `deleted_at`). None when
    the partner never had this clientId."""
    deleted = (await session.execute(
        update(Mission)
        .where(Mission.partner_id == partner_id, Mission.client_id == client_id, Mission.deleted_at.is_(None))
        .values(status="cancelled", deleted_at=func.now(), status_changed_at=func.now(), updated_at=func.now())
        .returning(Mission.id, Mission.deleted_at)
    )).first()
    if deleted is not None:
        await _withdraw_offers(session, [deleted.id])
        mark_changed(session)
        return cast(datetime, deleted.deleted_at)
    return (await session.execute(
        select(Mission.deleted_at).where(Mission.partner_id == partner_id, Mission.client_id == client_id)
    )).scalar_one_or_none()
