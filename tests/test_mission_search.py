"""The search people expect: keywords in French whatever the accents and plurals (PostgreSQL full-text search on an
indexed tsvector), the activity taxonomy, every filter on the page, and real pagination whose links keep the
filters."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app import demo
from app.missions import search
from app.reference import ACTIVITIES
from tests.test_missions import create, mission
from tests.test_organisations import post_form, register, sign_in

TODAY = date.today()


async def organisation(db: asyncpg.Connection, name: str = "Entraide du Rhône", commune: str = "69123") -> int:
    return int(await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " SELECT $1, 'association', '1 rue de la Mairie', postal_codes[1], code, 'Une structure.', 'validated'"
        " FROM communes WHERE code = $2 RETURNING id", name, commune,
    ))


async def published(db: asyncpg.Connection, organisation_id: int, title: str, *, description: str = "Aider.",
                    activities: tuple[str, ...] = (), commune: str = "69123", remote: bool = False,
                    minors: bool = False, start: date | None = TODAY, end: date | None = None,
                    domain: str = "solidarite-insertion") -> int:
    mission_id = int(await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, end_date,"
        " places, open_to_minors, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 5, $9, 'published') RETURNING id",
        organisation_id, title, description, domain, list(activities), remote, start, end, minors,
    ))
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, 'Place', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
        mission_id, commune,
    )
    return mission_id


async def found(client: AsyncTestClient, **params: Any) -> list[int]:
    response = await client.get("/api/v1/missions", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def refused(client: AsyncTestClient, **params: Any) -> dict[str, str]:
    response = await client.get("/api/v1/missions", params=params)
    assert response.status_code == 422, response.text
    errors: dict[str, str] = response.json()["errors"]
    return errors


def nav_links(page: str) -> list[str]:
    nav = re.search(r'<nav aria-label="Pagination"[^>]*>(.*?)</nav>', page, re.S)
    assert nav, "no pagination"
    return [html.unescape(link) for link in re.findall(r'href="([^"]+)"', nav[1])]


# Keywords ---------------------------------------------------------------------------------------------------------


async def test_keywords_find_missions_whatever_the_accents_case_and_plurals(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await organisation(db)
    bikes = await published(db, owner, "Réparation de vélos pour les familles",
                            description="Un atelier du samedi avec un bénévole mécanicien.")
    grocery = await published(db, owner, "Tenir la caisse de l'epicerie solidaire",
                              description="Accueillir les clients et ranger les rayons.")
    help_desk = await published(db, owner, "Permanence administrative", activities=("demarches-administratives",),
                                description="Aider les familles à remplir leurs dossiers en ligne.")

    assert await found(client, keywords="velo") == [bikes]
    assert await found(client, keywords="VÉLOS") == [bikes]
    assert await found(client, keywords="bénévoles") == [bikes]
    assert await found(client, keywords="Épicerie") == [grocery]
    assert await found(client, keywords="épiceries solidaires") == [grocery]
    assert await found(client, keywords="demarche administrative") == [help_desk]  # from its activity too
    assert set(await found(client, keywords="familles")) == {bikes, help_desk}
    assert await found(client, keywords="familles -velo") == [help_desk]
    assert await found(client, keywords='"remplir leurs dossiers"') == [help_desk]
    assert await found(client, keywords="velo or epicerie", sort="priority") != []
    assert await found(client, keywords="parachutisme") == []


async def test_relevance_puts_a_title_match_before_a_description_match(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await organisation(db)
    in_description = await published(db, owner, "Atelier du samedi", description="On y répare des vélos.")
    in_title = await published(db, owner, "Vélo-école pour adultes", description="Apprendre à rouler en ville.")
    assert await found(client, keywords="vélo", sort="pertinence") == [in_title, in_description]
    errors = await refused(client, sort="pertinence")
    assert errors["sort"] == "Le tri par pertinence demande des mots-clés."


async def test_hostile_keywords_get_results_or_a_clear_refusal_never_a_500(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await organisation(db)
    await published(db, owner, "Distribution de colis")
    for odd in ('"', '"colis', "colis & | ! : * ( )", "&|!:*", "!!", "-", "- -colis", "'; DROP TABLE missions; --",
                "colis:*", "<script>", "\\", "or", "le la les", "🚲", "a" * 100):
        response = await client.get("/api/v1/missions", params={"keywords": odd})
        assert response.status_code == 200, (odd, response.text)
        page = await client.get("/missions", params={"keywords": odd})
        assert page.status_code == 200, odd
    assert await found(client, keywords="colis & | ! : *") != []
    assert (await refused(client, keywords="colis\x00"))["keywords"] == "Ce paramètre contient des caractères non " \
                                                                       "autorisés."
    assert "trop long" in (await refused(client, keywords="a" * 101))["keywords"]
    page = await client.get("/missions", params={"keywords": "a" * 101})
    assert page.status_code == 422 and "trop long" in page.text and 'aria-invalid="true"' in page.text


async def test_the_keyword_and_activity_indexes_serve_the_search(db: asyncpg.Connection) -> None:
    owner = await organisation(db)
    await db.execute(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, status) SELECT $1, 'Mission numéro ' || n, 'Aider les voisins du quartier ' || n || '.',"
        " 'solidarite-insertion', CASE WHEN n % 500 = 0 THEN '{maraude}'::varchar[] ELSE '{distribution}' END,"
        " false, 5, false, 'published' FROM generate_series(1, 3000) AS n", owner,
    )
    await db.execute("UPDATE missions SET title = 'Atelier de parachutisme' WHERE id = (SELECT min(id) FROM missions)")
    await db.execute("ANALYZE missions")
    indexes = {row["indexname"] for row in await db.fetch("SELECT indexname FROM pg_indexes WHERE tablename = "
                                                           "'missions'")}
    assert {"ix_missions_search_vector", "ix_missions_activities"} <= indexes
    # The search's own forms of the conditions (a prefix query, a bound parameter) are ones the indexes serve.
    matching = ("SELECT id FROM missions WHERE search_vector @@ CAST(regexp_replace(CAST("
                "websearch_to_tsquery('fr_unaccent'::regconfig, $1) AS TEXT), $2, $3, 'g') AS TSQUERY)")
    pattern = (search.LEXEME, r"'\1':*")
    async with db.transaction():
        await db.execute("SET LOCAL enable_seqscan = off")  # 3,000 narrow rows: a scan costs about the same
        keywords = "\n".join(row[0] for row in await db.fetch(
            "EXPLAIN " + matching, "parachutisme", *pattern))
        assert "ix_missions_search_vector" in keywords, keywords
        activity = "\n".join(row[0] for row in await db.fetch(
            "EXPLAIN SELECT id FROM missions WHERE activities @> CAST(ARRAY[$1] AS VARCHAR(80)[])", "maraude"))
        assert "ix_missions_activities" in activity, activity
    assert len(await db.fetch(matching, "parachute", *pattern)) == 1


# Activities -------------------------------------------------------------------------------------------------------


async def test_the_activity_filter_and_an_unknown_activity(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    owner = await organisation(db)
    round_ = await published(db, owner, "Maraude du soir", activities=("maraude", "distribution"))
    await published(db, owner, "Collecte en magasin", activities=("collecte-produits",))
    assert await found(client, activity="maraude") == [round_]
    assert await found(client, activity="distribution", keywords="soir") == [round_]
    assert await found(client, activity="traduction") == []
    assert "activité" in (await refused(client, activity="maraudes"))["activity"]
    page = await client.get("/missions", params={"activity": "maraude"})
    assert page.status_code == 200 and '<option value="maraude" selected>' in page.text
    assert "Maraude du soir" in page.text and "Collecte en magasin" not in page.text


async def test_the_mission_form_offers_the_taxonomy_and_refuses_anything_else(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "manager@example.org")
    organisation_id, _ = await register(client)
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    form = (await client.get(path)).text
    assert form.count('type="checkbox" id="activity-') == len(ACTIVITIES)
    assert 'name="activities" value="soins-animaux"' in form and "Soins aux animaux" in form

    response = await post_form(client, path, mission(activities=["maraude", "cuisine moléculaire"]), path)
    assert response.status_code == 422
    assert "Choisissez les activités dans la liste proposée." in response.text
    assert 'id="activity-maraude" name="activities" value="maraude" checked' in response.text  # kept for the fix

    mission_id, location = await create(client, organisation_id, activities=["maraude", "distribution", "maraude"])
    assert await db.fetchval("SELECT activities FROM missions WHERE id = $1", mission_id) == ["maraude", "distribution"]
    assert "Activités : Maraude, Distribution" in (await client.get(location)).text
    edit = (await client.get(f"/missions/{mission_id}/modifier")).text
    assert 'value="maraude" checked' in edit and 'value="traduction" checked' not in edit


def test_demo_missions_and_template_use_taxonomy_slugs() -> None:
    used = {slug for slugs in demo.MISSION_ACTIVITIES.values() for slug in slugs} | set(demo.TEMPLATE[3])
    assert used <= ACTIVITIES.keys()
    assert set(demo.MISSION_ACTIVITIES) <= {title for _, title, *_ in demo.MISSIONS} | {demo.AWAITING_MISSION[1]}


# Filters ----------------------------------------------------------------------------------------------------------


async def test_minors_remote_and_date_filters(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    owner = await organisation(db)
    later = TODAY + timedelta(days=40)
    minors = await published(db, owner, "Ouverte aux mineurs", minors=True, start=TODAY,
                             end=TODAY + timedelta(days=10))
    remote = await published(db, owner, "Appels à distance", remote=True, start=later, end=later)
    adults = await published(db, owner, "Réservée aux majeurs", start=None, end=None)
    assert await found(client, open_to_minors="1") == [minors]
    assert await found(client, remote="1") == [remote]
    assert set(await found(client, remote="0")) == {minors, adults}
    assert set(await found(client, date_from=(TODAY + timedelta(days=20)).isoformat())) == {remote, adults}
    assert set(await found(client, date_to=(TODAY + timedelta(days=5)).isoformat())) == {minors, adults}


async def test_the_search_page_offers_every_filter_with_a_label_and_keeps_the_values(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await organisation(db)
    await published(db, owner, "Réparation de vélos", minors=True, start=TODAY)
    params = {"keywords": "vélo", "activity": "travaux-manuels", "domain": "solidarite-insertion",
              "postal_code": "69001", "radius_km": "50", "department": "69", "date_from": TODAY.isoformat(),
              "date_to": (TODAY + timedelta(days=3)).isoformat(), "remote": "0", "open_places": "1",
              "open_to_minors": "1", "sort": "pertinence"}
    page = (await client.get("/missions", params=params)).text
    for field in (*params, "commune_code"):
        assert re.search(rf'<label class="field__label" for="{field}">', page), field
    assert 'value="vélo"' in page and 'value="69001"' in page and 'value="69"' in page
    assert f'value="{TODAY.isoformat()}"' in page
    for field, value in (("activity", "travaux-manuels"), ("domain", "solidarite-insertion"), ("radius_km", "50"),
                         ("remote", "0"), ("sort", "pertinence")):
        select = re.search(rf'<select[^>]*id="{field}"[^>]*>(.*?)</select>', page, re.S)
        assert select and f'<option value="{value}" selected>' in select[1], field
    assert 'id="open_places" name="open_places" value="1" checked' in page
    assert 'id="open_to_minors" name="open_to_minors" value="1" checked' in page
    assert "Aucune mission ne correspond" in page  # travaux-manuels: none


# Pagination -------------------------------------------------------------------------------------------------------


async def test_page_two_of_45_missions_and_links_that_keep_every_filter(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await organisation(db)
    ids = [await published(db, owner, f"Collecte de denrées {number:02d}", activities=("collecte-produits",))
           for number in range(45)]
    await published(db, owner, "Autre chose")
    filters = {"keywords": "denrées", "activity": "collecte-produits", "domain": "solidarite-insertion",
               "per_page": "15"}
    api = (await client.get("/api/v1/missions", params={**filters, "page": "2"})).json()
    assert api["total"] == 45 and api["pages"] == 3 and api["page"] == 2
    assert [item["id"] for item in api["items"]] == ids[15:30]  # same start date, no priority: by id
    for link, number in ((api["next"], "3"), (api["previous"], None)):
        query = parse_qs(urlsplit(link).query)
        assert urlsplit(link).path == "/api/v1/missions"
        assert query["keywords"] == ["denrées"] and query["activity"] == ["collecte-produits"]
        assert query.get("page") == ([number] if number else None) and query["per_page"] == ["15"]
    last = (await client.get(api["next"])).json()
    assert [item["id"] for item in last["items"]] == ids[30:] and last["next"] is None

    response = await client.get("/missions", params={**filters, "page": "2"})
    assert response.status_code == 200
    page = response.text
    shown = [int(number) for number in re.findall(r'data-mission="(\d+)"', page)]
    assert shown == ids[15:30]
    links = nav_links(page)
    assert len(links) == 5  # previous, 1, 2, 3, next
    for link in links:
        query = parse_qs(urlsplit(link).query)
        assert urlsplit(link).path == "/missions"
        assert query["keywords"] == ["denrées"] and query["activity"] == ["collecte-produits"], link
        assert query["domain"] == ["solidarite-insertion"] and query["per_page"] == ["15"], link
    assert re.search(r'href="[^"]*page=2[^"]*" aria-current="page"', page)
    assert 'rel="prev"' in page and 'rel="next"' in page
    first = [link for link in links if "page" not in parse_qs(urlsplit(link).query)]
    assert first, "page 1 is linked without a page number"

    many = (await client.get("/missions", params={**filters, "per_page": "1", "page": "20"})).text
    assert "…" in many
    numbers = [parse_qs(urlsplit(link).query).get("page", ["1"])[0] for link in nav_links(many)]
    assert numbers == ["19", "1", "18", "19", "20", "21", "22", "45", "21"]

    beyond = await client.get("/missions", params={**filters, "page": "9"})
    assert beyond.status_code == 200 and "data-mission=" not in beyond.text
    assert "Revenir à la dernière page" in beyond.text
    back = re.search(r'<a href="([^"]+)">Revenir à la dernière page', beyond.text)
    assert back and parse_qs(urlsplit(html.unescape(back[1])).query)["page"] == ["3"]
    assert (await client.get("/api/v1/missions", params={**filters, "page": "9"})).json()["items"] == []
    assert "page" in await refused(client, page="101")
