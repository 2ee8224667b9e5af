"""MIG offers: a manager opens one of their organisation's missions to the SNU's young people (youth places, dates,
hours, a tutor among the organisation's managers); the referents of its department validate or refuse it. Any edit
of a decided offer sends it back to them. Young people see an offer only once validated, and while its mission is
online (app/youth choosing pages)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.schemas import Roles
from app.db.after_commit import Clients, after_commit
from app.missions import scope
from app.missions.models import Mission
from app.organisations.models import Organisation, OrganisationManager
from app.text_rules import TextFields
from app.volunteers.models import Volunteer
from app.youth.models import COMPLETION_HOURS, OfferSource, OfferStatus, PlacementStatus, YouthOffer, YouthPlacement
from app.youth.validation import YouthInvalid, _date
from queues import enqueue

MAX_PLACES, MAX_HOURS, DEFAULT_HOURS = 500, 2_000, COMPLETION_HOURS
AWAITING_LIMIT = 200  # offers a validation page lists at once
MAX_SPAN = timedelta(days=366)
REASON_LENGTH = 2_000
NUMBER_LENGTH = 12
STATUS_LABELS = {OfferStatus.AWAITING_VALIDATION: "En attente de validation", OfferStatus.VALIDATED: "Validée",
                 OfferStatus.REFUSED: "Refusée", OfferStatus.WITHDRAWN: "Retirée"}
DECIDED = (OfferStatus.VALIDATED, OfferStatus.REFUSED)
ALREADY_WITHDRAWN = "Cette offre est déjà retirée : les jeunes ne la voient plus."
NOT_WITHDRAWN = "Cette offre n'est pas retirée : il n'y a rien à rouvrir."


class OfferNotFound(Exception):
    """No such offer, or one outside the person's departments."""


class OfferRefused(Exception):
    """The offer's status does not allow this action; `message` is French."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OfferInUse(OfferRefused):
    """Young people are placed on it: its dates, its places below theirs and its withdrawal are the referent's."""


@dataclass(frozen=True, slots=True)
class Tutor:
    user_id: int
    name: str | None  # the manager's volunteer name, when they signed up as a volunteer too
    email: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.email})" if self.name else self.email


@dataclass(frozen=True, slots=True)
class ValidOffer:
    places: int
    start_date: date
    end_date: date
    hours: int
    tutor: Tutor


@dataclass(frozen=True, slots=True)
class Saved:
    offer: YouthOffer
    sent_back: bool  # it was validated or refused: back to the referents


@dataclass(frozen=True, slots=True)
class OfferRow:
    """One offer as the referents' list shows it."""

    id: int
    mission_id: int
    mission_title: str
    organisation_name: str
    department_code: str
    places: int
    start_date: date
    end_date: date
    hours: int
    tutor_name: str | None
    tutor_email: str | None
    source: str


async def offer_of_mission(session: AsyncSession, mission_id: int) -> YouthOffer | None:
    return await session.scalar(select(YouthOffer).where(YouthOffer.mission_id == mission_id))


async def tutors_of(session: AsyncSession, organisation_id: int) -> list[Tutor]:
    """The organisation's managers, who may tutor its young people."""
    rows = await session.execute(
        select(User.id, User.email, Volunteer.first_name, Volunteer.last_name)
        .join(OrganisationManager, OrganisationManager.user_id == User.id)
        .outerjoin(Volunteer, (Volunteer.email_normalized == User.email_normalized)
                   & Volunteer.anonymised_at.is_(None))
        .where(OrganisationManager.organisation_id == organisation_id, User.anonymised_at.is_(None))
        .order_by(OrganisationManager.id)
    )
    return [Tutor(user_id, f"{first} {last}" if first else None, email) for user_id, email, first, last in rows]


def _whole(fields: TextFields, field: str, label: str, low: int, high: int, errors: dict[str, str],
           default: int | None = None) -> int:
    text = fields.text(field, label, NUMBER_LENGTH).replace(" ", "")
    if field in fields.refused:
        return 0
    if not text and default is not None:
        return default
    if not (text.isascii() and text.isdecimal()) or not low <= int(text) <= high:
        errors[field] = f"« {label} » : indiquez un nombre entier de {low} à {high}."
        return 0
    return int(text)


def validate_offer(values: dict[str, Any], *, mission_places: int, tutors: list[Tutor], today: date) -> ValidOffer:
    """Raises `YouthInvalid` with one French message per field."""
    fields = TextFields(values)
    errors: dict[str, str] = {}
    top = min(MAX_PLACES, mission_places)
    places = _whole(fields, "places", "Places pour les jeunes", 1, top, errors)
    if "places" in errors and top < MAX_PLACES:
        errors["places"] += f" La mission elle-même compte {top} place(s)."
    # A MIG is complete at 84 hours (its certificate): an offer of fewer could never be completed.
    hours = _whole(fields, "hours", "Heures de mission", COMPLETION_HOURS, MAX_HOURS, errors, default=DEFAULT_HOURS)
    start = _date(fields, "start_date", "Date de début", errors)
    end = _date(fields, "end_date", "Date de fin", errors)
    if start is not None and start < today:
        errors["start_date"] = "La date de début est déjà passée : choisissez aujourd'hui ou plus tard."
    if start is not None and end is not None:
        if end < start:
            errors["end_date"] = "La date de fin précède la date de début."
        elif end - start > MAX_SPAN:
            errors["end_date"] = "L'offre ne peut pas durer plus d'un an : rapprochez la date de fin."
    raw_tutor = fields.text("tutor_user_id", "Tuteur ou tutrice", NUMBER_LENGTH)
    tutor = next((item for item in tutors if raw_tutor.isdecimal() and str(item.user_id) == raw_tutor), None)
    if tutor is None and "tutor_user_id" not in fields.refused:
        errors["tutor_user_id"] = "Choisissez le tuteur ou la tutrice parmi les gestionnaires de la structure."
    errors.update(fields.refused)
    if errors or start is None or end is None or tutor is None:
        raise YouthInvalid(errors or {"start_date": "Indiquez les dates de l'offre."})
    return ValidOffer(places=places, start_date=start, end_date=end, hours=hours, tutor=tutor)


async def save_offer(session: AsyncSession, mission: Mission, valid: ValidOffer) -> Saved:
    """Opens the mission to the SNU, or edits its offer. A validated or refused offer goes back to
    `awaiting_validation`; a withdrawn one stays withdrawn until reopened."""
    department = await scope.department_of(session, mission.id)
    values = {"places": valid.places, "start_date": valid.start_date, "end_date": valid.end_date,
              "hours": valid.hours, "tutor_user_id": valid.tutor.user_id, "tutor_name": valid.tutor.name,
              "tutor_email": valid.tutor.email, "department_code": department}
    existing = await session.scalar(select(YouthOffer).where(YouthOffer.mission_id == mission.id).with_for_update())
    if existing is None:
        created = await session.scalar(
            insert(YouthOffer).values(mission_id=mission.id, source=OfferSource.ORGANISATION.value,
                                      status=OfferStatus.AWAITING_VALIDATION.value, **values)
            .on_conflict_do_nothing(index_elements=[YouthOffer.mission_id]).returning(YouthOffer)
        )
        if created is not None:
            return Saved(created, sent_back=False)
        # Another request created it in the meantime: edit it as any existing offer.
        existing = await session.scalar(select(YouthOffer).where(YouthOffer.mission_id == mission.id)
                                        .with_for_update())
        if existing is None:
            raise OfferNotFound
    active = await _active_placements(session, existing.id)
    if active and (valid.places < active or (valid.start_date, valid.end_date) != (existing.start_date,
                                                                                   existing.end_date)):
        raise OfferInUse(f"{active} jeune(s) sont déjà affecté·es à cette offre, avec une convention à ces dates : "
                           f"ses dates ne changent plus et elle garde au moins {active} place(s). Écrivez au "
                           "référent ou à la référente SNU du département pour tout changement.")
    sent_back = existing.status in DECIDED
    for name, value in values.items():
        setattr(existing, name, value)
    existing.updated_at = datetime.now(UTC)
    if sent_back:
        _undecide(existing)
    await session.flush()
    return Saved(existing, sent_back=sent_back)


def _undecide(offer: YouthOffer) -> None:
    offer.status = OfferStatus.AWAITING_VALIDATION.value
    offer.status_reason = None
    offer.decided_by = offer.decided_at = None


async def withdraw(session: AsyncSession, mission_id: int) -> YouthOffer:
    offer = await _locked(session, mission_id)
    if offer.status == OfferStatus.WITHDRAWN:
        raise OfferRefused(ALREADY_WITHDRAWN)
    if active := await _active_placements(session, offer.id):
        raise OfferInUse(f"{active} jeune(s) sont déjà affecté·es à cette offre : elle ne peut plus être retirée. "
                           "Écrivez au référent ou à la référente SNU du département.")
    offer.status = OfferStatus.WITHDRAWN.value
    offer.updated_at = datetime.now(UTC)
    await session.flush()
    return offer


async def reopen(session: AsyncSession, mission_id: int) -> YouthOffer:
    offer = await _locked(session, mission_id)
    if offer.status != OfferStatus.WITHDRAWN:
        raise OfferRefused(NOT_WITHDRAWN)
    _undecide(offer)
    offer.updated_at = datetime.now(UTC)
    await session.flush()
    return offer


async def _active_placements(session: AsyncSession, offer_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).where(YouthPlacement.offer_id == offer_id,
                                   YouthPlacement.status != PlacementStatus.CANCELLED.value)
    ) or 0)


async def _locked(session: AsyncSession, mission_id: int) -> YouthOffer:
    offer = await session.scalar(select(YouthOffer).where(YouthOffer.mission_id == mission_id).with_for_update())
    if offer is None:
        raise OfferNotFound
    return offer


# Referents ------------------------------------------------------------------------------------------------------


def sees_all(roles: Roles) -> bool:
    return roles.admin or roles.national_referent or roles.national_coordinator


def decides_in(roles: Roles, department_code: str) -> bool:
    return sees_all(roles) or roles.moderates(department_code)


async def awaiting_offers(session: AsyncSession, roles: Roles) -> list[OfferRow]:
    """The offers awaiting validation in the person's departments, oldest first."""
    query = (
        select(YouthOffer.id, YouthOffer.mission_id, Mission.title, Organisation.name, YouthOffer.department_code,
               YouthOffer.places, YouthOffer.start_date, YouthOffer.end_date, YouthOffer.hours,
               YouthOffer.tutor_name, YouthOffer.tutor_email, YouthOffer.source)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(YouthOffer.status == OfferStatus.AWAITING_VALIDATION.value)
        .order_by(YouthOffer.updated_at, YouthOffer.id)
        .limit(AWAITING_LIMIT)  # the oldest first: each decision brings the next ones in
    )
    if not sees_all(roles):
        query = query.where(YouthOffer.department_code.in_(roles.referent_departments))
    return [OfferRow(id=row[0], mission_id=row[1], mission_title=row[2], organisation_name=row[3],
                     department_code=row[4], places=row[5], start_date=row[6], end_date=row[7], hours=row[8],
                     tutor_name=row[9], tutor_email=row[10], source=row[11]) for row in await session.execute(query)]


def validate_reason(values: dict[str, Any]) -> str:
    fields = TextFields(values)
    reason = fields.text("reason", "Motif du refus", REASON_LENGTH, multiline=True)
    if fields.refused:
        raise YouthInvalid(fields.refused)
    if not reason:
        raise YouthInvalid({"reason": "Indiquez le motif du refus : la structure le lira sur son offre."})
    return reason


async def decide(session: AsyncSession, offer_id: int, *, roles: Roles, decided_by: int, validated: bool,
                 reason: str | None = None) -> YouthOffer:
    """Validates or refuses an offer awaiting validation in the person's departments; once committed, the tutor is
    told by e-mail (the job reads the offer by its id)."""
    offer = await session.scalar(select(YouthOffer).where(YouthOffer.id == offer_id).with_for_update())
    if offer is None or not decides_in(roles, offer.department_code):
        raise OfferNotFound
    if offer.status != OfferStatus.AWAITING_VALIDATION:
        raise OfferRefused("Cette offre n'attend plus de validation : elle a été retirée, modifiée ou déjà décidée.")
    offer.status = (OfferStatus.VALIDATED if validated else OfferStatus.REFUSED).value
    offer.status_reason = None if validated else reason
    offer.decided_by, offer.decided_at = decided_by, datetime.now(UTC)
    offer.updated_at = offer.decided_at
    await session.flush()
    decided_id = offer.id

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_youth_offer_decision_mail, clients.rq_connection, decided_id)

    after_commit(session, send)
    return offer


async def decision_mail(session: AsyncSession, offer_id: int) -> dict[str, Any] | None:
    """What the tutor's e-mail about a decision says; None when the offer is gone, undecided since, or has no tutor
    address."""
    row = (await session.execute(
        select(YouthOffer.status, YouthOffer.status_reason, YouthOffer.tutor_name, YouthOffer.tutor_email,
               YouthOffer.places, YouthOffer.start_date, YouthOffer.end_date, YouthOffer.mission_id,
               YouthOffer.decided_at, Mission.title,
               func.coalesce(User.email_normalized, YouthOffer.tutor_email).label("address"))
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .outerjoin(User, User.id == YouthOffer.tutor_user_id)
        .where(YouthOffer.id == offer_id)
    )).first()
    if row is None or row.status not in DECIDED or row.decided_at is None or not row.address:
        return None
    return {"status": row.status, "validated": row.status == OfferStatus.VALIDATED, "reason": row.status_reason,
            "tutor_name": row.tutor_name, "places": row.places, "start_date": f"{row.start_date:%d/%m/%Y}",
            "end_date": f"{row.end_date:%d/%m/%Y}", "mission_id": row.mission_id, "mission_title": row.title,
            "address": row.address, "decided_at": int(row.decided_at.timestamp())}


async def withdraw_for_missions(session: AsyncSession, mission_ids: list[int]) -> int:
    """Withdraws the offers of missions that left the platform; returns how many."""
    if not mission_ids:
        return 0
    result = await session.execute(
        update(YouthOffer).where(YouthOffer.mission_id.in_(mission_ids),
                                 YouthOffer.status != OfferStatus.WITHDRAWN.value)
        .values(status=OfferStatus.WITHDRAWN.value, updated_at=func.now()).returning(YouthOffer.id)
    )
    return len(result.all())
