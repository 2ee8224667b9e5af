"""Emergencies: the coordinators' lifecycle within their scope, the public page and the home banner served from the
page cache, refreshed at once after a change and within seconds for counters, and missions attached in scope."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from surge.emergencies.page import FRESH_SECONDS
from tests.test_applications import add_volunteers
from tests.test_missions import insert_missions
from tests.test_organisations import post_form, sign_in

FORM = "/coordination/urgences/nouvelle"


def emergency(**overrides: Any) -> dict[str, Any]:
    body = {
        "title": "Inondations dans l'Aude",
        "slug": "inondations-aude",
        "description": "Des crues ont touché une trentaine de communes de l'Aude.",
        "needs": "Nettoyage des maisons, distribution de repas, accueil des sinistrés.",
        "departments": "11",
        "priority_domains": ["solidarite-insertion", "prevention-protection"],
        "ends_on": "",
    }
    body.update(overrides)
    return body


async def create(client: AsyncTestClient, **overrides: Any) -> Any:
    return await post_form(client, FORM, emergency(**overrides), FORM)


async def act(client: AsyncTestClient, slug: str, decision: str) -> Any:
    return await post_form(client, f"/coordination/urgences/{slug}/statut/{decision}", {})


@pytest.fixture
async def public(settings: Any) -> Any:
    """An anonymous visitor, on another web process."""
    async with AsyncTestClient(app=create_app(settings)) as visitor:
        yield visitor


async def organisation_in(db: asyncpg.Connection, commune_code: str) -> int:
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " SELECT 'Secours local', 'association', 'W111234567', 'Rue', postal_codes[1], code, 'Aide.', 'validated'"
        " FROM communes WHERE code = $1 RETURNING id", commune_code,
    )
    return organisation_id


async def test_department_coordinators_open_emergencies_in_their_departments_only(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, public: AsyncTestClient
) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    refused = await create(client, departments="11, 34")
    assert refused.status_code == 422 and "Vous ne coordonnez pas tous ces départements" in refused.text
    national = await create(client, departments="")
    assert national.status_code == 422 and "coordination nationale" in national.text
    unknown = await create(client, departments="11, 99")
    assert unknown.status_code == 422 and "Départements inconnus : 99" in unknown.text
    created = await create(client)
    assert created.status_code == 303 and created.headers["location"] == "/coordination/urgences/inondations-aude"
    assert (await create(client)).status_code == 422  # the address is taken
    # Someone else: a volunteer is not a coordinator, a coordinator of another department is out of scope.
    await sign_in(public, redis, db, "coord.herault@example.org", departments=("34",))
    assert (await public.get("/coordination/urgences/inondations-aude")).status_code == 403
    assert "Inondations" not in (await public.get("/coordination/urgences")).text


async def test_going_live_shows_the_page_and_the_banner_and_closing_archives_it(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, public: AsyncTestClient
) -> None:
    await sign_in(client, redis, db, "coord.national@example.org", departments=(None,))
    assert (await create(client, departments="")).status_code == 303
    assert (await public.get("/urgence/inondations-aude")).status_code == 404  # a draft is not public
    assert "Inondations" not in (await public.get("/")).text
    assert (await act(client, "inondations-aude", "mettre-en-ligne")).status_code == 303
    page = await public.get("/urgence/inondations-aude")
    assert page.status_code == 200 and "Inondations dans l" in page.text
    assert 'href="/inscription?urgence=inondations-aude"' in page.text
    assert "set-cookie" not in page.headers  # no session, no CSRF cookie: the page is the same for everyone
    home = await public.get("/")
    assert 'href="/urgence/inondations-aude"' in home.text
    assert (await act(client, "inondations-aude", "mettre-en-ligne")).status_code == 409
    assert (await act(client, "inondations-aude", "clore")).status_code == 303
    archived = await public.get("/urgence/inondations-aude")
    assert archived.status_code == 200 and "Cette urgence est close" in archived.text
    assert "/inscription?urgence=" not in archived.text
    assert 'href="/urgence/inondations-aude"' not in (await public.get("/")).text


async def test_the_page_shows_attached_missions_at_once_and_counters_within_seconds(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, public: AsyncTestClient
) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    await create(client)
    await act(client, "inondations-aude", "mettre-en-ligne")
    first = await public.get("/urgence/inondations-aude")
    assert 'id="compteur-benevoles">0<' in first.text and 'id="aucune-mission"' in first.text

    carcassonne = await organisation_in(db, "11069")
    await insert_missions(db, carcassonne, "11069", 1)
    mission_id = await db.fetchval("SELECT id FROM missions WHERE organisation_id = $1", carcassonne)
    await post_form(client, "/coordination/urgences/inondations-aude/missions", {"mission": str(mission_id),
                    "priority": "1"}, "/coordination/urgences/inondations-aude")
    # A change to the emergency's missions shows on the very next visit.
    page = await public.get("/urgence/inondations-aude?code_postal=11000")
    # The mission is at Carcassonne's town hall, where the postal code 11000 is located.
    assert "Mission 000" in page.text and "Prioritaire" in page.text and "à moins de 100\u00a0m" in page.text
    assert 'id="compteur-ouvertes">5<' in page.text

    # Counters move without a change to the page: visits within FRESH_SECONDS get the cached copy, then it is rebuilt.
    assert 'id="compteur-benevoles">0<' in (await public.get("/urgence/inondations-aude")).text
    await db.execute("UPDATE volunteers SET emergency_slug = 'inondations-aude' WHERE id = ANY($1::bigint[])",
                     [volunteer_id for volunteer_id, _ in await add_volunteers(db, 3)])
    assert 'id="compteur-benevoles">0<' in (await public.get("/urgence/inondations-aude")).text
    await asyncio.sleep(FRESH_SECONDS + 0.5)
    for _ in range(50):
        if 'id="compteur-benevoles">3<' in (await public.get("/urgence/inondations-aude")).text:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the counter was not refreshed")


async def test_coordinators_attach_only_missions_of_the_emergencys_departments(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    await create(client)
    marseille = await organisation_in(db, "13055")
    await insert_missions(db, marseille, "13055", 1)
    mission_id = await db.fetchval("SELECT id FROM missions WHERE organisation_id = $1", marseille)
    response = await post_form(client, "/coordination/urgences/inondations-aude/missions", {"mission": str(mission_id)},
                               "/coordination/urgences/inondations-aude")
    assert response.status_code == 422
    assert "Cette mission a lieu hors des départements de l" in response.text
    assert 'id="recherche-erreur"' in response.text
    assert await db.fetchval("SELECT emergency_slug FROM missions WHERE id = $1", mission_id) is None


async def test_an_unknown_or_malformed_emergency_is_a_french_404(public: AsyncTestClient) -> None:
    for path in ("/urgence/nexiste-pas", "/urgence/A%20B"):
        response = await public.get(path)
        assert response.status_code == 404 and "n'existe pas" in response.text.replace("&#39;", "'")


async def test_the_demo_data_holds_the_covid_and_ukraine_emergencies_and_someone_for_every_role(
    db: asyncpg.Connection, public: AsyncTestClient
) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    for _ in range(2):  # safe to run again
        result = subprocess.run([sys.executable, "-m", "app.demo"], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    for slug, title in (("covid-19", "Covid-19 — mars 2020"), ("ukraine", "Ukraine — mars 2022")):
        departments = await db.fetchval(
            "SELECT count(DISTINCT c.department_code) FROM missions m JOIN mission_addresses a ON a.mission_id = m.id"
            " JOIN communes c ON c.code = a.commune_code WHERE m.emergency_slug = $1", slug)
        assert departments >= 3
        page = await public.get(f"/urgence/{slug}")
        assert page.status_code == 200 and title in page.text
    assert await db.fetchval("SELECT count(*) FROM emergencies") == 2
    # Every role has someone to sign in as, and the moderation queues something to decide.
    assert await db.fetchval("SELECT count(*) FROM users WHERE is_admin") == 1
    assert await db.fetchval("SELECT region_code FROM referent_scopes") == "84"
    assert await db.fetchval("SELECT count(*) FROM mission_templates WHERE status = 'validated'") == 1
    assert await db.fetchval("SELECT count(*) FROM organisations WHERE status = 'awaiting_validation'") == 1
    assert await db.fetchval("SELECT count(*) FROM missions WHERE status = 'awaiting_validation'") == 1
    # A campaign running today, on the home page and with missions of its domain on its page.
    assert await db.fetchval("SELECT count(*) FROM campaigns WHERE current_date BETWEEN starts_on AND ends_on") == 1
    home = await public.get("/")
    assert "Collecte solidaire d'hiver" in home.text.replace("&#39;", "'")
    campaign = await public.get("/campagnes/collecte-solidaire")
    assert campaign.status_code == 200 and "mission-card" in campaign.text


async def test_a_page_that_cannot_be_rebuilt_is_served_from_its_previous_copy(redis: Redis) -> None:
    """PostgreSQL unreachable after a change: visitors keep the last copy; with none at all, a 503, not a 500."""
    from app.missions.cache import invalidate
    from surge.emergencies.page import PageCache, PageUnavailable

    pages = PageCache(redis)

    async def good() -> bytes:
        return b"<h1>Crues</h1>"

    async def down() -> bytes:
        raise ConnectionRefusedError("connection refused")

    assert await pages.get("urgence:crues", "", good) == b"<h1>Crues</h1>"
    await invalidate(redis)  # a change: the cached copy is no longer current
    assert await pages.get("urgence:crues", "", down) == b"<h1>Crues</h1>"
    with pytest.raises(PageUnavailable):
        await pages.get("urgence:jamais-vue", "", down)
    assert await pages.get("urgence:crues", "", good) == b"<h1>Crues</h1>"  # and it rebuilds once it can


async def test_unknown_slugs_create_no_cache_entry(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, public: AsyncTestClient
) -> None:
    """Anyone can type a slug: only the directory of public slugs is cached, never one entry per guess."""
    await sign_in(client, redis, db, "coord.national@example.org", departments=(None,))
    await create(client, departments="")
    await act(client, "inondations-aude", "mettre-en-ligne")
    assert (await public.get("/urgence/inondations-aude?code_postal=11000")).status_code == 200
    before = sorted([key async for key in redis.scan_iter(match="renfort:pages:*")])
    for number in range(20):
        assert (await public.get(f"/urgence/nexiste-pas-{number}?code_postal=11000")).status_code == 404
    assert sorted([key async for key in redis.scan_iter(match="renfort:pages:*")]) == before
