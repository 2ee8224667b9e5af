"""Department and commune pages (missions around, active organisations, volunteers with small counts hidden), the
city pages local authorities write and referents validate, and the organisation showcase's online missions."""

from __future__ import annotations

import re

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.formats import decimal
from app.missions.cache import invalidate
from app.territories import figures
from tests.test_organisations import post_form, sign_in

LYON, BOURG = "69123", "01053"  # Lyon (Rhône), Bourg-en-Bresse (Ain)


async def organisation(db: asyncpg.Connection, name: str, commune: str, *, kind: str = "association",
                       status: str = "validated", managers: tuple[str, ...] = ()) -> int:
    organisation_id = int(await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " SELECT $1, $2, '1 rue de la Mairie', postal_codes[1], code, 'Une structure.', $3 FROM communes"
        " WHERE code = $4 RETURNING id", name, kind, status, commune,
    ))
    for email in managers:
        user_id = await db.fetchval(
            "INSERT INTO users (email, email_normalized) VALUES ($1, $1) ON CONFLICT (email_normalized)"
            " DO UPDATE SET email = excluded.email RETURNING id", email
        )
        await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                         organisation_id, user_id)
    return organisation_id


async def mission(db: asyncpg.Connection, organisation_id: int, title: str, commune: str, *,
                  status: str = "published") -> int:
    mission_id = int(await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Aider.', 'solidarite-insertion', '{}', false, 5, false, $3)"
        " RETURNING id", organisation_id, title, status,
    ))
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, 'Place', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
        mission_id, commune,
    )
    return mission_id


async def volunteers(db: asyncpg.Connection, commune: str, count: int, *, prefix: str = "v") -> None:
    for number in range(count):
        await db.execute(
            "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date,"
            " postal_code, commune_code, domains, availability, skills, consent_at, accepted_at)"
            " SELECT $1, $2, $2, 'Ana', 'Martin', DATE '1990-01-01', postal_codes[1], code, '{}', 'weekends', '{}',"
            " now(), now() FROM communes WHERE code = $3",
            f"r-{prefix}-{commune}-{number}", f"{prefix}{number}.{commune}@example.org", commune,
        )


async def test_department_page_shows_its_missions_and_organisations_not_others(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    rhone = await organisation(db, "Banque alimentaire du Rhône", LYON)
    ain = await organisation(db, "Secours de l'Ain", BOURG)
    await mission(db, rhone, "Trier les colis à Lyon", LYON)
    await mission(db, ain, "Collecte à Bourg", BOURG)
    await mission(db, rhone, "Brouillon lyonnais", LYON, status="draft")
    await organisation(db, "Association en attente", LYON, status="awaiting_validation")

    response = await client.get("/departements/69")
    assert response.status_code == 200
    page = response.text
    assert "<h1>Bénévolat : Rhône</h1>" in page and "Missions dans le département" in page
    assert "Trier les colis à Lyon" in page and "Collecte à Bourg" not in page and "Brouillon lyonnais" not in page
    assert "Banque alimentaire du Rhône" in page and "Secours de l&#39;Ain" not in page
    assert "Association en attente" not in page
    assert 'href="/missions?department=69"' in page
    assert f'href="/villes/{LYON}"' in page  # the most populous communes link to their pages

    ain_page = (await client.get("/departements/01")).text
    assert "Collecte à Bourg" in ain_page and "Trier les colis à Lyon" not in ain_page
    city = (await client.get(f"/villes/{BOURG}")).text  # within 20 km of its town hall; Lyon is 60 km away
    assert "Collecte à Bourg" in city and "Trier les colis à Lyon" not in city
    assert f'href="/missions?commune_code={BOURG}&amp;radius_km=20"' in city
    assert "Secours de l&#39;Ain" in city and "Banque alimentaire du Rhône" not in city


async def test_organisation_with_a_mission_in_the_department_is_active_there(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    rhone = await organisation(db, "Croix du Rhône", LYON)
    await mission(db, rhone, "Renfort à Bourg", BOURG)
    page = (await client.get("/departements/01")).text
    assert "Croix du Rhône" in page and "Renfort à Bourg" in page


async def test_commune_with_three_volunteers_shows_less_than_ten_and_no_rate(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await volunteers(db, BOURG, 3)
    page = (await client.get(f"/villes/{BOURG}")).text
    assert re.search(r'<dd id="benevoles">\s*moins de 10\s*</dd>', page)
    assert 'id="taux"' not in page
    department = (await client.get("/departements/01")).text
    assert re.search(r'<dd id="benevoles">\s*moins de 10\s*</dd>', department) and 'id="taux"' not in department


async def test_commune_with_twelve_volunteers_shows_the_count_and_the_rate_from_real_population(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await volunteers(db, BOURG, 12)
    await volunteers(db, LYON, 4)  # another commune's volunteers do not count here
    population = await db.fetchval("SELECT population FROM communes WHERE code = $1", BOURG)
    assert population > 10_000
    page = (await client.get(f"/villes/{BOURG}")).text
    assert re.search(r'<dd id="benevoles">\s*12\s*</dd>', page)
    assert f'<dd id="taux">{decimal(round(12 * 1000 / population, 2), 2)} bénévole(s)</dd>' in page
    assert 'href="/departements/01"' in page
    assert "<h1>Bénévolat à Bourg-en-Bresse</h1>" in page and "Missions à moins de 20 km" in page


async def test_unknown_and_hostile_codes_are_not_found(client: AsyncTestClient) -> None:
    for path in ("/departements/96", "/departements/zz", "/departements/" + "9" * 5000, "/villes/99999",
                 "/villes/abc", "/villes/69123%00", "/departements/%00"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert "introuvable" in response.text or "n'existe pas" in response.text
    unknown = await client.get("/departements/977")  # well formed, unknown to the geography
    assert unknown.status_code == 404 and "Ce département n&#39;existe pas" in unknown.text
    moved = await client.get("/departements/2a", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/departements/2A"
    assert (await client.get("/departements/2A")).status_code == 200


async def test_city_page_workflow_from_manager_to_referent(client: AsyncTestClient, redis: Redis,
                                                           db: asyncpg.Connection) -> None:
    town = await organisation(db, "Ville de Bourg-en-Bresse", BOURG, kind="collectivite",
                              managers=("maire@example.org",))
    promoted = await mission(db, town, "Accompagner les aînés", BOURG)
    await mission(db, town, "Mission en brouillon", BOURG, status="draft")
    await sign_in(client, redis, db, "maire@example.org")
    showcase = (await client.get(f"/organisations/{town}-ville-de-bourg-en-bresse")).text
    assert f'href="/villes/{BOURG}/modifier"' in showcase
    assert f'href="/villes/{BOURG}/modifier"' in (await client.get(f"/villes/{BOURG}")).text
    form = (await client.get(f"/villes/{BOURG}/modifier")).text
    assert "Accompagner les aînés" in form and "Mission en brouillon" not in form

    sent = await post_form(client, f"/villes/{BOURG}/modifier",
                           {"text": "Bienvenue à Bourg.\n<script>alert(1)</script>", "missions": [str(promoted)]},
                           f"/villes/{BOURG}/modifier")
    assert sent.status_code == 303
    assert "envoyée aux référent" in (await client.get(sent.headers["location"])).text
    assert "Bienvenue à Bourg." not in (await client.get(f"/villes/{BOURG}")).text

    await sign_in(client, redis, db, "referent69@example.org", referent_of=("69",))
    assert "Bourg-en-Bresse" not in (await client.get("/moderation/territoires")).text
    refused = await post_form(client, f"/moderation/territoires/{BOURG}/valider", {"version": "0"},
                              "/moderation/territoires")
    assert refused.status_code == 403

    await sign_in(client, redis, db, "referent01@example.org", referent_of=("01",))
    queue = (await client.get("/moderation/territoires")).text
    assert "Bienvenue à Bourg." in queue and "&lt;script&gt;" in queue
    version = re.search(r'name="version" value="(\d+)"', queue)
    assert version
    no_reason = await post_form(client, f"/moderation/territoires/{BOURG}/refuser", {"version": version[1]},
                                "/moderation/territoires")
    assert no_reason.status_code == 400
    validated = await post_form(client, f"/moderation/territoires/{BOURG}/valider", {"version": version[1]},
                                "/moderation/territoires")
    assert validated.status_code == 303

    page = (await client.get(f"/villes/{BOURG}")).text
    assert "<p>Bienvenue à Bourg.</p>" in page and "&lt;script&gt;" in page and "<script>alert" not in page
    assert f'data-mission="{promoted}"' in page.split('id="missions-en-avant"')[1]

    # A new version goes to validation; the validated one stays shown meanwhile, then a refusal keeps it.
    await sign_in(client, redis, db, "maire@example.org")
    again = await post_form(client, f"/villes/{BOURG}/modifier", {"text": "Nouvelle version."},
                            f"/villes/{BOURG}/modifier")
    assert again.status_code == 303
    page = (await client.get(f"/villes/{BOURG}")).text
    assert "Bienvenue à Bourg." in page and "Nouvelle version." not in page
    await sign_in(client, redis, db, "referent01@example.org", referent_of=())
    queue = (await client.get("/moderation/territoires")).text
    version = re.search(r'name="version" value="(\d+)"', queue)
    assert version
    assert (await post_form(client, f"/moderation/territoires/{BOURG}/refuser",
                            {"version": version[1], "reason": "Précisez les horaires."},
                            "/moderation/territoires")).status_code == 303
    await sign_in(client, redis, db, "maire@example.org")
    assert "Motif du refus : Précisez les horaires." in (await client.get(f"/villes/{BOURG}/modifier")).text
    assert "Bienvenue à Bourg." in (await client.get(f"/villes/{BOURG}")).text

    await db.execute("UPDATE organisations SET status = 'suspended' WHERE id = $1", town)
    await invalidate(redis)  # as the suspension does once committed
    assert "Bienvenue à Bourg." not in (await client.get(f"/villes/{BOURG}")).text


async def test_city_page_refuses_other_people_and_bad_input(client: AsyncTestClient, redis: Redis,
                                                            db: asyncpg.Connection) -> None:
    town = await organisation(db, "Ville de Bourg", BOURG, kind="collectivite", managers=("maire@example.org",))
    other = await organisation(db, "Autre asso", BOURG, managers=("asso@example.org",))
    foreign = await mission(db, other, "Mission d'une autre structure", BOURG)
    await mission(db, town, "Mission de la ville", BOURG)
    await sign_in(client, redis, db, "asso@example.org")
    assert (await client.get(f"/villes/{BOURG}/modifier")).status_code == 403  # an association, not the town

    await sign_in(client, redis, db, "maire@example.org")
    assert (await client.get(f"/villes/{LYON}/modifier")).status_code == 403  # not its commune
    page = f"/villes/{BOURG}/modifier"
    for data, field in (({"text": "a\x00b"}, "non autorisé"), ({"text": "x" * 5001}, "ne doit pas dépasser"),
                        ({"text": ""}, "Écrivez le texte"),
                        ({"text": "Bonjour", "missions": [str(foreign)]}, "parmi vos missions"),
                        ({"text": "Bonjour", "missions": ["99999999999999999999"]}, "parmi vos missions")):
        response = await post_form(client, page, data, page)
        assert response.status_code == 400, data
        assert field in response.text
    assert await db.fetchval("SELECT count(*) FROM city_pages") == 0


async def test_showcase_lists_online_missions_only_a_page_at_a_time(client: AsyncTestClient,
                                                                    db: asyncpg.Connection) -> None:
    organisation_id = await organisation(db, "Les Jardins Partagés", LYON)
    for number in range(22):
        await mission(db, organisation_id, f"Jardinage numéro {number:02d}", LYON)
    await mission(db, organisation_id, "Mission complète", LYON, status="full")
    for status in ("draft", "awaiting_validation", "suspended", "cancelled"):
        await mission(db, organisation_id, f"Cachée {status}", LYON, status=status)
    path = f"/organisations/{organisation_id}-les-jardins-partages"
    first = (await client.get(path)).text
    assert "Cachée" not in first
    assert first.count("Jardinage numéro") + first.count("Mission complète") == 20
    assert f'href="{path}?page=2#missions"' in first
    second = (await client.get(f"{path}?page=2")).text
    assert second.count("Jardinage numéro") + second.count("Mission complète") == 3 and "Cachée" not in second
    assert (await client.get(f"{path}?page=abc")).status_code == 404


async def test_territory_figures_come_from_the_redis_cache_until_what_is_online_changes(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await volunteers(db, BOURG, 12)
    assert re.search(r'<dd id="benevoles">\s*12\s*</dd>', (await client.get(f"/villes/{BOURG}")).text)
    assert await redis.exists(figures.keys(f"ville:{BOURG}").entry)
    await volunteers(db, BOURG, 3, prefix="later")  # within the entry's freshness: the cached figures are served
    assert re.search(r'<dd id="benevoles">\s*12\s*</dd>', (await client.get(f"/villes/{BOURG}")).text)
    await invalidate(redis)  # what a mission or organisation going on or offline does after its commit
    assert re.search(r'<dd id="benevoles">\s*15\s*</dd>', (await client.get(f"/villes/{BOURG}")).text)
