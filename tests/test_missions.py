"""Missions: the managers' lifecycle with allowed transitions only, the public search (true radius on real communes,
filters, pagination, Redis cache and its invalidation) and the scheduled end of past missions."""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from queues import enqueue
from queues.worker import schedule_mission_ends
from surge.dispatch.geometry import haversine_km
from tests.conftest import REDIS_URL, run_worker
from tests.test_organisations import decide, post_form, register, sign_in

NEXT_MONTH = (date.today() + timedelta(days=30)).isoformat()


def mission(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "Distribution alimentaire du samedi",
        "description": "Accueillir les familles et distribuer les colis alimentaires à Lyon.",
        "domain": "solidarite-insertion",
        "activities": "accueil-information, distribution",
        "start_date": date.today().isoformat(),
        "end_date": NEXT_MONTH,
        "places": "12",
        "address_line_1": "1 place de la Comédie",
        "postal_code_1": "69001",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def other(settings: Settings) -> Any:
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


async def create(client: AsyncTestClient, organisation_id: int, **overrides: Any) -> tuple[int, str]:
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    response = await post_form(client, path, mission(**overrides), path)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    match = re.fullmatch(r"/missions/(\d+)-([a-z0-9-]+)", location)
    assert match, location
    return int(match[1]), location


async def act(client: AsyncTestClient, mission_id: int, decision: str) -> Any:
    """The state button, confirmed when the action cannot be undone (tests/test_manager_flows.py asks first)."""
    return await post_form(client, f"/missions/{mission_id}/statut/{decision}", {"confirm": "1"})


def refused_with(response: Any, notice: str) -> bool:
    """A refused state action leads back to the mission, whose notice says why."""
    return response.status_code == 303 and bool(re.search(rf"\?(info|refus)={notice}$", response.headers["location"]))


async def validated_organisation(client: AsyncTestClient, moderator: AsyncTestClient, redis: Redis,
                                 db: asyncpg.Connection, email: str, **overrides: Any) -> int:
    await sign_in(client, redis, db, email)
    organisation_id, _ = await register(client, **overrides)
    await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    await sign_in(moderator, redis, db, "admin@example.org", admin=True)
    assert (await decide(moderator, organisation_id, "valider")).status_code == 303
    return organisation_id


def read_version(page: str, mission_id: int, decision: str) -> str | None:
    """The version a moderation form carries, as the referent's browser would send it back."""
    form = re.search(rf'action="/moderation/missions/{mission_id}/{decision}"((?:(?!</form>).)*)</form>', page, re.S)
    version = re.search(r'name="version" value="(\d+)"', form[1]) if form else None
    return version[1] if version else None


async def moderate(client: AsyncTestClient, mission_id: int, decision: str, reason: str = "") -> Any:
    """The decision from the moderation queue, with the version it shows (none when the queue does not offer it)."""
    data = {"reason": reason} if reason else {}
    version = read_version((await client.get("/moderation/missions")).text, mission_id, decision)
    if version is not None:
        data["version"] = version
    return await post_form(client, f"/moderation/missions/{mission_id}/{decision}", data)


async def online_mission(client: AsyncTestClient, moderator: AsyncTestClient, organisation_id: int,
                         **overrides: Any) -> int:
    """The manager (`client`) publishes it; unless it went online at once (a trusted organisation), a referent or an
    admin (`moderator`, signed in) validates it."""
    mission_id, path = await create(client, organisation_id, **overrides)
    assert (await act(client, mission_id, "publier")).status_code == 303
    if "statut « En attente de validation »" in (await client.get(path)).text:
        assert (await moderate(moderator, mission_id, "valider")).status_code == 303
    return mission_id


async def insert_missions(db: asyncpg.Connection, organisation_id: int, commune_code: str, count: int,
                          **fields: Any) -> None:
    """Published missions written straight to the database, for volume."""
    for number in range(count):
        mission_id = await db.fetchval(
            "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date,"
            " places, open_to_minors, priority, status) VALUES ($1, $2, 'Une mission de test assez longue.',"
            " 'solidarite-insertion', '{}', false, current_date, 5, false, $3, 'published') RETURNING id",
            organisation_id, f"Mission {number:03d}", fields.get("priority", False),
        )
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " SELECT $1, 'Rue', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
            mission_id, commune_code,
        )


async def found(client: AsyncTestClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/missions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# Lifecycle and roles --------------------------------------------------------------------------------------------


async def test_every_field_gets_its_own_french_message(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "manager@example.org")
    organisation_id, _ = await register(client)
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    response = await post_form(client, path, mission(title="Aide", description="Court.", domain="jardinage",
                                                     places="0", start_date="", end_date="", postal_code_1="999"),
                               path)
    assert response.status_code == 422
    for message in ("Donnez un titre à la mission", "Décrivez la mission en quelques phrases",
                    "Choisissez le domaine de la mission.", "Indiquez un nombre de places (1 au moins).",
                    "Indiquez une date de début, ou décrivez le rythme", "Saisissez un code postal à 5 chiffres."):
        assert message in response.text
    assert await db.fetchval("SELECT count(*) FROM missions") == 0
    no_csrf = await client.post(path, data=mission(), follow_redirects=False)
    assert no_csrf.status_code == 403


async def test_managers_run_the_lifecycle_with_allowed_transitions_only(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "manager@example.org")
    organisation_id, _ = await register(client)
    mission_id, path = await create(client, organisation_id, schedule="Tous les samedis matin",
                                    address_line_2="5 rue Racine", postal_code_2="69100")
    assert path == f"/missions/{mission_id}-distribution-alimentaire-du-samedi"
    rows = await db.fetch("SELECT commune_code, latitude FROM mission_addresses WHERE mission_id = $1 ORDER BY id",
                          mission_id)
    assert [row["commune_code"] for row in rows] == ["69123", "69266"] and all(row["latitude"] for row in rows)
    refused = await act(client, mission_id, "publier")
    assert refused_with(refused, "structure")
    assert "être validée par les référent·es" in (await client.get(refused.headers["location"])).text
    assert (await other.get(path)).status_code == 404

    await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    await sign_in(other, redis, db, "admin@example.org", admin=True)
    await decide(other, organisation_id, "valider")
    assert (await act(client, mission_id, "publier")).status_code == 303  # to the referents first
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "awaiting_validation"
    assert refused_with(await act(client, mission_id, "publier"), "publier")
    assert (await moderate(other, mission_id, "valider")).status_code == 303
    page = await other.get(path)
    assert page.status_code == 200 and "12 place(s) restante(s) sur 12" in page.text and "Aperçu" not in page.text
    assert (await other.get(f"/missions/{mission_id}-ancien-titre", follow_redirects=False)).status_code == 301

    same_content = mission(places="20", schedule="Tous les samedis matin", address_line_2="5 rue Racine",
                           postal_code_2="69100")  # more places only: the mission stays online
    edited = await post_form(client, f"/missions/{mission_id}/modifier", same_content,
                             f"/missions/{mission_id}/modifier")
    assert edited.status_code == 303 and await db.fetchval("SELECT places FROM missions") == 20
    assert (await act(client, mission_id, "completer")).status_code == 303
    assert refused_with(await act(client, mission_id, "completer"), "completer")
    assert (await act(client, mission_id, "rouvrir")).status_code == 303
    assert (await act(client, mission_id, "terminer")).status_code == 303
    finished = await act(client, mission_id, "annuler")
    assert refused_with(finished, "annuler")
    assert "ne peut pas être annulée" in (await client.get(finished.headers["location"])).text
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "finished"
    assert (await act(client, mission_id, "supprimer")).status_code == 404


async def test_a_manager_cannot_touch_another_organisations_missions(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    theirs, _ = await register(client)
    mission_id, path = await create(client, theirs)
    await sign_in(other, redis, db, "second@example.org")
    await register(other, name="Secours Populaire Lyon")
    new_path = f"/organisations/{theirs}/missions/nouvelle"
    assert (await other.get(new_path)).status_code == 403
    assert (await post_form(other, new_path, mission(), "/mon-espace")).status_code == 403
    assert (await other.get(f"/missions/{mission_id}/modifier")).status_code == 403
    edit = await post_form(other, f"/missions/{mission_id}/modifier", mission(title="Prise"), "/mon-espace")
    assert edit.status_code == 403
    assert (await act(other, mission_id, "publier")).status_code == 403
    assert (await other.get(path)).status_code == 404
    assert await db.fetchval("SELECT (title, status)::text FROM missions") == (
        '("Distribution alimentaire du samedi",draft)'
    )


# Search ---------------------------------------------------------------------------------------------------------


async def test_a_mission_in_lyon_is_found_from_villeurbanne_within_10_km_not_from_marseille(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "lyon@example.org")
    mission_id = await online_mission(client, other, organisation_id)
    near = await found(other, postal_code="69100", radius_km="10")
    assert [item["id"] for item in near["items"]] == [mission_id]
    lyon = await db.fetchrow("SELECT latitude, longitude FROM communes WHERE code = '69123'")
    villeurbanne = await db.fetchrow("SELECT latitude, longitude FROM communes WHERE code = '69266'")
    expected = haversine_km(lyon["latitude"], lyon["longitude"], villeurbanne["latitude"], villeurbanne["longitude"])
    assert 1 < expected < 10 and near["items"][0]["distance_km"] == round(expected, 1)
    assert (await found(other, commune_code="69266", radius_km="10"))["total"] == 1
    assert (await found(other, postal_code="13001"))["total"] == 0
    assert (await found(other, postal_code="13001", radius_km="500"))["total"] == 1  # ~280 km away
    # Coordinates are rounded to 2 decimals (under 700 m away here), so nearby visitors share one cached search.
    assert (await found(other, lat=str(lyon["latitude"]), lon=str(lyon["longitude"]), radius_km="1"))["total"] == 1
    # The radius is a circle, not the bounding box: a point ~6 km off diagonally is outside 5 km even though both
    # its latitude and longitude offsets are under 5 km (rounding moves them by less than 600 m).
    offset = 4.3 / 111.195
    diagonal = {"lat": str(lyon["latitude"] + offset),
                "lon": str(lyon["longitude"] + offset / math.cos(math.radians(lyon["latitude"])))}
    assert (await found(other, **diagonal, radius_km="5"))["total"] == 0
    assert (await found(other, **diagonal, radius_km="10"))["total"] == 1
    assert (await found(other, department="69"))["total"] == 1
    assert (await found(other, department="13"))["total"] == 0
    assert (await found(other, domain="art-culture"))["total"] == 0
    assert (await found(other, date_from=(date.today() + timedelta(days=60)).isoformat()))["total"] == 0
    assert (await found(other, remote="true"))["total"] == 0
    page = await other.get("/missions", params={"postal_code": "69100", "radius_km": "10"})
    assert page.status_code == 200 and "Distribution alimentaire du samedi" in page.text and "\u00a0km" in page.text
    bad = await other.get("/api/v1/missions", params={"per_page": "51", "postal_code": "6910"})
    assert bad.status_code == 422 and set(bad.json()["errors"]) == {"per_page", "postal_code"}


async def test_only_online_missions_are_found(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "lyon@example.org")
    online = await online_mission(client, other, organisation_id)
    draft, _ = await create(client, organisation_id, title="Mission en brouillon")
    waiting, _ = await create(client, organisation_id, title="Mission en attente")
    await act(client, waiting, "publier")
    full = await online_mission(client, other, organisation_id, title="Mission complète")
    await act(client, full, "completer")
    everything = await found(other, postal_code="69001")
    assert {item["id"] for item in everything["items"]} == {online, full}
    assert [item["id"] for item in (await found(other, postal_code="69001", open_places="1"))["items"]] == [online]
    assert draft not in {item["id"] for item in everything["items"]}

    assert (await decide(other, organisation_id, "suspendre", "Signalements.")).status_code == 303
    assert (await found(other, postal_code="69001"))["total"] == 0  # the moderation invalidated the cache
    assert (await client.get(f"/missions/{online}-x", follow_redirects=False)).status_code == 301  # its manager
    path = f"/missions/{online}-distribution-alimentaire-du-samedi"
    assert "Aperçu" in (await other.get(path)).text  # an admin, referent everywhere: a preview
    async with AsyncTestClient(app=create_app(settings)) as public:
        assert (await public.get(path)).status_code == 404


async def test_results_are_paginated_and_sorted_by_distance_or_priority(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "lyon@example.org")
    await insert_missions(db, organisation_id, "69266", 30)  # Villeurbanne
    await insert_missions(db, organisation_id, "69123", 25, priority=True)  # Lyon
    first = await found(other, postal_code="69100", per_page="50")
    assert first["total"] == 55 and first["pages"] == 2 and len(first["items"]) == 50
    distances = [item["distance_km"] for item in first["items"]]
    assert distances == sorted(distances) and distances[0] == 0.0
    second = await found(other, postal_code="69100", per_page="50", page="2")
    assert len(second["items"]) == 5
    assert not {item["id"] for item in first["items"]} & {item["id"] for item in second["items"]}
    by_priority = await found(other, postal_code="69100", sort="priority", per_page="25")
    assert all(item["priority"] for item in by_priority["items"])
    assert (await found(other, page="3", per_page="25"))["items"] != []
    assert (await other.get("/api/v1/missions", params={"per_page": "0"})).status_code == 422


async def test_the_cache_answers_repeated_searches_until_a_mission_changes_status(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "lyon@example.org")
    first = await online_mission(client, other, organisation_id)
    second = await online_mission(client, other, organisation_id, title="Maraude du soir")
    before = await found(other, postal_code="69100", radius_km="10")
    assert before["total"] == 2
    assert await redis.keys("renfort:missions:search:*")
    # A change the service did not make is invisible: the second identical query is served from Redis.
    await db.execute("UPDATE missions SET title = 'Titre changé en base' WHERE id = $1", first)
    assert await found(other, postal_code="69100", radius_km="10") == before
    # A status change through the service invalidates every cached search.
    assert (await act(client, second, "annuler")).status_code == 303
    after = await found(other, postal_code="69100", radius_km="10")
    assert [item["title"] for item in after["items"]] == ["Titre changé en base"]


# The scheduled end ----------------------------------------------------------------------------------------------


async def test_missions_end_after_their_end_date_through_the_worker(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "lyon@example.org")
    past = await online_mission(client, other, organisation_id)
    current = await online_mission(client, other, organisation_id, title="Mission en cours")
    await db.execute("UPDATE missions SET end_date = current_date - 1, start_date = current_date - 10 WHERE id = $1",
                     past)
    assert (await found(other, postal_code="69001"))["total"] == 2
    connection = SyncRedis.from_url(REDIS_URL)
    try:
        assert schedule_mission_ends(connection) and not schedule_mission_ends(connection)  # once a minute
        enqueue.finish_past_missions(connection)
    finally:
        connection.close()
    run_worker()
    statuses = dict(await db.fetch("SELECT id, status FROM missions"))
    assert statuses == {past: "finished", current: "published"}
    assert [item["id"] for item in (await found(other, postal_code="69001"))["items"]] == [current]
