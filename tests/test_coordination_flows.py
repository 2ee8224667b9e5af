"""Coordinators at work: the mission picker (search by title and place, then "Ajouter", without typing a number),
a dispatch that never proposes a mission to someone already applying to it, times in Paris time in pages and
CSV, and waiting pages that poll a JSON status instead of refreshing themselves."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from functools import cache
from urllib.parse import quote

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications import exports
from app.applications import service as applications
from app.applications.capacity import Places
from app.applications.schemas import ApplicationRead
from app.db.base import make_engine
from app.formats import when
from app.settings import Settings
from surge.dispatch import Mission, Volunteer, accepts, haversine_km, plan_dispatch, reason_already_applied
from surge.dispatch.planning import plan_run
from tests.test_applications import add_volunteers
from tests.test_dispatch_runs import emergency as live_emergency
from tests.test_dispatch_runs import missions as rhone_missions
from tests.test_emergencies import organisation_in
from tests.test_organisations import post_form, sign_in

SLUG = "inondations-aude"
PAGE = f"/coordination/urgences/{SLUG}"
PARIS = (48.8566, 2.3522)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url, pool_size=0)
    yield engine
    await engine.dispose()


async def aude_emergency(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status)"
        " VALUES ($1, 'Inondations dans l''Aude', 'Crues.', 'Bras.', '{11}', '{}', 'live')", SLUG)


async def mission_at(db: asyncpg.Connection, organisation_id: int, title: str, commune: str, places: int = 5,
                     status: str = "published") -> int:
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Une mission de test.', 'solidarite-insertion', '{}', false, $3,"
        " true, $4) RETURNING id", organisation_id, title, places, status)
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, 'Rue', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
        mission_id, commune)
    return mission_id


def results(page: str) -> set[int]:
    """The ids of the picker's results on a management page."""
    if 'id="resultats"' not in page:
        return set()
    listed = page.split('id="resultats"', 1)[1]
    return {int(chunk.split('"', 1)[0]) for chunk in listed.split('data-mission="')[1:]}


@pytest.fixture
async def aude(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> dict[str, int]:
    """A live emergency of the Aude, its coordinator signed in, and missions in and out of its scope."""
    await aude_emergency(db)
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    carcassonne, marseille = await organisation_in(db, "11069"), await organisation_in(db, "13055")
    return {
        "repas": await mission_at(db, carcassonne, "Distribution de repas chauds", "11069"),
        "berges": await mission_at(db, carcassonne, "Nettoyage des berges de l'Aude", "11262"),  # Narbonne
        "brouillon": await mission_at(db, carcassonne, "Repas du soir (brouillon)", "11069", status="draft"),
        "marseille": await mission_at(db, marseille, "Repas solidaires à Marseille", "13055"),
    }


async def test_coordinators_find_missions_by_title_words_and_place_then_add_them(
    client: AsyncTestClient, db: asyncpg.Connection, aude: dict[str, int]
) -> None:
    assert results((await client.get(PAGE, params={"recherche": "repas"})).text) == {aude["repas"]}
    assert results((await client.get(PAGE, params={"recherche": "RÉPAS chauds"})).text) == {aude["repas"]}
    assert results((await client.get(PAGE, params={"recherche": "narbonne"})).text) == {aude["berges"]}
    assert results((await client.get(PAGE, params={"recherche": "11100"})).text) == {aude["berges"]}
    assert results((await client.get(PAGE, params={"recherche": "11"})).text) == {aude["repas"], aude["berges"]}
    assert results((await client.get(PAGE, params={"recherche": "secours local 11000"})).text) == {aude["repas"]}
    outside = await client.get(PAGE, params={"recherche": "Marseille"})  # out of scope, and no draft either
    assert outside.status_code == 200 and results(outside.text) == set() and "Aucune mission" in outside.text

    page = (await client.get(PAGE, params={"recherche": "repas"})).text
    assert "Distribution de repas chauds" in page and "Secours local" in page and "Carcassonne (11)" in page
    assert "5 place(s) restante(s) sur 5" in page and "Ajouter" in page
    added = await post_form(client, f"{PAGE}/missions", {"mission": str(aude["repas"]), "priority": "1",
                                                        "recherche": "repas"}, PAGE)
    assert added.status_code == 303 and "recherche=repas" in added.headers["location"]
    row = await db.fetchrow("SELECT emergency_slug, priority FROM missions WHERE id = $1", aude["repas"])
    assert dict(row) == {"emergency_slug": SLUG, "priority": True}
    after = (await client.get(added.headers["location"])).text
    assert results(after) == set() and "Mission rattachée." in after
    assert "Distribution de repas chauds" in after.split('id="missions"', 1)[1]


async def test_the_picker_answers_bad_or_hostile_input_in_french_never_a_500(
    client: AsyncTestClient, db: asyncpg.Connection, aude: dict[str, int]
) -> None:
    for search, message in (("repas\x00", "contient un caractère non autorisé"),
                            ("r" * 5_000, "ne doit pas dépasser 100 caractères"),
                            ("a", "Tapez au moins deux lettres")):
        response = await client.get(PAGE, params={"recherche": search})
        assert response.status_code == 400, search[:10]
        error = response.text.split('id="recherche-erreur">', 1)[1]
        assert message in error.replace("&#39;", "'")
    for number, message in (("999999999", "Aucune mission ne porte ce numéro."),
                            (str(aude["marseille"]), "Cette mission a lieu hors des départements de l"),
                            ("4\x002", "Choisissez la mission dans les résultats"),
                            ("9" * 5_000, "Choisissez la mission dans les résultats"),
                            ("٣", "Choisissez la mission dans les résultats")):
        response = await post_form(client, f"{PAGE}/missions", {"mission": number, "recherche": "repas\x00"}, PAGE)
        assert response.status_code == 422, number[:10]
        assert message in response.text.split('id="recherche-erreur">', 1)[1].replace("&#39;", "'")
    assert await db.fetchval("SELECT count(*) FROM missions WHERE emergency_slug IS NOT NULL") == 0


# Dispatch ------------------------------------------------------------------------------------------------------


def test_the_engine_never_pairs_a_volunteer_with_a_mission_they_applied_to() -> None:
    near, far = (PARIS[0] + 0.01, PARIS[1]), (PARIS[0] + 0.1, PARIS[1])
    missions = [Mission("near", *near, 3), Mission("far", *far, 3)]
    volunteers = [Volunteer("free", *PARIS), Volunteer("applied-near", *PARIS, applied=frozenset({"near"})),
                  Volunteer("applied-both", *PARIS, applied=frozenset({"near", "far"}))]
    plan = plan_dispatch(volunteers, missions, max_km=30)
    assert {a.volunteer_id: a.mission_id for a in plan.assignments} == {"free": "near", "applied-near": "far"}
    assert [(u.volunteer_id, u.reason) for u in plan.unassigned] == [("applied-both", reason_already_applied(30))]
    assert not accepts(volunteers[1], missions[0]) and accepts(volunteers[1], missions[1])


@pytest.mark.parametrize("seed", range(15))
def test_with_applications_the_plan_is_still_the_brute_force_optimum(seed: int) -> None:
    rng = random.Random(seed)
    spot = lambda: (PARIS[0] + rng.uniform(-0.3, 0.3), PARIS[1] + rng.uniform(-0.45, 0.45))  # noqa: E731
    missions = [Mission(f"m{j}", *spot(), rng.randint(0, 3), priority=rng.random() < 0.4)
                for j in range(rng.randint(1, 4))]
    volunteers = [Volunteer(f"v{i}", *spot(), applied=frozenset(m.id for m in missions if rng.random() < 0.4))
                  for i in range(rng.randint(1, 8))]
    plan = plan_dispatch(volunteers, missions, max_km=35)
    options = [[(j, haversine_km(v.lat, v.lon, m.lat, m.lon)) for j, m in enumerate(missions)
                if haversine_km(v.lat, v.lon, m.lat, m.lon) <= 35 and accepts(v, m)] for v in volunteers]

    @cache
    def best(i: int, left: tuple[int, ...]) -> tuple[int, int, float]:
        if i == len(volunteers):
            return (0, 0, 0.0)
        choice = best(i + 1, left)
        for j, km in options[i]:
            if left[j]:
                p, f, d = best(i + 1, (*left[:j], left[j] - 1, *left[j + 1:]))
                choice = max(choice, (p + missions[j].priority, f + 1, d - km))
        return choice

    priority, places, minus_km = best(0, tuple(m.places for m in missions))
    assert (plan.priority_places_filled, plan.places_filled) == (priority, places)
    assert plan.total_km == pytest.approx(-minus_km, abs=1e-6)
    by_id = {v.id: v for v in volunteers}
    assert all(a.mission_id not in by_id[a.volunteer_id].applied for a in plan.assignments)


async def test_a_dispatch_never_proposes_a_mission_to_someone_already_applying_to_it(
    redis: Redis, db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    emergency_id = await live_emergency(db)
    [mission_id] = await rhone_missions(db, (5,))
    first, second, third, fourth = [v for v, _ in await add_volunteers(db, 4)]
    places = Places(redis)
    # Applied moments ago: the change waits in Redis's queue, PostgreSQL does not know it yet.
    queued = await applications.apply(places, engine, mission_id, second, "", adult_on=date(2008, 1, 1))
    assert queued.outcome == "pending"
    assert await db.fetchval("SELECT count(*) FROM applications") == 0
    # Applied long ago and saved (and wait-listed: holding no place); Redis read the mission before it.
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                     " VALUES ($1, $2, 'waitlisted', 1, now())", mission_id, first)
    run_id = await db.fetchval("INSERT INTO dispatch_runs (emergency_id, parameters, status) VALUES ($1, $2,"
                               " 'planning') RETURNING id", emergency_id,
                               json.dumps({"pool": "departements", "domains": [], "availability": [], "max_km": 30,
                                           "mission_ids": [mission_id]}))

    assert await plan_run(engine, places, run_id) == {"planned": 2}

    run = await db.fetchrow("SELECT planned_volunteers, counts, preview FROM dispatch_runs WHERE id = $1", run_id)
    assert sorted(run["planned_volunteers"]) == [third, fourth]  # four open places, two people free to take them
    assert json.loads(run["counts"])["already_applied"] == 2
    reasons = {u["volunteer_id"]: u["reason"] for u in json.loads(run["preview"])["unassigned"]}
    assert reasons == {first: reason_already_applied(30), second: reason_already_applied(30)}


# Paris time --------------------------------------------------------------------------------------------------


def test_the_applicants_csv_tells_paris_time_and_says_so() -> None:
    winter = datetime(2025, 1, 15, 23, 30, tzinfo=UTC)  # already the 16th in Paris (UTC+1)
    row = ApplicationRead(mission_id=1, mission_title="Repas", mission_path="/missions/1-repas",
                          organisation_name="Secours", volunteer_id=2, first_name="Ana", last_name="Martin",
                          email="a@example.org", commune="Lyon", status="pending", status_label="En attente",
                          applied_at=winter)
    lines = list(csv.reader(io.StringIO(exports.to_csv([row]).decode("utf-8-sig")), delimiter=";"))
    assert "Candidature le (heure de Paris)" in lines[0]
    assert lines[1][lines[0].index("Candidature le (heure de Paris)")] == "2025-01-16 00:30:00"
    assert when(datetime(2025, 7, 1, 12, 0), "time") == "14:00"  # naive is UTC; summer time is UTC+2


async def test_a_run_page_shows_paris_time_and_never_refreshes_itself(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    emergency_id = await live_emergency(db)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await db.fetchval(
        "INSERT INTO dispatch_runs (emergency_id, parameters, status, created_at, expires_at) VALUES ($1, $2,"
        " 'planning', '2025-07-01 10:00+00', '2025-07-02 18:30+00') RETURNING id", emergency_id,
        json.dumps({"pool": "departements", "domains": [], "availability": [], "max_km": 12.5, "mission_ids": [1]}))
    base = f"/coordination/urgences/crue-du-rhone/mobilisation/{run_id}"
    page = (await client.get(base)).text
    assert "Lancée le 01/07/2025 à 12:00" in page and "expirent le 02/07/2025 à 20:30 (heure de Paris)" in page
    assert "UTC" not in page and "http-equiv" not in page
    assert "ne se met pas à jour d'elle-même" in page.replace("&#39;", "'") and 'id="actualiser"' in page
    assert "distance maximale 12\u00a0km" in page
    assert (await client.get(f"{base}/etat")).json() == {"done": False, "message": "Le calcul du plan est en cours.",
                                                         "status": "planning"}
    await db.execute("UPDATE dispatch_runs SET status = 'planned' WHERE id = $1", run_id)
    assert (await client.get(f"{base}/etat")).json()["done"] is True
    assert 'id="actualiser"' not in (await client.get(base)).text
    # Guarded like the page: another department's coordinator reads nothing.
    await sign_in(client, redis, db, "coordination13@example.org", departments=("13",))
    assert (await client.get(f"{base}/etat")).status_code == 403


async def test_the_export_status_is_the_requesters_only(client: AsyncTestClient, redis: Redis,
                                                        db: asyncpg.Connection) -> None:
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                "gestion@example.org")
    organisation_id = await organisation_in(db, "11069")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    await sign_in(client, redis, db, "gestion@example.org")
    mission_id = await mission_at(db, organisation_id, "Distribution de repas", "11069")
    token = exports.new_token()
    await exports.register(redis, token, user_id, mission_id)
    page = (await client.get(f"/exports/{token}")).text
    assert "en préparation" in page and "http-equiv" not in page and 'id="actualiser"' in page
    assert (await client.get(f"/exports/{token}/etat")).json() == {"done": False,
                                                                 "message": "Le fichier est en préparation.",
                                                                 "url": None}
    request = await exports.find(redis, token, user_id)
    await exports.store(redis, token, request, b"x")
    assert (await client.get(f"/exports/{token}/etat")).json()["url"] == f"/exports/{token}/candidatures.csv"
    await sign_in(client, redis, db, "curieux@example.org")
    assert (await client.get(f"/exports/{quote(token)}/etat")).status_code in (403, 404)
