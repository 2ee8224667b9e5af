"""The referents' view of one cohort in one department: offers awaiting validation, young people without a choice or
without a place, agreements waiting for a signature, missions under way and completed. One query reads every young
person of the cohort and department with their choices, placement, agreement and hours; the page and the CSV export
both classify that one list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.models import Mission
from app.organisations.models import Organisation
from app.youth.models import (
    AgreementParty,
    OfferStatus,
    PlacementStatus,
    YoungPerson,
    YouthAgreement,
    YouthAgreementSignature,
    YouthChoice,
    YouthHours,
    YouthOffer,
    YouthPlacement,
    YouthStatus,
)

LIST_LIMIT = 200  # rows a section shows; the CSV export holds them all

STATUS_LABELS = {
    YouthStatus.AWAITING_CONSENT: "Consentement du représentant légal attendu",
    YouthStatus.CONSENT_REFUSED: "Consentement refusé",
    YouthStatus.READY: "Peut choisir",
}
PARTY_LABELS = {
    AgreementParty.YOUNG: "le ou la jeune",
    AgreementParty.GUARDIAN: "le représentant légal",
    AgreementParty.ORGANISATION: "la structure (tuteur ou tutrice)",
    AgreementParty.REFERENT: "le ou la référent·e",
}
PARTY_ORDER = tuple(AgreementParty)


@dataclass(frozen=True, slots=True)
class YoungRow:
    id: int
    first_name: str
    last_name: str
    status: str
    choices: int
    placement_id: int | None
    placement_status: str | None
    rank: int | None
    mission_title: str | None
    start_date: date | None
    end_date: date | None
    agreement_id: int | None
    signed: bool
    unsigned: tuple[str, ...]  # the parties still to sign, in PARTY_ORDER
    hours: Decimal

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(YouthStatus(self.status), self.status)

    @property
    def waiting_for(self) -> str:
        """Who has not signed yet, in French; the agreement itself when it is not made yet."""
        if self.agreement_id is None:
            return "convention en préparation"
        return ", ".join(PARTY_LABELS[AgreementParty(party)] for party in self.unsigned)

    @property
    def stage(self) -> str:
        """Where this young person stands, as the CSV export's « Étape » column says it."""
        if self.placement_status == PlacementStatus.COMPLETED:
            return "Mission terminée"
        if self.placement_id is not None:
            return "Mission en cours" if self.signed else "Convention à signer"
        return "Vœux faits, sans affectation" if self.choices else "Sans vœu"


@dataclass(frozen=True, slots=True)
class AwaitingOffer:
    id: int
    mission_title: str
    organisation: str
    places: int
    start_date: date
    end_date: date


@dataclass(frozen=True, slots=True)
class Section:
    rows: Sequence[YoungRow]
    total: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    deadline: date | None
    deadline_passed: bool
    offers_awaiting: Sequence[AwaitingOffer]
    offers_awaiting_total: int
    young_total: int
    without_choice: Section
    without_place: Section
    awaiting_signature: Section
    under_way: Section
    completed: Section
    rank_counts: dict[int, int] = field(default_factory=dict)


async def young_rows(session: AsyncSession, *, cohort_id: int, department_code: str) -> list[YoungRow]:
    """Every young person of the cohort and department, by name."""
    choices = (select(func.count()).where(YouthChoice.young_person_id == YoungPerson.id)
               .correlate(YoungPerson).scalar_subquery())
    unsigned = (select(func.array_agg(YouthAgreementSignature.party))
                .where(YouthAgreementSignature.agreement_id == YouthAgreement.id,
                       YouthAgreementSignature.signed_at.is_(None))
                .correlate(YouthAgreement).scalar_subquery())
    hours = (select(func.coalesce(func.sum(YouthHours.hours), 0)).where(YouthHours.placement_id == YouthPlacement.id)
             .correlate(YouthPlacement).scalar_subquery())
    query = (
        select(YoungPerson.id, YoungPerson.first_name, YoungPerson.last_name, YoungPerson.status,
               choices.label("choices"), YouthPlacement.id.label("placement_id"),
               YouthPlacement.status.label("placement_status"), YouthPlacement.rank, Mission.title,
               YouthOffer.start_date, YouthOffer.end_date, YouthAgreement.id.label("agreement_id"),
               YouthAgreement.signed_at, unsigned.label("unsigned"), hours.label("hours"))
        .outerjoin(YouthPlacement, (YouthPlacement.young_person_id == YoungPerson.id)
                   & (YouthPlacement.status != PlacementStatus.CANCELLED.value))
        .outerjoin(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
        .outerjoin(Mission, Mission.id == YouthOffer.mission_id)
        .outerjoin(YouthAgreement, YouthAgreement.placement_id == YouthPlacement.id)
        .where(YoungPerson.cohort_id == cohort_id, YoungPerson.department_code == department_code)
        .order_by(func.lower(YoungPerson.last_name), func.lower(YoungPerson.first_name), YoungPerson.id)
    )
    rows = []
    for row in await session.execute(query):
        parties = set(row.unsigned or ())
        rows.append(YoungRow(
            id=row.id, first_name=row.first_name, last_name=row.last_name, status=row.status, choices=row.choices,
            placement_id=row.placement_id, placement_status=row.placement_status, rank=row.rank,
            mission_title=row.title, start_date=row.start_date, end_date=row.end_date,
            agreement_id=row.agreement_id, signed=row.signed_at is not None,
            unsigned=tuple(party.value for party in PARTY_ORDER if party.value in parties),
            hours=Decimal(row.hours)))
    return rows


async def awaiting_offers(session: AsyncSession, department_code: str) -> tuple[list[AwaitingOffer], int]:
    where = (YouthOffer.department_code == department_code,
             YouthOffer.status == OfferStatus.AWAITING_VALIDATION.value)
    total = await session.scalar(select(func.count()).select_from(YouthOffer).where(*where)) or 0
    rows = await session.execute(
        select(YouthOffer.id, Mission.title, Organisation.name, YouthOffer.places, YouthOffer.start_date,
               YouthOffer.end_date)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(*where).order_by(YouthOffer.created_at, YouthOffer.id).limit(LIST_LIMIT)
    )
    return [AwaitingOffer(*row) for row in rows], total


def _section(rows: list[YoungRow]) -> Section:
    return Section(rows=rows[:LIST_LIMIT], total=len(rows))


async def dashboard(session: AsyncSession, *, cohort_id: int, department_code: str, deadline: date | None,
                    today: date) -> Dashboard:
    young = await young_rows(session, cohort_id=cohort_id, department_code=department_code)
    offers, offers_total = await awaiting_offers(session, department_code)
    passed = deadline is not None and today > deadline
    placed = [row for row in young if row.placement_id is not None]
    ranks: dict[int, int] = {}
    for row in placed:
        if row.rank is not None:
            ranks[row.rank] = ranks.get(row.rank, 0) + 1
    return Dashboard(
        deadline=deadline, deadline_passed=passed, offers_awaiting=offers, offers_awaiting_total=offers_total,
        young_total=len(young),
        without_choice=_section([row for row in young if row.placement_id is None and not row.choices]),
        without_place=_section([row for row in young if row.placement_id is None and row.choices and passed]),
        awaiting_signature=_section([row for row in placed if not row.signed
                                     and row.placement_status == PlacementStatus.PLACED]),
        under_way=_section([row for row in placed if row.signed and row.placement_status == PlacementStatus.PLACED]),
        completed=_section([row for row in placed if row.placement_status == PlacementStatus.COMPLETED]),
        rank_counts=dict(sorted(ranks.items())),
    )
