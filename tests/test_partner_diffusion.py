"""Diffusion rules against real rows: a partner receives our online missions narrowed by its domains, departments
and organisations (an empty list leaves the criterion open), other partners' missions only when it takes them, and
never its own, a deleted one, a draft, or one of an organisation that is not online."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_engine
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.partners.context import PartnerContext
from app.partners.diffusion import shared_with
from tests.conftest import DATABASE_URL
from tests.partner_fixtures import create_partner

LYON, MARSEILLE, PARIS = "69123", "13055", "75056"


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = make_engine(DATABASE_URL, pool_size=0)
    yield engine
    await engine.dispose()


async def organisation(db: asyncpg.Connection, status: str = "validated", partner_id: int | None = None) -> int:
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status,"
        " partner_id, partner_key) SELECT 'Structure', 'association', 'W111234567', 'Rue', postal_codes[1], code,"
        " 'Aide.', $2, $3::bigint, CASE WHEN $3::bigint IS NULL THEN NULL ELSE 'id:' || gen_random_uuid() END"
        " FROM communes WHERE code = $1 RETURNING id", LYON, status, partner_id,
    )
    return organisation_id


async def mission(db: asyncpg.Connection, organisation_id: int, *, domain: str = "solidarite-insertion",
                  communes: tuple[str, ...] = (LYON,), status: str = "published", partner_id: int | None = None,
                  deleted: bool = False) -> int:
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status, partner_id, client_id, deleted_at) VALUES ($1, 'Mission', 'Une mission de test.',"
        " $2, '{}', false, current_date, 5, false, $3, $4::bigint,"
        " CASE WHEN $4::bigint IS NULL THEN NULL ELSE gen_random_uuid()::text END,"
        " CASE WHEN $5 THEN now() END) RETURNING id",
        organisation_id, domain, status, partner_id, deleted,
    )
    for commune in communes:
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " SELECT $1, 'Rue', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
            mission_id, commune,
        )
    return mission_id


def partner(partner_id: int = 1, **rules: object) -> PartnerContext:
    return PartnerContext(id=partner_id, name="Lecteur", rate_limit_per_minute=1200, **rules)  # type: ignore[arg-type]


async def shared(engine: AsyncEngine, reader: PartnerContext) -> set[int]:
    async with engine.connect() as connection:
        statement = select(Mission.id).join(Organisation, Organisation.id == Mission.organisation_id)
        rows = await connection.execute(statement.where(shared_with(reader)))
        return {row[0] for row in rows}


async def test_an_open_partner_receives_every_online_mission_of_ours_and_nothing_offline(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    online = await organisation(db)
    published = await mission(db, online)
    full = await mission(db, online, status="full")
    await mission(db, online, status="draft")
    await mission(db, online, status="cancelled")
    await mission(db, online, deleted=True)
    await mission(db, await organisation(db, status="suspended"))
    await mission(db, await organisation(db, status="awaiting_validation"))
    assert await shared(engine, partner()) == {published, full}


async def test_domains_departments_and_organisations_each_narrow_and_combine(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    first, second = await organisation(db), await organisation(db)
    lyon_solidarity = await mission(db, first)
    lyon_sport = await mission(db, first, domain="sport-pour-tous")
    marseille_solidarity = await mission(db, second, communes=(MARSEILLE,))
    two_places = await mission(db, second, domain="sport-pour-tous", communes=(PARIS, LYON))

    assert await shared(engine, partner(diffusion_domains=("solidarite-insertion",))) == {
        lyon_solidarity, marseille_solidarity}
    assert await shared(engine, partner(diffusion_departments=("69",))) == {lyon_solidarity, lyon_sport, two_places}
    assert await shared(engine, partner(diffusion_departments=("75", "13"))) == {marseille_solidarity, two_places}
    assert await shared(engine, partner(diffusion_organisation_ids=(second,))) == {marseille_solidarity, two_places}
    assert await shared(engine, partner(diffusion_domains=("sport-pour-tous",), diffusion_departments=("69",),
                                        diffusion_organisation_ids=(second,))) == {two_places}
    assert await shared(engine, partner(diffusion_departments=("2A",))) == set()


async def test_other_partners_missions_only_when_taken_and_never_its_own(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    reader_id = await create_partner(db, "Lecteur")
    publisher_id = await create_partner(db, "Éditeur")
    ours = await mission(db, await organisation(db))
    theirs = await mission(db, await organisation(db, partner_id=publisher_id), partner_id=publisher_id)
    own = await mission(db, await organisation(db, partner_id=reader_id), partner_id=reader_id)
    await mission(db, await organisation(db, partner_id=publisher_id), partner_id=publisher_id, deleted=True)

    assert await shared(engine, partner(reader_id)) == {ours}
    assert await shared(engine, partner(reader_id, diffuses_partner_missions=True)) == {ours, theirs}
    assert own not in await shared(engine, partner(reader_id, diffuses_partner_missions=True))
    # Its rules narrow our missions only: another partner's mission in another domain still comes.
    narrowed = partner(reader_id, diffuses_partner_missions=True, diffusion_domains=("art-culture",))
    assert await shared(engine, narrowed) == {theirs}
