"""A partner's missions on our pages: the search (page and API), the mission page and the emergency page name the
partner and link to its site through the tracked link; they take no part in our applications, capacity or
dispatch."""

from __future__ import annotations

import html

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.keys import MissionKeys
from app.db.base import make_engine, unit_of_work
from surge.dispatch.planning import _targets
from surge.dispatch.runs import mission_choices
from surge.emergencies.page import counters
from tests.conftest import DATABASE_URL
from tests.partner_fixtures import create_partner
from tests.test_applications import add_volunteers
from tests.test_coordination import add_emergency
from tests.test_organisations import csrf_token, sign_in
from tests.test_partner_tracking import mission, organisation, partner_mission


def card_of(page: str, mission_id: int) -> str:
    start = page.index(f'data-mission="{mission_id}"')
    return page[start:page.index("</li>", start)]


async def test_search_cards_name_the_partner_and_link_to_its_site(client: AsyncTestClient, db: asyncpg.Connection
                                                                  ) -> None:
    partner = await create_partner(db, "Bénévoles & Cie")
    ours = await mission(db, await organisation(db), title="Collecte de jouets")
    theirs = await partner_mission(db, partner, title="Maraude du soir")
    page = await client.get("/missions", params={"code_postal": "69001"})
    assert page.status_code == 200
    card = html.unescape(card_of(page.text, theirs))
    assert "Mission proposée par Bénévoles & Cie" in card
    assert f'href="/r/{theirs}/{partner}"' in card and "Candidater sur Bénévoles & Cie" in card
    assert "Candidature sur le site du partenaire" in card and "place(s) restante(s)" not in card
    our_card = card_of(page.text, ours)
    assert "/r/" not in our_card and "place(s) restante(s)" in our_card

    found = (await client.get("/api/v1/missions", params={"code_postal": "69001"})).json()
    by_id = {item["id"]: item for item in found["items"]}
    assert (by_id[theirs]["partner_id"], by_id[theirs]["partner_name"]) == (partner, "Bénévoles & Cie")
    assert by_id[ours]["partner_id"] is None


async def test_the_mission_page_of_a_partner_mission_links_out_instead_of_our_form(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db, "Plateforme Solidaire")
    theirs = await partner_mission(db, partner, title="Maraude du soir")
    (_, email), = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    page = await client.get(f"/missions/{theirs}-maraude-du-soir")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Mission proposée par Plateforme Solidaire" in text
    assert f'href="/r/{theirs}/{partner}"' in text and "Candidater sur Plateforme Solidaire" in text
    assert f'action="/missions/{theirs}/candidater"' not in text
    assert "Candidature sur le site du partenaire" in text and "place(s) restante(s)" not in text


async def test_our_apply_flow_refuses_a_partner_mission_with_its_link_and_writes_nothing(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db, "Plateforme Solidaire")
    theirs = await partner_mission(db, partner, title="Maraude du soir")
    (_, email), = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    token = csrf_token((await client.get("/mon-espace")).text)
    for _ in range(2):  # the first seeds Redis, the second is answered by Redis alone
        response = await client.post(f"/missions/{theirs}/candidater", data={"message": "", "_csrf_token": token},
                                     follow_redirects=False)
        assert response.status_code == 409
        text = html.unescape(response.text)
        assert "la candidature se fait sur son site" in text
        assert f'href="/r/{theirs}/{partner}"' in text and "Candidater sur Plateforme Solidaire" in text
    assert await db.fetchval("SELECT count(*) FROM applications") == 0
    assert await redis.hlen(MissionKeys(theirs).status) == 0  # Redis holds no application for the drain either
    assert await redis.hget(MissionKeys(theirs).meta, "open") == b"0"  # closed to our flow, whatever its status


async def test_dispatch_and_the_emergency_counters_leave_partner_missions_out(db: asyncpg.Connection) -> None:
    await add_emergency(db, "crues-rhone", ["69"])
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db), title="Nettoyage", emergency_slug="crues-rhone", places=4)
    theirs = await partner_mission(db, partner, title="Repas chauds", emergency_slug="crues-rhone", places=50)
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            assert [choice.id for choice in await mission_choices(session, "crues-rhone")] == [ours]
            assert [target.id for target in await _targets(session, "crues-rhone", [ours, theirs])] == [ours]
            figures = await counters(session, "crues-rhone")
    finally:
        await engine.dispose()
    assert (figures.missions, figures.places_open) == (1, 4)


async def test_the_emergency_page_lists_partner_missions_with_the_partner_and_its_link(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    await add_emergency(db, "crues-rhone", ["69"])
    partner = await create_partner(db, "Secours Connect")
    ours = await mission(db, await organisation(db), title="Nettoyage", emergency_slug="crues-rhone")
    theirs = await partner_mission(db, partner, title="Repas chauds", emergency_slug="crues-rhone")
    page = await client.get("/urgence/crues-rhone")
    assert page.status_code == 200, page.text
    card = html.unescape(card_of(page.text, theirs))
    assert "Mission proposée par Secours Connect" in card
    assert f'href="/r/{theirs}/{partner}"' in card and "Candidater sur Secours Connect" in card
    assert "place(s) sur" not in card
    assert "place(s) sur" in card_of(page.text, ours)
