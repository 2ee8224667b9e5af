"""Young people choosing their mission of general interest: the offers open to them (validated, their mission online,
within their cohort's missions period, for their age on the first day, near home or remote), and their ranked list
of at most five choices (`surge.youth.MAX_CHOICES`), changed only while choosing is open (consent given, the
department's deadline set and not passed, in Europe/Paris time). Every change locks the young person's row first, so
two tabs never break the ranks 1..n or go past five."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, and_, delete, exists, func, insert, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.formats import PARIS
from app.geo.models import Commune
from app.missions import search_links
from app.missions.models import Mission, MissionAddress
from app.missions.search import ONLINE_ORGANISATIONS, _distance
from app.missions.service import ONLINE_STATUSES, _addresses
from app.organisations.models import Organisation
from app.organisations.service import slugify
from app.reference import DOMAINS
from app.youth.allocation_runs import open_places
from app.youth.choice_filters import OfferFilters, pagination
from app.youth.cohorts import deadline_of
from app.youth.eligibility import ADULT_AGE, YOUTH_MAX_AGE, YOUTH_MIN_AGE, offer_online
from app.youth.models import (
    Cohort,
    OfferStatus,
    PlacementStatus,
    YoungPerson,
    YouthChoice,
    YouthOffer,
    YouthPlacement,
    YouthStatus,
)
from app.youth.service import can_choose
from surge.dispatch.geometry import haversine_km

MAX_CHOICES = 5  # as surge.youth.MAX_CHOICES (the engine's module is loaded by the allocation job only)
PER_PAGE = 20
BIGINT_MAX = 2**63 - 1


class ChoosingState(StrEnum):
    """Whether the young person may change their list now, and if not, why."""

    OPEN = "open"
    AWAITING_CONSENT = "awaiting_consent"
    CONSENT_REFUSED = "consent_refused"
    NO_DEADLINE = "no_deadline"
    CLOSED = "closed"  # the deadline has passed
    PLACED = "placed"  # an allocation placed them already


STATE_MESSAGES = {
    ChoosingState.AWAITING_CONSENT: ("Vous pourrez choisir vos missions dès que votre représentant·e légal·e aura "
                                     "donné son accord : nous lui avons envoyé un e-mail. Demandez-lui de l'ouvrir "
                                     "et de répondre."),
    ChoosingState.CONSENT_REFUSED: ("Votre représentant·e légal·e n'a pas donné son accord : vous ne pouvez pas "
                                    "choisir de mission. Parlez-en avec lui ou elle, ou avec le ou la référent·e SNU "
                                    "de votre département."),
    ChoosingState.NO_DEADLINE: "Les vœux ouvriront quand votre référent aura fixé la date limite.",
    ChoosingState.CLOSED: "La date limite des vœux est passée : votre liste ne peut plus changer.",
    ChoosingState.PLACED: "Vous êtes affecté·e à une mission : votre liste de vœux ne peut plus changer.",
}
NOT_OFFERED = ("Cette mission n'est pas proposée aux jeunes de votre cohorte, ou plus : choisissez-en une dans la "
               "liste des missions.")
ALREADY_CHOSEN = "Cette mission est déjà dans vos vœux."
LIST_FULL = f"Vous avez déjà {MAX_CHOICES} vœux : retirez-en un avant d'en ajouter un autre."
NO_SUCH_CHOICE = "Ce vœu n'est plus dans votre liste : la page a peut-être changé dans un autre onglet."


class ChoiceRefused(Exception):
    """A change the list does not take; `message` is French, `status` the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__("choice refused")
        self.message = message
        self.status = status


def paris_today(now: datetime | None = None) -> date:
    """The day in France, the day the deadline is counted in (inclusive)."""
    return (now or datetime.now(PARIS)).astimezone(PARIS).date()


def choosing_state(young: YoungPerson, deadline: date | None, today: date, *, placed: bool = False
                   ) -> ChoosingState:
    if not can_choose(young):
        return (ChoosingState.CONSENT_REFUSED if young.status == YouthStatus.CONSENT_REFUSED
                else ChoosingState.AWAITING_CONSENT)
    if placed:
        return ChoosingState.PLACED
    if deadline is None:
        return ChoosingState.NO_DEADLINE
    return ChoosingState.OPEN if today <= deadline else ChoosingState.CLOSED


def _age_on_start(birth_date: date) -> ColumnElement[Any]:
    """The young person's age in whole years on the offer's first day (as surge.youth.age_on)."""
    return func.date_part("year", func.age(YouthOffer.start_date, literal(birth_date)))


def eligibility(*, missions_start: date, missions_end: date, birth_date: date) -> list[ColumnElement[bool]]:
    """The conditions an offer meets to be chosen by a young person of this cohort and birth date, distance aside:
    validated, its mission and organisation online, its dates within the cohort's missions period, the young
    person old enough on its first day (15 for a mission open to minors, 18 otherwise) and at most 25. The query
    joins `Mission` and `Organisation` (as `eligible_offers_query` does)."""
    age = _age_on_start(birth_date)
    return [
        *offer_online(),
        YouthOffer.start_date >= missions_start,
        YouthOffer.end_date <= missions_end,
        or_(and_(Mission.open_to_minors.is_(True), age >= YOUTH_MIN_AGE), age >= ADULT_AGE),
        age <= YOUTH_MAX_AGE,
    ]


def eligible_offers_query(*, missions_start: date, missions_end: date, birth_date: date
                          ) -> Select[YouthOffer, Mission, Organisation]:
    """The offers a young person of this birth date may choose in a cohort with this missions period, distance
    aside, with their mission and organisation; add `.where(...)` to narrow it."""
    return (
        select(YouthOffer, Mission, Organisation)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(*eligibility(missions_start=missions_start, missions_end=missions_end, birth_date=birth_date))
    )


async def eligible_offer_ids(session: AsyncSession, young: YoungPerson, offer_ids: list[int]) -> set[int]:
    """Which of `offer_ids` the young person may choose now (distance aside)."""
    if not offer_ids:
        return set()
    cohort = await session.get(Cohort, young.cohort_id)
    assert cohort is not None
    query = eligible_offers_query(missions_start=cohort.missions_start, missions_end=cohort.missions_end,
                                  birth_date=young.birth_date)
    return set(await session.scalars(
        query.with_only_columns(YouthOffer.id).where(YouthOffer.id.in_(offer_ids))
    ))


@dataclass(frozen=True, slots=True)
class OfferCard:
    offer_id: int
    mission_path: str
    title: str
    organisation_name: str
    commune_name: str | None  # the nearest address's commune
    distance_km: float | None
    remote: bool
    start_date: date
    end_date: date
    hours: int
    places: int
    places_left: int
    domain_label: str
    open_to_minors: bool


@dataclass(frozen=True, slots=True)
class OfferPage:
    cards: list[OfferCard]
    total: int
    pages: int
    pagination: search_links.Pagination
    located: bool  # False: the young person's commune has no coordinates (remote missions only)


async def _home_point(session: AsyncSession, commune_code: str) -> tuple[float, float] | None:
    row = (await session.execute(
        select(Commune.latitude, Commune.longitude).where(Commune.code == commune_code)
    )).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return float(row[0]), float(row[1])


def _nearest_commune(addresses: list[Any], point: tuple[float, float] | None) -> str | None:
    if not addresses:
        return None
    if point is None:
        return str(addresses[0].commune_name)
    nearest = min(addresses, key=lambda address: haversine_km(point[0], point[1], address.latitude,
                                                              address.longitude))
    return str(nearest.commune_name)


async def offers_page(session: AsyncSession, young: YoungPerson, cohort: Cohort, filters: OfferFilters,
                      path: str = "/snu/missions") -> OfferPage:
    """The offers the young person may choose within the filters, nearest first, `PER_PAGE` a page."""
    query = eligible_offers_query(missions_start=cohort.missions_start, missions_end=cohort.missions_end,
                                  birth_date=young.birth_date)
    if filters.domain:
        query = query.where(Mission.domain == filters.domain)
    if filters.month:
        month_end = (filters.month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        query = query.where(YouthOffer.start_date <= month_end, YouthOffer.end_date >= filters.month)
    point = await _home_point(session, young.commune_code)
    distance: Any = literal(None)
    if point is not None:
        latitude, longitude = point
        offered = select(YouthOffer.mission_id).where(YouthOffer.status == OfferStatus.VALIDATED.value)
        nearest = (
            select(MissionAddress.mission_id, func.min(_distance(latitude, longitude)).label("km"))
            .where(MissionAddress.mission_id.in_(offered))
            .group_by(MissionAddress.mission_id)
            .subquery()
        )
        query = query.outerjoin(nearest, nearest.c.mission_id == Mission.id)
        distance = nearest.c.km
        near: ColumnElement[bool] = distance <= filters.radius_km
        query = query.where(or_(near, Mission.remote.is_(True)) if filters.remote else near)
    elif filters.remote:
        query = query.where(Mission.remote.is_(True))
    else:
        query = query.where(literal(False))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    pages = max(1, math.ceil(total / PER_PAGE))
    rows = (await session.execute(
        query.add_columns(distance.label("km"))
        .order_by(distance.asc().nulls_last() if point is not None else YouthOffer.start_date,
                  YouthOffer.start_date, YouthOffer.id)
        .limit(PER_PAGE).offset((filters.page - 1) * PER_PAGE)
    )).all()
    addresses = await _addresses(session, [mission.id for _, mission, _, _ in rows])
    left = await open_places(session, [offer.id for offer, _, _, _ in rows])
    cards = [
        OfferCard(offer_id=offer.id, mission_path=f"/missions/{mission.id}-{slugify(mission.title)}",
                  title=mission.title, organisation_name=organisation.name,
                  commune_name=_nearest_commune(addresses.get(mission.id, []), point),
                  distance_km=None if km is None else round(float(km), 1), remote=mission.remote,
                  start_date=offer.start_date, end_date=offer.end_date, hours=offer.hours, places=offer.places,
                  places_left=left.get(offer.id, 0), domain_label=DOMAINS.get(mission.domain, mission.domain),
                  open_to_minors=mission.open_to_minors)
        for offer, mission, organisation, km in rows
    ]
    return OfferPage(cards=cards, total=total, pages=pages, pagination=pagination(path, filters, pages),
                     located=point is not None)


# The ranked list.

@dataclass(frozen=True, slots=True)
class ChoiceView:
    rank: int
    offer_id: int
    mission_path: str
    title: str
    organisation_name: str
    start_date: date
    end_date: date
    hours: int
    available: bool  # the offer is still validated and its mission online


async def choices_of(session: AsyncSession, young_person_id: int) -> list[ChoiceView]:
    """The young person's choices, rank 1 first."""
    rows = (await session.execute(
        select(YouthChoice.rank, YouthOffer, Mission, Organisation)
        .join(YouthOffer, YouthOffer.id == YouthChoice.offer_id)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(YouthChoice.young_person_id == young_person_id)
        .order_by(YouthChoice.rank)
    )).all()
    return [
        ChoiceView(rank=rank, offer_id=offer.id, mission_path=f"/missions/{mission.id}-{slugify(mission.title)}",
                   title=mission.title, organisation_name=organisation.name, start_date=offer.start_date,
                   end_date=offer.end_date, hours=offer.hours,
                   available=(offer.status == OfferStatus.VALIDATED and mission.status in ONLINE_STATUSES
                              and mission.deleted_at is None and organisation.status in ONLINE_ORGANISATIONS))
        for rank, offer, mission, organisation in rows
    ]


async def is_placed(session: AsyncSession, young_person_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(
        YouthPlacement.young_person_id == young_person_id, YouthPlacement.status != PlacementStatus.CANCELLED,
    ))))


async def state_of(session: AsyncSession, young: YoungPerson, today: date | None = None
                   ) -> tuple[ChoosingState, date | None]:
    """Whether the young person may change their list today (in France), and their department's deadline."""
    deadline = await deadline_of(session, young.cohort_id, young.department_code)
    placed = await is_placed(session, young.id)
    return choosing_state(young, deadline, today or paris_today(), placed=placed), deadline


def refusal(state: ChoosingState, deadline: date | None) -> str:
    if state == ChoosingState.CLOSED and deadline is not None:
        return (f"La date limite des vœux était le {deadline:%d/%m/%Y} : votre liste ne peut plus changer. "
                "Votre référent·e SNU affectera bientôt les missions.")
    return STATE_MESSAGES[state]


async def _locked_open(session: AsyncSession, young_person_id: int, today: date | None) -> list[YouthChoice]:
    """Locks the young person's row until the transaction ends (every change of the list goes through here, one
    after the other), refuses unless choosing is open, and returns the list as it stands."""
    young = await session.scalar(
        select(YoungPerson).where(YoungPerson.id == young_person_id).with_for_update()
        .execution_options(populate_existing=True)
    )
    if young is None:
        raise ChoiceRefused(NO_SUCH_CHOICE, 404)
    state, deadline = await state_of(session, young, today)
    if state != ChoosingState.OPEN:
        raise ChoiceRefused(refusal(state, deadline), 403)
    return list(await session.scalars(
        select(YouthChoice).where(YouthChoice.young_person_id == young_person_id).order_by(YouthChoice.rank)
        .execution_options(populate_existing=True)
    ))


async def _rewrite(session: AsyncSession, young_person_id: int, kept: list[YouthChoice]) -> None:
    """The list again, ranked 1..n in the order of `kept` (the primary key holds the rank: rows are rewritten
    rather than renumbered in place, which could collide midway)."""
    rows = [{"young_person_id": young_person_id, "rank": rank, "offer_id": choice.offer_id,
             "created_at": choice.created_at} for rank, choice in enumerate(kept, start=1)]
    table = cast(Table, YouthChoice.__table__)
    await session.execute(delete(table).where(table.c.young_person_id == young_person_id))
    if rows:
        await session.execute(insert(table), rows)


async def add_choice(session: AsyncSession, young_person_id: int, offer_id: int, *, today: date | None = None
                     ) -> int:
    """Appends the offer to the list and returns its rank; raises `ChoiceRefused`."""
    choices = await _locked_open(session, young_person_id, today)
    if any(choice.offer_id == offer_id for choice in choices):
        raise ChoiceRefused(ALREADY_CHOSEN, 409)
    if len(choices) >= MAX_CHOICES:
        raise ChoiceRefused(LIST_FULL, 409)
    young = await session.get(YoungPerson, young_person_id)
    assert young is not None
    if not 0 < offer_id <= BIGINT_MAX or offer_id not in await eligible_offer_ids(session, young, [offer_id]):
        raise ChoiceRefused(NOT_OFFERED, 422)
    rank = len(choices) + 1
    await session.execute(insert(YouthChoice).values(young_person_id=young_person_id, rank=rank, offer_id=offer_id))
    return rank


async def move_choice(session: AsyncSession, young_person_id: int, offer_id: int, step: int, *,
                      today: date | None = None) -> None:
    """Moves the offer one rank up (`step` -1) or down (+1); at either end nothing changes."""
    choices = await _locked_open(session, young_person_id, today)
    index = next((i for i, choice in enumerate(choices) if choice.offer_id == offer_id), None)
    if index is None:
        raise ChoiceRefused(NO_SUCH_CHOICE, 409)
    other = index + (1 if step > 0 else -1)
    if not 0 <= other < len(choices):
        return
    choices[index], choices[other] = choices[other], choices[index]
    await _rewrite(session, young_person_id, choices)


async def remove_choice(session: AsyncSession, young_person_id: int, offer_id: int, *,
                        today: date | None = None) -> None:
    """Removes the offer from the list (even one no longer offered); the ranks after it move up."""
    choices = await _locked_open(session, young_person_id, today)
    kept = [choice for choice in choices if choice.offer_id != offer_id]
    if len(kept) == len(choices):
        raise ChoiceRefused(NO_SUCH_CHOICE, 409)
    await _rewrite(session, young_person_id, kept)
