"""The bulk upsert of a partner's missions, as the write API and the feed import use it: created, unchanged (not
rewritten), updated, refused-but-stored, restored after a soft delete, and the partner's absent missions deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.after_commit import Clients
from app.db.base import make_engine, unit_of_work
from app.missions.cache import VERSION_KEY
from app.partners.placing import Placer
from app.partners.records import PartnerRecord, RecordAddress
from app.partners.upsert import UpsertResult, delete_absent, delete_one, upsert_records
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.partner_fixtures import create_partner


async def _load_placer() -> Placer:
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            return await Placer.load(session)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def placer(database: str) -> Placer:
    return asyncio.run(_load_placer())


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    built = make_engine(DATABASE_URL, pool_size=0)
    yield built
    await built.dispose()


def record(number: int, **fields: object) -> PartnerRecord:
    values: dict[str, object] = {
        "client_id": f"m-{number}", "title": f"Distribution alimentaire numéro {number}",
        "description": "Aider à <b>distribuer</b> des colis.", "application_url": f"https://p.example/m/{number}",
        "domain": "solidarite-insertion", "remote": "no", "places": 2, "start_at": "2030-03-01",
        "organization_name": "Banque alimentaire du Rhône", "organization_client_id": "ba69",
        "addresses": [RecordAddress(postal_code="69003", city="Lyon")],
    }
    values.update(fields)
    return PartnerRecord(**values)  # type: ignore[arg-type]


async def run(engine: AsyncEngine, partner_id: int, records: list[PartnerRecord], placer: Placer) -> UpsertResult:
    redis = Redis.from_url(REDIS_URL)
    sync = SyncRedis.from_url(REDIS_URL)
    try:
        async with unit_of_work(engine, Clients(redis, sync)) as session:
            return await upsert_records(session, partner_id=partner_id, records=records, placer=placer)
    finally:
        await redis.aclose()
        sync.close()


async def test_same_records_twice_the_second_run_writes_nothing(engine: AsyncEngine, db: asyncpg.Connection,
                                                                 redis: Redis, placer: Placer) -> None:
    partner_id = await create_partner(db)
    records = [record(number) for number in range(30)]
    first = await run(engine, partner_id, records, placer)
    assert (first.created, first.updated, first.unchanged, first.refused) == (30, 0, 0, 0)
    assert await redis.get(VERSION_KEY) is not None  # the search sees the new missions
    before = await db.fetch("SELECT id, xmin::text AS xmin, updated_at FROM missions ORDER BY id")
    addresses = await db.fetch("SELECT id, xmin::text AS xmin FROM mission_addresses ORDER BY id")
    organisations = await db.fetch("SELECT id, xmin::text AS xmin FROM organisations ORDER BY id")
    second = await run(engine, partner_id, records, placer)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 30)
    assert await db.fetch("SELECT id, xmin::text AS xmin, updated_at FROM missions ORDER BY id") == before
    assert await db.fetch("SELECT id, xmin::text AS xmin FROM mission_addresses ORDER BY id") == addresses
    assert await db.fetch("SELECT id, xmin::text AS xmin FROM organisations ORDER BY id") == organisations
    assert len(organisations) == 1
    online = await db.fetchrow(
        "SELECT m.status, m.partner_id, m.application_url, o.status AS organisation_status, o.partner_key,"
        " a.commune_code FROM missions m JOIN organisations o ON o.id = m.organisation_id"
        " JOIN mission_addresses a ON a.mission_id = m.id WHERE m.client_id = 'm-1'")
    assert dict(online) == {"status": "published", "partner_id": partner_id, "application_url": "https://p.example/m/1",
                            "organisation_status": "validated", "partner_key": "id:ba69", "commune_code": "69123"}
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 0


async def test_a_changed_record_is_updated_and_its_addresses_replaced(engine: AsyncEngine, db: asyncpg.Connection,
                                                                       placer: Placer) -> None:
    partner_id = await create_partner(db)
    await run(engine, partner_id, [record(1), record(2)], placer)
    other = await db.fetchval("SELECT xmin::text FROM missions WHERE client_id = 'm-2'")
    moved = record(1, title="Distribution alimentaire à Marseille",
                   addresses=[RecordAddress(postal_code="13001", city="Marseille")],
                   organization_name="Banque alimentaire Sud")
    result = await run(engine, partner_id, [moved, record(2)], placer)
    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    row = await db.fetchrow("SELECT m.title, a.commune_code, o.name FROM missions m"
                            " JOIN mission_addresses a ON a.mission_id = m.id"
                            " JOIN organisations o ON o.id = m.organisation_id WHERE m.client_id = 'm-1'")
    assert tuple(row) == ("Distribution alimentaire à Marseille", "13055", "Banque alimentaire Sud")
    assert await db.fetchval("SELECT count(*) FROM mission_addresses") == 2
    assert await db.fetchval("SELECT xmin::text FROM missions WHERE client_id = 'm-2'") == other


async def test_a_refused_record_is_stored_as_a_draft_with_its_reason(engine: AsyncEngine, db: asyncpg.Connection,
                                                                      placer: Placer) -> None:
    partner_id = await create_partner(db)
    result = await run(engine, partner_id, [
        record(1, places=0), record(2, client_id=None), record(3, title="Seul\x00", description="\x00"),
        record(4, organization_name=None, organization_client_id=None),
    ], placer)
    assert result.refused == 4 and result.created == 3
    assert [(refusal.client_id, refusal.reason[:25]) for refusal in result.refusals] == [
        (None, "ClientId manquant"), ("m-1", "Nombre de places invalide"), ("m-3", "Le titre contient des car"),
        ("m-4", "Organisation non identifiée"[:25]),
    ]
    rows = await db.fetch("SELECT client_id, status, status_reason FROM missions ORDER BY client_id")
    assert [(row["client_id"], row["status"]) for row in rows] == [("m-1", "draft"), ("m-3", "draft"),
                                                                   ("m-4", "draft")]
    assert rows[0]["status_reason"] == "Nombre de places invalide (doit être supérieur à 0)"


async def test_delete_absent_soft_deletes_and_a_returning_mission_is_restored(
    engine: AsyncEngine, db: asyncpg.Connection, placer: Placer,
) -> None:
    partner_id = await create_partner(db)
    other_partner = await create_partner(db, "Autre plateforme")
    await run(engine, partner_id, [record(1), record(2), record(3)], placer)
    await run(engine, other_partner, [record(1)], placer)
    async with unit_of_work(engine, Clients(Redis.from_url(REDIS_URL), SyncRedis.from_url(REDIS_URL))) as session:
        assert await delete_absent(session, partner_id=partner_id, present=["m-1"]) == 2
    rows = await db.fetch("SELECT client_id, status, deleted_at IS NOT NULL AS deleted FROM missions"
                          " WHERE partner_id = $1 ORDER BY client_id", partner_id)
    assert [tuple(row) for row in rows] == [("m-1", "published", False), ("m-2", "cancelled", True),
                                            ("m-3", "cancelled", True)]
    assert await db.fetchval("SELECT status FROM missions WHERE partner_id = $1", other_partner) == "published"
    result = await run(engine, partner_id, [record(1), record(2)], placer)  # m-2 comes back unchanged
    assert (result.updated, result.unchanged) == (1, 1)
    restored = await db.fetchrow("SELECT status, deleted_at FROM missions WHERE partner_id = $1 AND client_id = 'm-2'",
                                 partner_id)
    assert tuple(restored) == ("published", None)


async def test_delete_one_is_idempotent_and_says_when_nothing_existed(engine: AsyncEngine, db: asyncpg.Connection,
                                                                       placer: Placer) -> None:
    partner_id = await create_partner(db)
    await run(engine, partner_id, [record(1)], placer)
    clients = Clients(Redis.from_url(REDIS_URL), SyncRedis.from_url(REDIS_URL))
    async with unit_of_work(engine, clients) as session:
        first = await delete_one(session, partner_id=partner_id, client_id="m-1")
    async with unit_of_work(engine, clients) as session:
        again = await delete_one(session, partner_id=partner_id, client_id="m-1")
        never = await delete_one(session, partner_id=partner_id, client_id="m-404")
    assert first is not None and again == first and never is None
    assert await db.fetchval("SELECT status FROM missions") == "cancelled"


async def test_duplicate_client_ids_in_one_batch_keep_the_last(engine: AsyncEngine, db: asyncpg.Connection,
                                                                placer: Placer) -> None:
    partner_id = await create_partner(db)
    result = await run(engine, partner_id, [record(1), record(1, title="Deuxième version du texte")], placer)
    assert result.created == 1 and result.client_ids == ["m-1"]
    assert await db.fetchval("SELECT title FROM missions") == "Deuxième version du texte"
