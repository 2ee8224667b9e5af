"""Dispatch engagement: nobody holds two live proposals, whatever the timing of two runs (Redis knows at once what
PostgreSQL knows only after the drain); the engagement ends with the proposal, and is rebuilt when Redis lost it.
Also the shape the capacity scripts share: the event's wire names, long argument lists, the volunteer's index."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications.capacity import ENGAGED, ApplicationEvent, MissionKeys, Places, SavedApplication
from app.applications.statuses import ApplicationStatus
from app.db.base import make_engine
from app.settings import Settings
from queues import enqueue
from surge.dispatch import proposals as dispatch
from tests.conftest import TEST_ENV, run_worker
from tests.test_applications import add_volunteers
from tests.test_dispatch_runs import BASE, answer, emergency, missions, plan, post_form, run_row, token
from tests.test_organisations import sign_in

TTL = 3600


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url, pool_size=0)
    yield engine
    await engine.dispose()


def request_drain() -> None:
    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.drain_applications(connection)
    connection.close()


async def committing(db: asyncpg.Connection, *run_ids: int) -> None:
    """As the coordinator's click leaves them, without enqueuing the commit job (the test runs its body)."""
    await db.execute("UPDATE dispatch_runs SET status = 'committing', commit_requested_at = now()"
                     " WHERE id = ANY($1::bigint[])", list(run_ids))


async def commit_at_once(engine: AsyncEngine, redis: Redis, *run_ids: int) -> list[dict[str, int]]:
    """The commit jobs' bodies, run concurrently, each with its own Places as two workers would have."""
    return list(await asyncio.gather(*[
        dispatch.commit_run(engine, Places(redis), redis, run_id, ttl_seconds=TTL, request_drain=request_drain)
        for run_id in run_ids
    ]))


async def live_in_redis(redis: Redis, mission_ids: list[int], volunteer_ids: list[int]) -> Counter[int]:
    """Per volunteer, the number of missions whose Redis status says proposed."""
    counts: Counter[int] = Counter()
    for mission_id in mission_ids:
        for volunteer_id in volunteer_ids:
            if await redis.hget(MissionKeys(mission_id).status, str(volunteer_id)) == b"proposed":
                counts[volunteer_id] += 1
    return counts


async def live_in_postgresql(db: asyncpg.Connection) -> Counter[int]:
    rows = await db.fetch("SELECT volunteer_id FROM applications WHERE status = 'proposed'")
    return Counter(row["volunteer_id"] for row in rows)


async def two_planned_runs(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, places: tuple[int, int],
                           volunteers: int) -> tuple[list[int], list[int], list[int]]:
    """Two runs of one emergency over the same pool, each on its own mission, both planned before either commits
    (so each plan holds every volunteer)."""
    await emergency(db)
    mission_ids = await missions(db, places)
    volunteer_ids = [v for v, _ in await add_volunteers(db, volunteers)]
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_ids = [await plan(client, [mission_ids[0]]), await plan(client, [mission_ids[1]])]
    for run_id in run_ids:
        assert set((await run_row(db, run_id))["planned_volunteers"]) == set(volunteer_ids)
    return run_ids, mission_ids, volunteer_ids


async def test_two_runs_committed_at_once_never_propose_one_person_twice(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    run_ids, mission_ids, volunteer_ids = await two_planned_runs(client, redis, db, (6, 6), 6)
    await committing(db, *run_ids)

    results = await commit_at_once(engine, redis, *run_ids)

    assert sum(result["new"] for result in results) == 6
    assert sum(result["engaged_elsewhere"] for result in results) == 6
    assert set((await live_in_redis(redis, mission_ids, volunteer_ids)).values()) == {1}
    places = Places(redis)
    engaged_on = {v: await places.engagement(v) for v in volunteer_ids}
    assert set(engaged_on.values()) <= set(mission_ids) and None not in engaged_on.values()
    run_worker()
    assert await live_in_postgresql(db) == Counter(dict.fromkeys(volunteer_ids, 1))
    # The coordinator reads why: each run whose proposals went elsewhere says how many.
    for run_id, result in zip(run_ids, results, strict=True):
        page = await client.get(f"{BASE}/{run_id}")
        assert ("déjà engagée sur une autre mission" in page.text) == (result["engaged_elsewhere"] > 0)


async def test_engagement_ends_with_the_proposal_so_a_later_run_proposes_again(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    """Declined, lapsed and withdrawn proposals free the person; a confirmed one keeps them engaged."""
    run_ids, mission_ids, volunteer_ids = await two_planned_runs(client, redis, db, (4, 4), 4)
    first, later = run_ids
    await committing(db, first)
    await commit_at_once(engine, redis, first)
    run_worker()
    m = mission_ids[0]
    declining, lapsing, confirming, withdrawn = sorted(volunteer_ids)
    places = Places(redis)
    assert {await places.engagement(v) for v in volunteer_ids} == {m}

    assert (await answer(client, "decliner", token("decliner", m, declining, first))).status_code == 200
    assert await places.engagement(declining) is None
    assert (await answer(client, "confirmer", token("confirmer", m, confirming, first))).status_code == 200
    assert await places.engagement(confirming) == m
    await db.execute("UPDATE applications SET expires_at = now() - interval '1 minute' WHERE volunteer_id = $1",
                     lapsing)
    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.expire_proposals(connection)
    connection.close()
    run_worker()
    assert await places.engagement(lapsing) is None
    assert (await post_form(client, f"{BASE}/{first}/annuler", {}, BASE)).status_code == 303
    run_worker()
    assert await places.engagement(withdrawn) is None

    await committing(db, later)
    result, = await commit_at_once(engine, redis, later)
    run_worker()
    assert result["new"] == 3 and result["engaged_elsewhere"] == 1
    rows = await db.fetch("SELECT volunteer_id FROM applications WHERE dispatch_run_id = $1 AND status = 'proposed'",
                          later)
    assert {row["volunteer_id"] for row in rows} == {declining, lapsing, withdrawn}


async def test_engagement_is_rebuilt_after_redis_lost_it(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    run_ids, mission_ids, volunteer_ids = await two_planned_runs(client, redis, db, (3, 3), 3)
    first, later = run_ids
    await committing(db, first)
    await commit_at_once(engine, redis, first)
    run_worker()
    await redis.flushdb()  # a restart without AOF: every capacity key is gone, PostgreSQL has the proposals

    await committing(db, later)
    result, = await commit_at_once(engine, redis, later)
    assert result["new"] == 0 and result["engaged_elsewhere"] == 3
    assert {await Places(redis).engagement(v) for v in volunteer_ids} == {mission_ids[0]}
    run_worker()
    assert await live_in_postgresql(db) == Counter(dict.fromkeys(volunteer_ids, 1))


async def test_engagement_is_rebuilt_from_redis_when_the_proposals_are_not_drained_yet(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    run_ids, mission_ids, volunteer_ids = await two_planned_runs(client, redis, db, (3, 3), 3)
    first, later = run_ids
    await committing(db, first)
    await commit_at_once(engine, redis, first)
    assert not await db.fetchval("SELECT count(*) FROM applications")  # still queued
    await redis.delete(ENGAGED)  # lost on its own (an operator, an eviction)

    await committing(db, later)
    result, = await commit_at_once(engine, redis, later)
    assert result["new"] == 0 and result["engaged_elsewhere"] == 3
    assert {await Places(redis).engagement(v) for v in volunteer_ids} == {mission_ids[0]}
    run_worker()
    assert await live_in_postgresql(db) == Counter(dict.fromkeys(volunteer_ids, 1))


def test_queued_events_keep_their_short_wire_names() -> None:
    """Events queued before the readable names still decode, and the scripts' names are the ones decoded."""
    old = b'{"m":4,"v":7,"s":"proposed","n":12,"k":"proposed","msg":"","r":"","d":3,"x":1700000000.5,"t":1699.25}'
    event = msgspec.json.decode(old, type=ApplicationEvent)
    assert (event.mission_id, event.volunteer_id, event.status, event.version, event.kind) == (
        4, 7, ApplicationStatus.PROPOSED, 12, "proposed")
    assert (event.run_id, event.expires_at, event.at, event.message) == (3, 1700000000.5, 1699.25, "")
    plain = msgspec.json.decode(b'{"m":1,"v":2,"s":"pending","n":3,"k":"applied","t":1.0}', type=ApplicationEvent)
    assert plain.run_id == 0 and plain.expires_at == 0.0 and plain.reason == ""
    assert msgspec.json.decode(msgspec.json.encode(event)) == msgspec.json.decode(old)


async def test_long_argument_lists_are_not_unpacked(redis: Redis) -> None:
    """Lua's unpack() refuses a few thousand values: a seed of 20,000 applications and a withdrawal of 5,000
    proposals go through whole."""
    places = Places(redis)
    saved = [SavedApplication(n, "proposed" if n <= 5_000 else "waitlisted", n) for n in range(1, 20_001)]
    await places.seed(9, capacity=5_000, state="1", epoch="0", highest_version=20_000, saved=saved, open_to_minors=True)
    assert await places.taken(9) == 5_000
    assert await redis.zcard(MissionKeys(9).waitlist) == 15_000
    withdrawn = await places.withdraw_run(9, 1, range(1, 5_001), kind="dispatch_cancelled", reason="")
    assert withdrawn.count == 5_000 and withdrawn.promoted == 5_000


async def test_a_volunteer_s_queued_changes_are_found_without_reading_the_queue(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    run_ids, mission_ids, volunteer_ids = await two_planned_runs(client, redis, db, (3, 3), 3)
    await committing(db, run_ids[0])
    await commit_at_once(engine, redis, run_ids[0])
    places = Places(redis)
    await redis.delete(places.queue.keys.pending)  # the index alone answers
    assert await places.queued_missions(volunteer_ids[0]) == {mission_ids[0]}
    assert await places.queued_missions(10**9) == set()
