"""Minors protected: a mission not open to minors takes nobody under 18 on its start date (or today, once started),
whether they apply (Redis only: the 18th birthday is in the session, the rule in the mission's Redis meta) or are
dispatched (left out of the plan, and checked again at the commit); the search filters the missions open to minors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.capacity import MissionKeys, Places
from app.main import create_app
from app.settings import Settings
from app.volunteers import age
from app.volunteers.age import adult_on, born_by, checked_on
from surge.dispatch import REASON_FULL, Mission, Volunteer, plan_dispatch, reason_too_young
from tests.conftest import run_worker
from tests.test_applications import add_volunteers, apply, mission_of, outcome_of, statuses
from tests.test_dispatch_runs import commit, emergency, missions, plan, proposals, run_row
from tests.test_missions import found
from tests.test_organisations import sign_in
from tests.test_signin import csrf_token
from tests.test_web_hardening import statements

ADULTS_ONLY = "Cette mission est réservée aux personnes majeures."
TODAY = age.today()  # France's day, the one the rule counts on
IN_TWO_MONTHS = TODAY + timedelta(days=60)
LATER = {"start_date": IN_TWO_MONTHS.isoformat(), "end_date": (IN_TWO_MONTHS + timedelta(days=7)).isoformat()}

FIXTURES = (mission_of,)  # pytest finds fixtures by name in the module: the tests take it as a parameter


def born(years: int, *, days: int = 0, on: date = TODAY) -> date:
    """The birth date of someone `years` old on `on`, shifted by `days` (later: younger)."""
    try:
        birthday = on.replace(year=on.year - years)
    except ValueError:  # 29 February
        birthday = date(on.year - years, 3, 1)
    return birthday + timedelta(days=days)


@pytest.fixture
async def people(settings: Settings, redis: Redis, db: asyncpg.Connection) -> AsyncIterator[Any]:
    """Signed-in volunteers born on given dates, each in a browser (and web process) of their own."""
    opened: list[AsyncTestClient] = []

    async def person(birth_date: date) -> tuple[AsyncTestClient, int]:
        [(volunteer_id, email)] = await add_volunteers(db, 1, f"personne{len(opened)}-")
        await db.execute("UPDATE volunteers SET birth_date = $1 WHERE id = $2", birth_date, volunteer_id)
        client = AsyncTestClient(app=create_app(settings))
        await client.__aenter__()
        opened.append(client)
        await sign_in(client, redis, db, email)
        return client, volunteer_id

    yield person
    for client in opened:
        await client.__aexit__(None, None, None)


def test_the_18th_birthday_of_someone_born_on_29_february_is_1_march() -> None:
    assert adult_on(date(2008, 2, 29)) == date(2026, 3, 1)
    assert adult_on(date(2008, 3, 1)) == date(2026, 3, 1)
    assert adult_on(date(2006, 2, 28)) == date(2024, 2, 28)
    # The query's form of the rule says the same, every day of a leap-year span.
    for offset in range(-800, 800):
        day = date(2026, 3, 1) + timedelta(days=offset)
        for birth in (born_by(day), born_by(day) + timedelta(days=1), date(2008, 2, 29)):
            assert (adult_on(birth) <= day) == (birth <= born_by(day)), (birth, day)
    # The age is checked on the start date, or today once the mission started or when it has none.
    assert checked_on(IN_TWO_MONTHS, TODAY) == IN_TWO_MONTHS
    assert checked_on(TODAY - timedelta(days=3), TODAY) == TODAY
    assert checked_on(None, TODAY) == TODAY


async def test_a_16_year_old_is_refused_on_an_adult_mission_and_nothing_is_written(
    mission_of: Any, people: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await mission_of(**LATER)
    teenager, teenager_id = await people(born(16))
    adult, adult_id = await people(born(30))
    assert await apply(adult, mission_id) == "pending"
    queued = await redis.llen("renfort:applications:pending")

    assert await apply(teenager, mission_id, "Je suis motivé") == "minor"
    page = await teenager.get(f"/mon-espace/candidatures?mission={mission_id}&resultat=minor")
    assert ADULTS_ONLY in page.text and "notice--warning" in page.text
    assert await redis.hget(MissionKeys(mission_id).status, str(teenager_id)) is None
    assert await redis.scard(MissionKeys(mission_id).holders) == 1
    assert await redis.llen("renfort:applications:pending") == queued
    run_worker()
    assert await statuses(db, mission_id) == {adult_id: "pending"}


async def test_a_17_year_old_of_age_by_the_start_date_is_taken_one_of_age_the_day_after_is_not(
    mission_of: Any, people: Any, db: asyncpg.Connection
) -> None:
    mission_id = await mission_of(**LATER)
    in_time, in_time_id = await people(born(18, on=IN_TWO_MONTHS))  # 18 on the very first day
    too_late, _ = await people(born(18, days=1, on=IN_TWO_MONTHS))
    assert await apply(in_time, mission_id) == "pending"
    assert await apply(too_late, mission_id) == "minor"
    # Once started (or without a start date) the mission checks the age today: both are 17 now.
    started = await mission_of(start_date=TODAY.isoformat())
    assert await apply(in_time, started) == "minor"
    run_worker()
    assert await statuses(db, mission_id) == {in_time_id: "pending"}


async def test_a_mission_open_to_minors_takes_a_16_year_old(mission_of: Any, people: Any,
                                                             db: asyncpg.Connection) -> None:
    mission_id = await mission_of(open_to_minors="on")
    teenager, teenager_id = await people(born(16))
    assert await apply(teenager, mission_id) == "pending"
    run_worker()
    assert await statuses(db, mission_id) == {teenager_id: "pending"}


async def test_closing_a_mission_to_minors_reaches_redis_at_once(client: AsyncTestClient, mission_of: Any,
                                                                 people: Any) -> None:
    from tests.test_missions import mission
    from tests.test_organisations import post_form

    mission_id = await mission_of(open_to_minors="on")
    for _ in range(2):  # three missions validated: the organisation's edits stay online, without a new moderation
        await mission_of()
    adult, _ = await people(born(30))  # an adult: a minor's open application would hold the edit back
    teenager, _ = await people(born(17))
    assert await apply(adult, mission_id) == "pending"  # Redis knows the mission
    edit = f"/missions/{mission_id}/modifier"
    assert (await post_form(client, edit, mission(), edit)).status_code == 303  # the box unticked
    assert await apply(teenager, mission_id) == "minor"


async def applied_with_sql(person: AsyncTestClient, mission_id: int) -> tuple[str, list[str]]:
    """Applies, and the SQL that the POST alone sent (the form's page is read before)."""
    token = csrf_token((await person.get("/mon-espace")).text)
    with statements(person) as sent:
        response = await person.post(f"/missions/{mission_id}/candidater", data={"_csrf_token": token},
                                     follow_redirects=False)
    return outcome_of(response), sent


async def test_applying_runs_no_sql_while_the_mission_is_unchanged_even_when_refusing_a_minor(
    mission_of: Any, people: Any, redis: Redis
) -> None:
    mission_id = await mission_of()
    seeding, _ = await people(born(40))
    assert await apply(seeding, mission_id) == "pending"  # the first use reads the mission into Redis
    adult, _ = await people(born(25))
    teenager, _ = await people(born(16))
    assert await applied_with_sql(adult, mission_id) == ("pending", [])
    assert await applied_with_sql(teenager, mission_id) == ("minor", [])

    # A session opened before sessions kept the 18th birthday looks it up once, then keeps it.
    older, _ = await people(born(16))
    key = "renfort:sessions:" + older.cookies["renfort_session"]
    session = json.loads(await redis.get(key) or b"")
    del session["account"]["adult_on"]
    await redis.set(key, json.dumps(session), keepttl=True)
    outcome, sent = await applied_with_sql(older, mission_id)
    assert outcome == "minor" and len(sent) == 1 and "volunteers" in sent[0]
    assert json.loads(await redis.get(key) or b"")["account"]["adult_on"] == adult_on(born(16)).isoformat()
    assert await applied_with_sql(older, mission_id) == ("minor", [])


async def test_the_search_filters_the_missions_open_to_minors(client: AsyncTestClient, mission_of: Any) -> None:
    adults_only = await mission_of(title="Collecte de nuit en entrepôt")
    open_one = await mission_of(title="Atelier de tri pour tous", open_to_minors="on")
    everything = await found(client, postal_code="69001")
    assert {item["id"] for item in everything["items"]} == {adults_only, open_one}
    filtered = await found(client, postal_code="69001", open_to_minors="1")
    assert [item["id"] for item in filtered["items"]] == [open_one]
    # The cache keeps the two queries apart.
    assert len((await found(client, postal_code="69001"))["items"]) == 2
    page = await client.get("/missions", params={"postal_code": "69001", "open_to_minors": "1"})
    assert "Atelier de tri pour tous" in page.text and "Collecte de nuit" not in page.text
    assert 'name="open_to_minors" value="1" checked' in page.text
    assert "Missions ouvertes aux mineurs" in (await client.get("/missions")).text


# Dispatch ---------------------------------------------------------------------------------------------------------


def test_the_engine_never_pairs_a_minor_with_a_mission_closed_to_minors() -> None:
    lyon = (45.76, 4.84)
    people = [Volunteer("adult", *lyon, adult_on=date(2000, 1, 1)),
              Volunteer("minor", *lyon, adult_on=IN_TWO_MONTHS + timedelta(days=1)),
              Volunteer("of-age-by-then", *lyon, adult_on=IN_TWO_MONTHS)]
    needs = [Mission("adults", *lyon, places=5, priority=True, age_checked_on=IN_TWO_MONTHS)]
    plan = plan_dispatch(people, needs, max_km=10)
    assert {a.volunteer_id for a in plan.assignments} == {"adult", "of-age-by-then"}
    assert [(u.volunteer_id, u.reason) for u in plan.unassigned] == [("minor", reason_too_young(10))]
    # A mission open to minors beside it takes the minor.
    plan = plan_dispatch(people, [*needs, Mission("everyone", *lyon, places=1)], max_km=10)
    assert {(a.volunteer_id, a.mission_id) for a in plan.assignments} == {
        ("adult", "adults"), ("of-age-by-then", "adults"), ("minor", "everyone")}


async def aged_pool(db: asyncpg.Connection) -> dict[str, int]:
    ids = [v for v, _ in await add_volunteers(db, 3)]
    births = {"adult": born(30), "minor": born(16), "nearly": born(18, days=30)}  # nearly: of age in 30 days
    for volunteer_id, birth in zip(ids, births.values(), strict=True):
        await db.execute("UPDATE volunteers SET birth_date = $1 WHERE id = $2", birth, volunteer_id)
    return dict(zip(births, ids, strict=True))


async def test_a_dispatch_never_plans_a_minor_on_a_mission_closed_to_minors(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await emergency(db)
    mission_ids = await missions(db, (5, 1))  # closed to minors, no start date: the age counts today
    await db.execute("UPDATE missions SET open_to_minors = true WHERE id = $1", mission_ids[1])
    pool = await aged_pool(db)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, mission_ids)
    run = await run_row(db, run_id)
    pairs = dict(zip(run["planned_volunteers"], run["planned_missions"], strict=True))
    assert pairs[pool["adult"]] == mission_ids[0]
    assert [v for v, m in pairs.items() if v != pool["adult"]] in ([pool["minor"]], [pool["nearly"]])
    assert set(pairs.values()) == set(mission_ids)  # the one place open to minors went to a minor
    assert json.loads(run["preview"])["reasons"] == {REASON_FULL: 1}  # the other minor: no place left

    # Every mission closed to minors, the second starting in two months: the planning query leaves out who is
    # too young for both; the one of age by then goes to the second.
    await db.execute("UPDATE missions SET open_to_minors = false, start_date = $2 WHERE id = $1", mission_ids[1],
                     IN_TWO_MONTHS)
    await Places(redis).changed(mission_ids)
    run = await run_row(db, await plan(client, mission_ids))
    assert dict(zip(run["planned_volunteers"], run["planned_missions"], strict=True)) == {
        pool["adult"]: mission_ids[0], pool["nearly"]: mission_ids[1]}
    assert json.loads(run["counts"])["pool"] == 2


async def test_the_commit_checks_the_age_again_when_the_mission_closed_to_minors_since_the_plan(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await emergency(db)
    mission_ids = await missions(db, (5,))
    await db.execute("UPDATE missions SET open_to_minors = true WHERE id = $1", mission_ids[0])
    pool = await aged_pool(db)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, mission_ids)
    assert sorted((await run_row(db, run_id))["planned_volunteers"]) == sorted(pool.values())

    # The manager unticks « open to minors » before the coordinator commits (the edit bumps the mission's epoch).
    await db.execute("UPDATE missions SET open_to_minors = false WHERE id = $1", mission_ids[0])
    await Places(redis).changed(mission_ids)
    assert (await commit(client, run_id)).status_code == 303
    run_worker()
    assert set(await proposals(db, run_id)) == {(mission_ids[0], pool["adult"])}
    counts = json.loads((await run_row(db, run_id))["counts"])
    assert counts["too_young"] == 2 and counts["proposed"] == 1
