"""The age rule past the application itself: a mission closed to minors promotes nobody under 18 from its wait-list
(Redis keeps each applicant's 18th birthday, rebuilt from PostgreSQL with the rest), a proposal is not confirmed by
someone too young for the mission as it stands now, and every age counts on France's day, whatever the server's
time zone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.capacity import MissionKeys, Places
from app.main import create_app
from app.settings import Settings
from tests.conftest import run_worker
from tests.test_applications import add_volunteers, apply, mission_of, statuses
from tests.test_dispatch_runs import answer, commit, emergency, missions, plan, proposals, run_row, token
from tests.test_minors import LATER, born, people
from tests.test_organisations import post_form, sign_in

FIXTURES = (mission_of, people)  # pytest finds fixtures by name in the module: the tests take them as parameters
PARIS = ZoneInfo("Europe/Paris")


async def cancel(person: AsyncTestClient, mission_id: int) -> None:
    response = await post_form(person, f"/mon-espace/candidatures/{mission_id}/annuler", {"confirm": "1"})
    assert response.headers["location"].endswith("resultat=cancelled")


async def in_redis(redis: Redis, mission_id: int, *volunteer_ids: int) -> list[str]:
    values = await redis.hmget(MissionKeys(mission_id).status, [str(v) for v in volunteer_ids])
    return [value.decode() if value else "" for value in values]


async def close_to_minors(db: asyncpg.Connection, redis: Redis, mission_id: int) -> None:
    """The manager unticks « open to minors » (the edit bumps the mission's epoch once committed)."""
    await db.execute("UPDATE missions SET open_to_minors = false WHERE id = $1", mission_id)
    await Places(redis).changed([mission_id])


async def test_a_freed_place_goes_to_the_first_wait_listed_of_age_and_a_minor_stays_wait_listed(
    mission_of: Any, people: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await mission_of(places="1", open_to_minors="on", **LATER)  # starts in two months
    first, first_id = await people(born(30))
    minor, minor_id = await people(born(16))
    nearly, nearly_id = await people(born(18, days=30))  # 18 in 30 days: of age by the start date
    adult, adult_id = await people(born(40))
    assert [await apply(person, mission_id) for person in (first, minor, nearly, adult)] == [
        "pending", "waitlisted", "waitlisted", "waitlisted"]
    await close_to_minors(db, redis, mission_id)

    await cancel(first, mission_id)  # the minor is first in line, and left there: the next moves up
    assert await in_redis(redis, mission_id, minor_id, nearly_id, adult_id) == ["waitlisted", "pending", "waitlisted"]
    await cancel(nearly, mission_id)
    assert await in_redis(redis, mission_id, minor_id, adult_id) == ["waitlisted", "pending"]
    # Redis keeps a birthday only while the age rule may still check it: the wait-listed minor's.
    assert await redis.hkeys(MissionKeys(mission_id).adults) == [str(minor_id).encode()]
    run_worker()
    assert await statuses(db, mission_id) == {first_id: "cancelled", minor_id: "waitlisted", nearly_id: "cancelled",
                                              adult_id: "pending"}


async def test_the_birthdays_come_back_from_postgresql_when_redis_lost_the_mission(
    mission_of: Any, people: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await mission_of(places="1", open_to_minors="on")
    first, first_id = await people(born(30))
    minor, minor_id = await people(born(16))
    adult, adult_id = await people(born(40))
    assert [await apply(person, mission_id) for person in (first, minor, adult)] == [
        "pending", "waitlisted", "waitlisted"]
    run_worker()
    await close_to_minors(db, redis, mission_id)
    keys = MissionKeys(mission_id)
    await redis.delete(keys.meta, keys.holders, keys.waitlist, keys.status, keys.proposals, keys.adults)

    await cancel(first, mission_id)  # Redis reads the mission, its applications and their birthdays again
    assert await in_redis(redis, mission_id, minor_id, adult_id) == ["waitlisted", "pending"]
    run_worker()
    assert await statuses(db, mission_id) == {first_id: "cancelled", minor_id: "waitlisted", adult_id: "pending"}


async def dispatched(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, births: list[date]
                     ) -> tuple[int, int, list[tuple[int, str]]]:
    """A run proposing a mission open to minors (no start date) to volunteers born on these dates: (run, mission,
    their ids and e-mails). The proposals are made by the real worker."""
    await emergency(db)
    [mission_id] = await missions(db, (5,))
    await db.execute("UPDATE missions SET open_to_minors = true WHERE id = $1", mission_id)
    pool = await add_volunteers(db, len(births), "mobilise")
    for (volunteer_id, _), birth in zip(pool, births, strict=True):
        await db.execute("UPDATE volunteers SET birth_date = $1 WHERE id = $2", birth, volunteer_id)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, [mission_id])
    assert sorted((await run_row(db, run_id))["planned_volunteers"]) == sorted(v for v, _ in pool)
    return run_id, mission_id, pool


async def test_a_minor_cannot_confirm_a_proposal_once_the_mission_closed_to_minors(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    run_id, mission_id, pool = await dispatched(client, redis, db, [born(16), born(17), born(30)])
    (minor_id, minor_email), (other_minor_id, _), (adult_id, _) = pool
    assert (await commit(client, run_id)).status_code == 303
    run_worker()
    assert set((await proposals(db, run_id)).values()) == {"proposed"}
    await close_to_minors(db, redis, mission_id)

    async with AsyncTestClient(app=create_app(settings)) as minor:
        await sign_in(minor, redis, db, minor_email)
        refused = await post_form(minor, f"/mon-espace/candidatures/{mission_id}/confirmer", {})
        assert refused.headers["location"].endswith("resultat=minor")
        page = await minor.get("/mon-espace/candidatures?resultat=minor")
        assert "Cette mission est réservée aux personnes majeures." in page.text
    # Nor through the link of the proposal's e-mail; an adult's link still works.
    assert (await answer(client, "confirmer", token("confirmer", mission_id, other_minor_id, run_id))).status_code \
        == 410
    assert (await answer(client, "confirmer", token("confirmer", mission_id, adult_id, run_id))).status_code == 200
    assert set(await redis.hkeys(MissionKeys(mission_id).adults)) == {str(minor_id).encode(),
                                                                       str(other_minor_id).encode()}
    run_worker()
    assert await proposals(db, run_id) == {(mission_id, minor_id): "proposed", (mission_id, other_minor_id): "proposed",
                                           (mission_id, adult_id): "accepted"}


# France's day ------------------------------------------------------------------------------------------------------


def a_zone_on_another_day() -> tuple[str, date, date]:
    """A time zone whose date differs from France's right now (one of two zones 26 hours apart always does): the
    zone, its date, France's date."""
    france = datetime.now(PARIS).date()
    for zone in ("Etc/GMT-14", "Etc/GMT+12"):
        local = datetime.now(ZoneInfo(zone)).date()
        if local != france:
            return zone, local, france
    raise AssertionError("two zones 26 hours apart on the same day")


@contextmanager
def server_time_zone(zone: str) -> Iterator[None]:
    """This process's local time zone (what date.today() follows), for the block."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = zone
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


def turning_18(local: date, france: date) -> tuple[date, bool]:
    """Someone of age on exactly one of the two days (the later): their birth date, and whether they are of age
    today in France."""
    later = max(local, france)
    return born(18, on=later), later == france


async def test_applying_counts_the_age_on_france_s_day_not_the_server_s(
    mission_of: Any, people: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    zone, local, france = a_zone_on_another_day()
    mission_id = await mission_of()
    await db.execute("UPDATE missions SET start_date = NULL WHERE id = $1", mission_id)  # the age counts today
    await Places(redis).changed([mission_id])
    birth, of_age = turning_18(local, france)
    person, _ = await people(birth)
    with server_time_zone(zone):
        assert date.today() == local
        assert await apply(person, mission_id) == ("pending" if of_age else "minor")


async def test_a_dispatch_commit_counts_the_age_on_france_s_day_not_the_server_s(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    zone, local, france = a_zone_on_another_day()
    birth, of_age = turning_18(local, france)
    run_id, mission_id, [(volunteer_id, _), (adult_id, _)] = await dispatched(client, redis, db, [birth, born(30)])
    await close_to_minors(db, redis, mission_id)
    assert (await commit(client, run_id)).status_code == 303
    run_worker({"TZ": zone})
    expected = {(mission_id, adult_id): "proposed"}
    if of_age:
        expected[(mission_id, volunteer_id)] = "proposed"
    assert await proposals(db, run_id) == expected
    assert json.loads((await run_row(db, run_id))["counts"])["too_young"] == (0 if of_age else 1)
