"""The coordinators' dashboard `/coordination`: coordinators only, each sees the emergencies of their scope; the
figures (sign-ups per minute, queues, missions and places, coverage per 1,000 inhabitants, dispatch runs) match the
seeded data; and fifty coordinators polling at once cost one computation per emergency."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from surge.coordination import dashboard
from tests.helpers import queue_signups, queued_signup
from tests.test_emergencies import organisation_in
from tests.test_missions import insert_missions
from tests.test_organisations import sign_in

JSON = {"Accept": "application/json"}
PARIS = ZoneInfo("Europe/Paris")


async def add_emergency(db: asyncpg.Connection, slug: str, departments: list[str], status: str = "live") -> int:
    emergency_id: int = await db.fetchval(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status, live_at)"
        " VALUES ($1, $2, 'Des crues dans le département.', 'Nettoyage et repas.', $3, '{}', $4, now()) RETURNING id",
        slug, f"Urgence {slug}", departments, status,
    )
    return emergency_id


async def add_volunteers(db: asyncpg.Connection, slug: str | None, commune_code: str, accepted_at: datetime,
                         count: int) -> list[int]:
    rows = await db.fetch(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at, emergency_slug)"
        " SELECT $5 || n, $5 || n || '@example.org', $5 || n || '@example.org', 'Camille', 'Nom', DATE '1990-01-01',"
        " postal_codes[1], code, '{solidarite-insertion}', 'weekends', '{}', now(), $3, $4"
        " FROM communes, generate_series(1, $2) AS n WHERE code = $1 RETURNING id",
        commune_code, count, accepted_at, slug, uuid.uuid4().hex[:16] + "-",
    )
    return [row["id"] for row in rows]


async def missions_in(db: asyncpg.Connection, commune_code: str, slug: str, count: int) -> list[int]:
    """Published missions of 5 places, attached to the emergency."""
    organisation_id = await organisation_in(db, commune_code)
    await insert_missions(db, organisation_id, commune_code, count)
    ids = [row["id"] for row in await db.fetch(
        "UPDATE missions SET emergency_slug = $2 WHERE organisation_id = $1 RETURNING id", organisation_id, slug)]
    return sorted(ids)


async def add_application(db: asyncpg.Connection, mission_id: int, volunteer_id: int, status: str,
                          run_id: int | None = None) -> None:
    await db.execute(
        "INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at, dispatch_run_id)"
        " VALUES ($1, $2, $3, 1, now(), $4)", mission_id, volunteer_id, status, run_id,
    )


async def add_run(db: asyncpg.Connection, emergency_id: int, status: str, counts: dict[str, int]) -> int:
    run_id: int = await db.fetchval(
        "INSERT INTO dispatch_runs (emergency_id, status, parameters, counts) VALUES ($1, $2, '{}', $3::jsonb)"
        " RETURNING id", emergency_id, status, json.dumps(counts),
    )
    return run_id


async def figures_of(client: AsyncTestClient, slug: str) -> dict[str, Any]:
    response = await client.get("/coordination/donnees", headers=JSON)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    found = [e for e in response.json()["emergencies"] if e["slug"] == slug]
    assert len(found) == 1, response.json()
    figures: dict[str, Any] = found[0]
    return figures


async def population(db: asyncpg.Connection, department: str) -> int:
    total: int = await db.fetchval("SELECT sum(population) FROM communes WHERE department_code = $1", department)
    return total


def minute_label(moment: datetime) -> str:
    return moment.astimezone(PARIS).strftime("%H:%M")


# Access ---------------------------------------------------------------------------------------------------------


async def test_only_coordinators_reach_the_dashboard_and_each_sees_their_own_emergencies(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Any
) -> None:
    await add_emergency(db, "inondations-aude", ["11"])
    await add_emergency(db, "canicule-nationale", [])
    await add_emergency(db, "feux-herault", ["34"], status="closed")

    anonymous = await client.get("/coordination", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/connexion?suite=%2Fcoordination"
    assert (await client.get("/coordination/donnees", headers=JSON)).status_code == 401

    await sign_in(client, redis, db, "benevole@example.org")
    assert (await client.get("/coordination")).status_code == 403
    assert (await client.get("/coordination/donnees", headers=JSON)).status_code == 403
    assert 'href="/coordination"' not in (await client.get("/mon-espace")).text

    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    assert 'href="/coordination"' in (await client.get("/mon-espace")).text
    page = await client.get("/coordination")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert 'id="urgence-inondations-aude"' in page.text and "canicule-nationale" not in page.text
    assert "feux-herault" not in page.text
    data = (await client.get("/coordination/donnees", headers=JSON)).json()
    assert [e["slug"] for e in data["emergencies"]] == ["inondations-aude"]

    async with AsyncTestClient(app=create_app(settings)) as national:
        await sign_in(national, redis, db, "coord.national@example.org", departments=(None,))
        page = await national.get("/coordination")
        assert 'id="urgence-inondations-aude"' in page.text and 'id="urgence-canicule-nationale"' in page.text
        assert 'id="urgences-closes"' in page.text and "/coordination/urgences/feux-herault" in page.text
        assert 'id="urgence-feux-herault"' not in page.text  # closed: listed, not measured
        data = (await national.get("/coordination/donnees", headers=JSON)).json()
        assert {e["slug"] for e in data["emergencies"]} == {"inondations-aude", "canicule-nationale"}


# Figures --------------------------------------------------------------------------------------------------------


async def test_the_figures_match_the_seeded_data(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    emergency_id = await add_emergency(db, "inondations-aude", ["11", "34"])
    now = datetime.now(UTC)
    two_minutes_ago, half_an_hour_ago = now - timedelta(minutes=2), now - timedelta(minutes=30)
    carcassonne = await add_volunteers(db, "inondations-aude", "11069", two_minutes_ago, 3)
    narbonne = await add_volunteers(db, "inondations-aude", "11262", now, 2)
    montpellier = await add_volunteers(db, "inondations-aude", "34172", half_an_hour_ago, 1)
    await add_volunteers(db, "inondations-aude", "69123", now - timedelta(hours=2), 1)  # Lyon, long ago
    await add_volunteers(db, None, "11069", now, 4)  # signed up outside the emergency's page
    aude_missions = await missions_in(db, "11069", "inondations-aude", 2)
    herault_missions = await missions_in(db, "34172", "inondations-aude", 1)
    # Holding a place: pending, accepted, proposed; a declined one does not.
    await add_application(db, aude_missions[0], carcassonne[0], "pending")
    await add_application(db, aude_missions[0], carcassonne[1], "accepted")
    await add_application(db, aude_missions[0], carcassonne[2], "declined")
    await add_application(db, herault_missions[0], montpellier[0], "accepted")
    committed = await add_run(db, emergency_id, "committed", {"planned": 4, "proposed": 3})
    await add_application(db, aude_missions[1], narbonne[0], "proposed", committed)
    await add_application(db, herault_missions[0], narbonne[1], "accepted", committed)
    await add_run(db, emergency_id, "cancelled", {"planned": 2})
    latest = await add_run(db, emergency_id, "planning", {})
    late = queued_signup(1, prefix="en-file")
    await queue_signups(redis, [msgspec.structs.replace(late, accepted_at=now - timedelta(seconds=40))])
    await queue_signups(redis, [queued_signup(2, prefix="en-file")])
    await redis.rpush("renfort:applications:pending", b"{}")

    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11", "34"))
    figures = await figures_of(client, "inondations-aude")

    assert (figures["volunteers"], figures["missions"]) == (7, 3)
    assert (figures["places_filled"], figures["places_open"]) == (5, 10)
    assert len(figures["per_minute"]) == len(figures["minutes"]) == 60
    assert figures["minutes"][-1] == minute_label(datetime.now(UTC))
    assert figures["last_hour"] == sum(figures["per_minute"]) == 6  # Lyon's sign-up is two hours old
    expected: dict[str, int] = {}
    for moment, count in ((two_minutes_ago, 3), (now, 2), (half_an_hour_ago, 1)):
        expected[minute_label(moment)] = expected.get(minute_label(moment), 0) + count
    for label, count in expected.items():
        assert figures["per_minute"][figures["minutes"].index(label)] == count

    aude, herault = await population(db, "11"), await population(db, "34")
    assert 300_000 < aude < 500_000 and 1_000_000 < herault < 1_500_000  # the real populations
    assert figures["coverage"] == [
        {"code": "11", "name": "Aude", "population": aude, "volunteers": 5,
         "volunteers_per_thousand": round(5000 / aude, 2), "places_filled": 3,
         "filled_per_thousand": round(3000 / aude, 2)},
        {"code": "34", "name": "Hérault", "population": herault, "volunteers": 1,
         "volunteers_per_thousand": round(1000 / herault, 2), "places_filled": 2,
         "filled_per_thousand": round(2000 / herault, 2)},
    ]

    assert figures["runs_by_status"] == {"committed": 1, "cancelled": 1, "planning": 1}
    assert figures["runs_summary"] == "3 mobilisation(s) : 1 en calcul · 1 envoyée(s) · 1 annulée(s)."
    assert len(figures["runs"]) == 3 and figures["runs"][0]["id"] == latest
    sent = next(run for run in figures["runs"] if run["id"] == committed)
    assert (sent["planned"], sent["proposed"], sent["waiting"], sent["accepted"], sent["declined"]) == (4, 3, 1, 1, 0)
    assert sent["label"] == "Propositions envoyées"

    queue = (await client.get("/coordination/donnees", headers=JSON)).json()["queue"]
    assert queue["signups_queued"] == 2 and queue["applications_queued"] == 1
    assert 40 <= queue["oldest_queued_seconds"] < 100

    page = (await client.get("/coordination")).text
    assert 'data-figure="volunteers">7<' in page and 'data-figure="places_filled">5<' in page
    assert 'data-queue="signups_queued">2<' in page
    assert "<th scope=\"row\">Aude (11)</th>" in page and "Pour 1&nbsp;000 habitants" in page


async def test_a_national_emergency_shows_its_best_covered_departments(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await add_emergency(db, "canicule-nationale", [])
    now = datetime.now(UTC)
    await add_volunteers(db, "canicule-nationale", "48095", now, 2)  # Mende, Lozère: few inhabitants
    await add_volunteers(db, "canicule-nationale", "75056", now, 5)  # Paris
    await sign_in(client, redis, db, "coord.national@example.org", departments=(None,))
    figures = await figures_of(client, "canicule-nationale")
    assert figures["national"] is True
    assert [d["code"] for d in figures["coverage"]] == ["48", "75"]  # per 1,000 inhabitants, not in number
    assert figures["coverage"][0]["volunteers_per_thousand"] > figures["coverage"][1]["volunteers_per_thousand"]


# Polling --------------------------------------------------------------------------------------------------------


async def test_figures_are_cached_a_few_seconds_then_refreshed(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await add_emergency(db, "inondations-aude", ["11"])
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    assert (await figures_of(client, "inondations-aude"))["volunteers"] == 0
    await add_volunteers(db, "inondations-aude", "11069", datetime.now(UTC), 3)
    assert (await figures_of(client, "inondations-aude"))["volunteers"] == 0  # still the cached copy
    assert 0 < await redis.ttl(dashboard.PREFIX + "inondations-aude:fresh") <= dashboard.FRESH_SECONDS
    await redis.delete(dashboard.PREFIX + "inondations-aude:fresh")  # as FRESH_SECONDS later
    # The poll that finds them stale rebuilds them (the others meanwhile keep the previous copy).
    assert (await figures_of(client, "inondations-aude"))["volunteers"] == 3


async def test_fifty_coordinators_polling_at_once_compute_the_figures_once(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_emergency(db, "inondations-aude", ["11"])
    await add_volunteers(db, "inondations-aude", "11069", datetime.now(UTC), 2)
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    computed = 0
    compute = dashboard.compute

    async def counting(*args: Any, **kwargs: Any) -> dashboard.EmergencyFigures:
        nonlocal computed
        computed += 1
        await asyncio.sleep(0.2)  # long enough for every poll to arrive while the first one computes
        return await compute(*args, **kwargs)

    monkeypatch.setattr(dashboard, "compute", counting)
    responses = await asyncio.gather(*[client.get("/coordination/donnees", headers=JSON) for _ in range(50)])
    assert {response.status_code for response in responses} == {200}
    assert {response.json()["emergencies"][0]["volunteers"] for response in responses} == {2}
    assert computed == 1
