"""What a department or commune page shows beside its missions: names, real population (the installed geography),
volunteers living there, the organisations active there and, for a commune, its validated city page. Computed in
SQL and cached in Redis (app/cache) under an explicit key per territory, tagged with the missions' version counter:
a mission or organisation going on or offline (and a city page validated, which bumps it too) rebuilds the entry at
the next visit, and the volunteers' count, which moves without a version change, at least every TTL_SECONDS."""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheKeys, Policy, shared
from app.formats import SMALL_COUNT
from app.geo.models import Commune, Department, Region
from app.missions.cache import VERSION_KEY
from app.missions.models import Mission, MissionAddress
from app.missions.service import ONLINE_STATUSES
from app.organisations.models import Organisation
from app.organisations.service import slugify
from app.organisations.validation import TYPE_LABELS
from app.territories.models import CityPage
from app.volunteers.models import Volunteer
from surge.coordination.figures import DepartmentCoverage

ENTRY_PREFIX = "renfort:territories:"
TTL_SECONDS = 300
MISSING = b"null"
# Built on the request's database session, so inline (see app/cache).
POLICY = Policy(fresh_seconds=TTL_SECONDS, keep_seconds=3600, rebuild_in_background=False, missing=MISSING)
ORGANISATIONS_SHOWN = 12
COMMUNES_SHOWN = 20  # a department's most populous communes: all of them would be hundreds of links
PROMOTED_MAX = 6


class PlaceRead(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    population: int


class OrganisationSummary(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    path: str
    type_label: str
    commune_name: str
    department_code: str


class PromotedMission(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    title: str
    path: str
    organisation_name: str


class TerritoryView(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "departement" or "ville"
    code: str
    name: str
    department_code: str
    department_name: str
    region_name: str | None
    population: int
    volunteers: int
    # Volunteers per 1,000 inhabitants; None under SMALL_COUNT volunteers (the rate would reveal the count).
    rate: float | None
    organisations: list[OrganisationSummary]
    organisations_total: int
    communes: list[PlaceRead] = msgspec.field(default_factory=list)  # a department's most populous
    postal_codes: list[str] = msgspec.field(default_factory=list)
    text: str | None = None  # a commune's validated city page
    promoted: list[PromotedMission] = msgspec.field(default_factory=list)
    authorities: list[int] = msgspec.field(default_factory=list)  # validated local authorities of the commune

    @property
    def path(self) -> str:
        return f"/{'departements' if self.kind == 'departement' else 'villes'}/{self.code}"

    @property
    def paragraphs(self) -> list[str]:
        return [line.strip() for line in (self.text or "").splitlines() if line.strip()]


def keys(variant: str) -> CacheKeys:
    return CacheKeys.of(VERSION_KEY, ENTRY_PREFIX, variant)


def rate(population: int, volunteers: int) -> float | None:
    """Per 1,000 inhabitants, as the coordinators' dashboard computes it; None when the count must stay hidden."""
    if volunteers < SMALL_COUNT or population <= 0:
        return None
    return DepartmentCoverage("", "", population, volunteers, 0).per_thousand(volunteers)


def organisation_summary(organisation: Organisation, commune: Commune) -> OrganisationSummary:
    return OrganisationSummary(
        id=organisation.id, name=organisation.name,
        path=f"/organisations/{organisation.id}-{slugify(organisation.name)}",
        type_label=TYPE_LABELS[organisation.type], commune_name=commune.name, department_code=commune.department_code,
    )


async def _active_organisations(session: AsyncSession, where_commune: ColumnElement[bool],
                                where_address: ColumnElement[bool]) -> tuple[list[OrganisationSummary], int]:
    """Validated organisations located there, or with an online mission there; by name, the first few and all."""
    located = Organisation.commune_code.in_(select(Commune.code).where(where_commune))
    missions_there = exists().where(
        Mission.organisation_id == Organisation.id, Mission.status.in_(ONLINE_STATUSES),
        MissionAddress.mission_id == Mission.id, where_address,
    )
    condition = (Organisation.status == "validated") & or_(located, missions_there)
    total = int(await session.scalar(select(func.count()).select_from(Organisation).where(condition)) or 0)
    rows = await session.execute(
        select(Organisation, Commune).join(Commune, Commune.code == Organisation.commune_code).where(condition)
        .order_by(func.lower(Organisation.name), Organisation.id).limit(ORGANISATIONS_SHOWN)
    )
    return [organisation_summary(organisation, commune) for organisation, commune in rows], total


def _volunteers_query(where_commune: ColumnElement[bool]) -> ColumnElement[int]:
    return (select(func.count()).select_from(Volunteer).join(Commune, Commune.code == Volunteer.commune_code)
            .where(where_commune, Volunteer.unconfirmed.is_(False)).scalar_subquery())


async def _department(session: AsyncSession, code: str) -> TerritoryView | None:
    row = (await session.execute(
        select(Department.name, Region.name).outerjoin(Region, Region.code == Department.region_code)
        .where(Department.code == code)
    )).first()
    if row is None:
        return None
    in_department = Commune.department_code == code
    population, volunteers = (await session.execute(
        select(func.coalesce(func.sum(Commune.population), 0), _volunteers_query(in_department)).where(in_department)
    )).one()
    address_there = MissionAddress.commune_code.in_(select(Commune.code).where(in_department))
    organisations, total = await _active_organisations(session, in_department, address_there)
    communes = (await session.execute(
        select(Commune.code, Commune.name, Commune.population).where(in_department)
        .order_by(Commune.population.desc(), Commune.code).limit(COMMUNES_SHOWN)
    )).all()
    return TerritoryView(
        kind="departement", code=code, name=row[0], department_code=code, department_name=row[0],
        region_name=row[1], population=int(population), volunteers=int(volunteers),
        rate=rate(int(population), int(volunteers)), organisations=organisations, organisations_total=total,
        communes=[PlaceRead(code=c, name=name, population=int(people)) for c, name, people in communes],
    )


async def _promoted(session: AsyncSession, mission_ids: list[int]) -> list[PromotedMission]:
    """The chosen missions still online, in the order chosen."""
    if not mission_ids:
        return []
    rows = await session.execute(
        select(Mission.id, Mission.title, Organisation.name)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Mission.id.in_(mission_ids), Mission.status.in_(ONLINE_STATUSES), Organisation.status == "validated")
    )
    found = {mission_id: (title, name) for mission_id, title, name in rows}
    return [PromotedMission(id=mission_id, title=found[mission_id][0], organisation_name=found[mission_id][1],
                            path=f"/missions/{mission_id}-{slugify(found[mission_id][0])}")
            for mission_id in mission_ids if mission_id in found][:PROMOTED_MAX]


async def _commune(session: AsyncSession, code: str) -> TerritoryView | None:
    row = (await session.execute(
        select(Commune, Department.name, Region.name).join(Department, Department.code == Commune.department_code)
        .outerjoin(Region, Region.code == Department.region_code).where(Commune.code == code)
    )).first()
    if row is None:
        return None
    commune, department_name, region_name = row
    volunteers = int(await session.scalar(select(_volunteers_query(Commune.code == code))) or 0)
    organisations, total = await _active_organisations(session, Commune.code == code,
                                                       MissionAddress.commune_code == code)
    page = await session.get(CityPage, code)
    if page is not None and not await session.scalar(
            select(Organisation.status == "validated").where(Organisation.id == page.organisation_id)):
        page = None  # its local authority is suspended: so is its page
    authorities = list(await session.scalars(
        select(Organisation.id).where(Organisation.commune_code == code, Organisation.type == "collectivite",
                                      Organisation.status == "validated").order_by(Organisation.id)
    ))
    text = page.text if page is not None else None
    return TerritoryView(
        kind="ville", code=code, name=commune.name, department_code=commune.department_code,
        department_name=department_name, region_name=region_name, population=commune.population,
        volunteers=volunteers, rate=rate(commune.population, volunteers), organisations=organisations,
        organisations_total=total, postal_codes=sorted(commune.postal_codes or []), text=text,
        promoted=await _promoted(session, list(page.mission_ids or [])) if text is not None and page else [],
        authorities=authorities,
    )


async def department(session: AsyncSession, redis: Redis, code: str) -> TerritoryView | None:
    """None for a department the geography does not know."""
    async def build() -> bytes:
        view = await _department(session, code)
        return MISSING if view is None else msgspec.json.encode(view)

    cached = await shared(redis, POLICY).get(keys(f"departement:{code}"), build)
    return None if cached == MISSING else msgspec.json.decode(cached, type=TerritoryView)


async def commune(session: AsyncSession, redis: Redis, code: str) -> TerritoryView | None:
    """None for a commune the geography does not know."""
    async def build() -> bytes:
        view = await _commune(session, code)
        return MISSING if view is None else msgspec.json.encode(view)

    cached = await shared(redis, POLICY).get(keys(f"ville:{code}"), build)
    return None if cached == MISSING else msgspec.json.decode(cached, type=TerritoryView)
