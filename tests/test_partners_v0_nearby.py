"""`GET /v0/mission`'s radius queries answered from the in-memory snapshot (app/partners/nearby.py) find exactly what
the SQL statement finds, for every filter, diffusion rule and page, written byte for byte the same; a mission taken
offline leaves the answers within a second of the missions' version changing; and a rebuild encodes again exactly
the missions whose rows changed, whichever column or table changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.datastructures import MultiDict
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_engine
from app.missions.cache import invalidate
from app.partners import read
from app.partners.context import PartnerContext
from app.partners.nearby import Nearby
from app.partners.wire import Rendering
from app.settings import Settings
from app.volunteers.age import today
from tests.partner_fixtures import create_partner
from tests.test_partners_v0 import mission, organisation
from tests.test_partners_v0_filters import town_hall

LYON, VILLEURBANNE, GRENOBLE, SAINT_ETIENNE = "69123", "69266", "38185", "42218"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    made = make_engine(settings.database_url, pool_size=2)
    yield made
    await made.dispose()


@pytest.fixture
async def nearby(settings: Settings, redis: Redis) -> AsyncIterator[tuple[Nearby, Clock]]:
    clock = Clock()
    made = Nearby(settings.database_url, redis, clock=clock)
    yield made, clock
    await made.close()


async def answer(engine: AsyncEngine, partner: PartnerContext, params: dict[str, Any],
                 snapshot: Nearby | None) -> tuple[int, list[Any]]:
    """The total and the page's missions as the API writes them."""
    places = await read.prepared_geography(engine)
    pairs = [(name, item) for name, value in params.items() for item in (value if isinstance(value, list) else [value])]
    query = read.parse(MultiDict(pairs), places)
    if snapshot is not None:
        assert read.around_of(query) is not None, params  # this query takes the snapshot's path
    total, missions = await read.find(engine, query, partner, Rendering(places.departments, "https://r.example",
                                                                          partner.id), snapshot)
    return total, [msgspec.json.decode(item) for item in missions]


async def find(engine: AsyncEngine, partner: PartnerContext, params: dict[str, Any],
               snapshot: Nearby | None) -> tuple[int, list[int]]:
    total, missions = await answer(engine, partner, params, snapshot)
    return total, [int(item["_id"]) for item in missions]


async def communes_around(db: asyncpg.Connection, code: str, count: int) -> list[str]:
    """Real communes spread over the 80 km around one (the nearest first, then every few)."""
    lat, lon = await town_hall(db, code)
    rows = await db.fetch(
        "SELECT code FROM communes WHERE abs(latitude - $1) < 0.7 AND abs(longitude - $2) < 1.0"
        " ORDER BY (latitude - $1) ^ 2 + (longitude - $2) ^ 2, code", lat, lon)
    codes = [row["code"] for row in rows]
    return codes[:count // 2] + codes[count // 2::max(1, len(codes) // count)][:count - count // 2]


async def a_varied_world(db: asyncpg.Connection) -> dict[str, int]:
    """Our missions and a partner's around Lyon, with every attribute the filters read varied, and the missions that
    must never show (a draft, a deleted one, an offline organisation's)."""
    publisher = await create_partner(db, "Plateforme Éditrice")
    ours = [await organisation(db, "Entraide du Rhône"), await organisation(db, "Secours de l'Isère", GRENOBLE)]
    theirs = await organisation(db, "Les Amis du Parc", partner_id=publisher, partner_key="id:asso-7")
    offline = await organisation(db, "Structure en attente", status="suspended")
    places = await communes_around(db, LYON, 40)
    domains = ("solidarite-insertion", "sante-pour-tous", "education-pour-tous")
    now = datetime.now(UTC)
    year = today().year
    for number, commune in enumerate(places):
        communes = (commune, places[(number * 7) % len(places)]) if number % 4 == 0 else (commune,)
        await mission(
            db, theirs if number % 3 == 0 else ours[number % 2], f"Mission {number}", communes=communes,
            domain=domains[number % 3], remote=number % 5 == 0, minors=number % 2 == 0,
            start=None if number % 6 == 0 else date(year + 1, 1 + number % 12, 1 + number % 27),
            created_at=now - timedelta(days=number * 3), partner_id=publisher if number % 3 == 0 else None,
            client_id=f"p-{number}" if number % 3 == 0 else None,
        )
    # The same point twice: the order between them is by id.
    await mission(db, ours[0], "Même mairie A", communes=(VILLEURBANNE,))
    await mission(db, ours[0], "Même mairie B", communes=(VILLEURBANNE,))
    await mission(db, ours[1], "À Grenoble", communes=(GRENOBLE,), domain="sante-pour-tous")
    await mission(db, ours[0], "Brouillon", status="draft")
    await mission(db, ours[0], "Supprimée", deleted=True)
    await mission(db, offline, "Structure hors ligne")
    return {"publisher": publisher, "ours": ours[0], "grenoble": ours[1]}


def readers(world: dict[str, int]) -> list[PartnerContext]:
    def context(partner_id: int, **rules: Any) -> PartnerContext:
        return PartnerContext(id=partner_id, name="Lectrice", rate_limit_per_minute=1000, **rules)

    return [
        context(900, diffuses_partner_missions=True),
        context(901),
        context(world["publisher"], diffuses_partner_missions=True),  # never its own missions back
        context(902, diffusion_domains=("sante-pour-tous", "education-pour-tous"), diffuses_partner_missions=True),
        context(903, diffusion_departments=("38",)),
        context(904, diffusion_organisation_ids=(world["grenoble"],), diffusion_departments=("38", "69")),
        context(905, diffusion_domains=("solidarite-insertion",), diffusion_organisation_ids=(world["ours"],)),
    ]


def queries(lat: float, lon: float) -> list[dict[str, Any]]:
    year = today().year
    point = {"lat": str(lat), "lon": str(lon)}
    shapes: list[dict[str, Any]] = [
        {}, {"distance": "5km"}, {"distance": "20"}, {"distance": "100km"}, {"distance": "0"},
        {"distance": "30km", "limit": "5"}, {"distance": "100km", "skip": "3", "limit": "4"},
        {"distance": "100km", "skip": "500"}, {"limit": "0"},
        {"distance": "100km", "domain": "sante"}, {"distance": "100km", "domain": "solidarite-insertion,education"},
        {"distance": "100km", "type": "benevolat"}, {"distance": "80km", "remote": "full"},
        {"distance": "80km", "remote": "no,full"}, {"distance": "80km", "remote": "possible"},
        {"distance": "80km", "openToMinors": "yes"}, {"distance": "80km", "openToMinors": "no"},
        {"distance": "100km", "departmentCode": "38"}, {"distance": "100km", "departmentCode": "69,01"},
        {"distance": "100km", "departmentName": "Rhône"}, {"distance": "100km", "city": "Villeurbanne"},
        {"distance": "100km", "city": "lyon,GRENOBLE"}, {"distance": "100km", "city": "Saint-Étienne"},
        {"distance": "100km", "createdAt": f"gt:{(today() - timedelta(days=30)).isoformat()}"},
        {"distance": "100km", "createdAt": [f"lt:{(today() - timedelta(days=10)).isoformat()}",
                                            f"gt:{(today() - timedelta(days=90)).isoformat()}"]},
        {"distance": "100km", "startAt": f"gt:{year + 1}-06-01"},
        {"distance": "100km", "startAt": f"lt:{year + 1}-06-01"},
        {"distance": "100km", "startAt": f"lt:{year + 1}-06-01T00:00:01Z"},
        {"distance": "100km", "startAt": [f"gt:{year + 1}-03-01", f"lt:{year + 1}-09-30T12:00:00Z"]},
        {"distance": "100km", "domain": "sante", "openToMinors": "no", "departmentCode": "69", "limit": "3"},
        {"distance": "60km", "remote": "no", "startAt": f"gt:{year + 1}-02-01", "city": "Villeurbanne,Lyon",
         "createdAt": f"gt:{(today() - timedelta(days=60)).isoformat()}"},
    ]
    return [{**point, **shape} for shape in shapes]


async def test_the_snapshot_finds_the_same_missions_and_totals_as_sql(
        db: asyncpg.Connection, engine: AsyncEngine, nearby: tuple[Nearby, Clock]) -> None:
    world = await a_varied_world(db)
    snapshot, _ = nearby
    totals: set[int] = set()
    for code in (LYON, VILLEURBANNE, GRENOBLE, SAINT_ETIENNE):
        lat, lon = await town_hall(db, code)
        for partner in readers(world):
            for params in queries(lat, lon):
                from_sql = await answer(engine, partner, params, None)
                from_snapshot = await answer(engine, partner, params, snapshot)
                assert from_snapshot == from_sql, (code, partner, params)
                totals.add(from_sql[0])
    assert len(totals) > 15 and max(totals) > 20  # the filters and rules really narrowed something


async def test_queries_the_arrays_cannot_answer_keep_the_sql_path(db: asyncpg.Connection,
                                                                  engine: AsyncEngine) -> None:
    places = await read.prepared_geography(engine)
    point = {"lat": "45.76", "lon": "4.83"}
    for params in ({**point, "keywords": "colis"}, {**point, "activity": "distribution"}, {"domain": "sante"},
                   {**point, "city": "Œuilly"}, {**point, "city": "Ḿontluçon"},
                   {**point, "type": "volontariat_sapeurs_pompiers"}):
        assert read.around_of(read.parse(MultiDict(params), places)) is None, params


async def rebuilt(snapshot: Nearby, clock: Clock) -> None:
    clock.now += 1.1
    await snapshot.snapshot()
    await snapshot.settled()


async def test_a_mission_taken_offline_leaves_the_answers_within_a_second(
        db: asyncpg.Connection, engine: AsyncEngine, redis: Redis, nearby: tuple[Nearby, Clock]) -> None:
    snapshot, clock = nearby
    org = await organisation(db)
    first = await mission(db, org, "Première", communes=(LYON,))
    second = await mission(db, org, "Seconde", communes=(VILLEURBANNE,))
    lat, lon = await town_hall(db, LYON)
    partner = PartnerContext(id=900, name="Lectrice", rate_limit_per_minute=1000)
    params = {"lat": str(lat), "lon": str(lon), "distance": "20km"}
    assert await find(engine, partner, params, snapshot) == (2, [first, second])
    built = await snapshot.snapshot()

    await db.execute("UPDATE missions SET status = 'draft' WHERE id = $1", first)
    third = await mission(db, org, "Troisième", communes=(LYON,))
    await invalidate(redis)  # as every change of what is online does, after its commit
    clock.now += 0.5
    assert await snapshot.snapshot() is built  # checked at most once a second
    assert await find(engine, partner, params, snapshot) == (2, [first, second])
    clock.now += 0.6
    assert await snapshot.snapshot() is built  # the rebuild runs in the background, requests keep the old one
    await snapshot.settled()
    assert await snapshot.snapshot() is not built
    assert await find(engine, partner, params, snapshot) == (2, [third, second])

    await db.execute("UPDATE organisations SET status = 'suspended' WHERE id = $1", org)
    await invalidate(redis)
    await rebuilt(snapshot, clock)
    assert await find(engine, partner, params, snapshot) == (0, [])


async def test_a_rebuild_encodes_again_exactly_the_missions_whose_rows_changed(
        db: asyncpg.Connection, engine: AsyncEngine, redis: Redis, nearby: tuple[Nearby, Clock]) -> None:
    snapshot, clock = nearby
    org, other = await organisation(db, "Entraide du Rhône"), await organisation(db, "Voisins de Villeurbanne")
    titled = await mission(db, org, "Titre d'origine", communes=(LYON,))
    moved = await mission(db, org, "Déménage", communes=(LYON,))
    renamed = await mission(db, other, "Chez les voisins", communes=(VILLEURBANNE,))
    untouched = await mission(db, org, "Sans changement", communes=(VILLEURBANNE,))
    lat, lon = await town_hall(db, LYON)
    partner = PartnerContext(id=900, name="Lectrice", rate_limit_per_minute=1000)
    params = {"lat": str(lat), "lon": str(lon), "distance": "20km"}

    async def missions() -> dict[int, dict[str, Any]]:
        _, page = await answer(engine, partner, params, snapshot)
        return {int(item["_id"]): item for item in page}

    before = await missions()
    fragments = dict((await snapshot.snapshot()).fragments)
    # Three writes that leave updated_at alone: a column, the organisation's name, an address.
    await db.execute("UPDATE missions SET title = 'Titre corrigé' WHERE id = $1", titled)
    await db.execute("UPDATE organisations SET name = 'Voisins solidaires' WHERE id = $1", other)
    await db.execute("UPDATE mission_addresses SET address_line = '2 rue Neuve' WHERE mission_id = $1", moved)
    await invalidate(redis)
    await rebuilt(snapshot, clock)
    after = await missions()
    current = (await snapshot.snapshot()).fragments
    assert after[titled]["title"] == "Titre corrigé" and before[titled]["title"] == "Titre d'origine"
    assert after[renamed]["organizationName"] == "Voisins solidaires"
    assert after[moved]["addresses"][0]["street"] == "2 rue Neuve" != before[moved]["addresses"][0]["street"]
    assert after[untouched] == before[untouched]
    assert current[untouched] is fragments[untouched]  # not read nor encoded again
    assert all(current[key] is not fragments[key] for key in (titled, moved, renamed))
    # And what the snapshot writes is what the SQL path writes for the same missions.
    assert await answer(engine, partner, params, None) == await answer(engine, partner, params, snapshot)


async def test_without_a_version_change_the_snapshot_is_still_rebuilt_every_minute(
        db: asyncpg.Connection, engine: AsyncEngine, nearby: tuple[Nearby, Clock]) -> None:
    snapshot, clock = nearby
    org = await organisation(db)
    lat, lon = await town_hall(db, LYON)
    partner = PartnerContext(id=900, name="Lectrice", rate_limit_per_minute=1000)
    params = {"lat": str(lat), "lon": str(lon)}
    assert await find(engine, partner, params, snapshot) == (0, [])
    added = await mission(db, org, "Sans version", communes=(LYON,))  # e.g. a version bump lost
    clock.now += 30
    await snapshot.snapshot()
    await snapshot.settled()
    assert await find(engine, partner, params, snapshot) == (0, [])
    clock.now += 31
    await snapshot.snapshot()
    await snapshot.settled()
    assert await find(engine, partner, params, snapshot) == (1, [added])
