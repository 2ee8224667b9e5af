"""Tracked links `/r/{mission}/{partner}`: a human click is recorded and handed on as a signed id, bots and a
client over its per-address window are redirected uncounted, the outbound target is only ever the partner's stored
address (its own query kept, ours added), and an inbound visitor who applies through our flow credits the partner
once."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.partners import tracking
from tests.conftest import TEST_ENV, run_worker
from tests.helpers import wait_for_fresh_minute
from tests.partner_fixtures import create_partner
from tests.test_applications import add_volunteers, apply
from tests.test_organisations import sign_in

SECRET = TEST_ENV["SECRET_KEY"]
BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Firefox/128.0"}


async def organisation(db: asyncpg.Connection, name: str = "Banque alimentaire du Rhône",
                       partner_id: int | None = None, status: str = "validated") -> int:
    return int(await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status,"
        " partner_id, partner_key) VALUES ($1, 'association', '1 rue de la République', '69001', '69123',"
        " 'Une structure de test.', $2, $3, $4) RETURNING id",
        name, status, partner_id, None if partner_id is None else f"id:{name}",
    ))


async def mission(db: asyncpg.Connection, organisation_id: int, *, title: str = "Distribution de colis",
                  partner_id: int | None = None, application_url: str | None = None, status: str = "published",
                  emergency_slug: str | None = None, places: int = 5, commune_code: str = "69123") -> int:
    mission_id = int(await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, priority, status, partner_id, client_id, application_url, emergency_slug)"
        " VALUES ($1, $2, 'Une mission de test assez longue pour la recherche.', 'solidarite-insertion', '{}',"
        " false, current_date, $3, true, false, $4, $5, $6, $7, $8) RETURNING id",
        organisation_id, title, places, status, partner_id,
        None if partner_id is None else f"client-{title}", application_url, emergency_slug,
    ))
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, '2 place Bellecour', postal_codes[1], code, latitude, longitude FROM communes WHERE code = $2",
        mission_id, commune_code,
    )
    return mission_id


async def partner_mission(db: asyncpg.Connection, partner_id: int, *, title: str = "Maraude du soir",
                          application_url: str | None = "https://benevoles.example.org/missions/42?ref=renfort",
                          **fields: object) -> int:
    owner = await organisation(db, f"Association partenaire {partner_id} {title}", partner_id=partner_id)
    return await mission(db, owner, title=title, partner_id=partner_id, application_url=application_url,
                         **fields)  # type: ignore[arg-type]


async def clicks(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await db.fetch("SELECT token, mission_id, partner_id, direction FROM partner_clicks ORDER BY id"))


def click_id_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["apiengagement_id"][0]


async def test_a_partner_visitor_is_counted_and_sent_to_our_mission_page_with_a_signed_click_id(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db, "Plateforme Bénévolat")
    ours = await mission(db, await organisation(db))
    response = await client.get(f"/r/{ours}/{partner}", headers=BROWSER, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).path == f"/missions/{ours}-distribution-de-colis"
    assert response.headers["cache-control"] == "no-store"
    (click,) = await clicks(db)
    assert (click["mission_id"], click["partner_id"], click["direction"]) == (ours, partner, "inbound")
    assert tracking.unsign(SECRET, click_id_of(location)) == click["token"]
    assert tracking.unsign(SECRET, click_id_of(location)[:-2] + "xx") is None


async def test_clicks_keep_no_address_and_no_user_agent(db: asyncpg.Connection) -> None:
    columns = {row["column_name"] for row in await db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'partner_clicks'")}
    assert columns == {"id", "token", "mission_id", "partner_id", "direction", "created_at"}


async def test_bots_and_empty_user_agents_are_redirected_but_not_counted(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db))
    for agent in ("Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0", "python-requests/2.32",
                  "Mozilla/5.0 HeadlessChrome/120.0", "facebookexternalhit/1.1", ""):
        response = await client.get(f"/r/{ours}/{partner}", headers={"user-agent": agent}, follow_redirects=False)
        assert response.status_code == 302, agent
        assert urlsplit(response.headers["location"]).path == f"/missions/{ours}-distribution-de-colis"
    assert await clicks(db) == []


async def test_an_image_or_frame_pointing_at_a_tracked_link_is_not_a_click(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db))
    for destination in ("image", "iframe", "script", "empty"):
        response = await client.get(f"/r/{ours}/{partner}", headers={**BROWSER, "sec-fetch-dest": destination},
                                    follow_redirects=False)
        assert response.status_code == 302, destination
    assert await clicks(db) == []
    followed = await client.get(f"/r/{ours}/{partner}", headers={**BROWSER, "sec-fetch-dest": "document"},
                                follow_redirects=False)
    assert followed.status_code == 302 and len(await clicks(db)) == 1


def test_an_ipv6_client_is_one_client_across_its_64_block() -> None:
    assert tracking.client_block("2001:db8:1:2:aaaa::1") == tracking.client_block("2001:db8:1:2:ffff::9")
    assert tracking.client_block("2001:db8:1:2::1") != tracking.client_block("2001:db8:1:3::1")
    assert tracking.client_block("::ffff:203.0.113.7") == tracking.client_block("203.0.113.7") == "203.0.113.7"
    assert tracking.client_block("not an address") == "not an address"


async def test_one_address_cannot_inflate_the_clicks_past_its_window(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db))
    wait_for_fresh_minute(20)
    for _ in range(tracking.CLICKS_PER_ADDRESS_PER_MINUTE + 5):
        response = await client.get(f"/r/{ours}/{partner}", headers=BROWSER, follow_redirects=False)
        assert response.status_code == 302
    assert len(await clicks(db)) == tracking.CLICKS_PER_ADDRESS_PER_MINUTE


async def test_the_outbound_link_keeps_the_partners_query_and_adds_ours(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db, "Bénévoles en ligne")
    theirs = await partner_mission(
        db, partner, application_url="https://benevoles.example.org/missions/42?ref=abc&utm_source=eux#postuler")
    response = await client.get(f"/r/{theirs}/{partner}?url=https://evil.example/", headers=BROWSER,
                                follow_redirects=False)
    assert response.status_code == 302
    target = urlsplit(response.headers["location"])
    assert (target.scheme, target.hostname, target.path, target.fragment) == (
        "https", "benevoles.example.org", "/missions/42", "postuler")
    query = parse_qs(target.query)
    assert query["ref"] == ["abc"]
    assert query["utm_source"] == ["renfort"] and query["utm_medium"] == ["api"]
    assert query["utm_campaign"] == ["renfort"]
    (click,) = await clicks(db)
    assert (click["mission_id"], click["partner_id"], click["direction"]) == (theirs, partner, "outbound")
    assert tracking.unsign(SECRET, query["apiengagement_id"][0]) == click["token"]


async def test_a_stored_address_that_is_not_a_web_page_is_never_a_redirect_target(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    for number, stored in enumerate(("javascript:alert(1)", "data:text/html,<b>x</b>", "//", "")):
        theirs = await partner_mission(db, partner, title=f"Mission {number}", application_url=stored)
        response = await client.get(f"/r/{theirs}/{partner}", headers=BROWSER, follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == f"/missions/{theirs}-mission-{number}", stored
    assert tracking.outbound_url("benevoles.example.org/m/1", "x.y") == (
        "https://benevoles.example.org/m/1?apiengagement_id=x.y&utm_source=renfort&utm_medium=api"
        "&utm_campaign=renfort")


async def test_links_that_credit_nobody_lead_to_our_page_uncounted_and_unknown_ones_are_a_french_404(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    owner = await create_partner(db, "Propriétaire")
    other = await create_partner(db, "Autre plateforme")
    sleeping = await create_partner(db, "Endormie", active=False)
    ours = await mission(db, await organisation(db))
    theirs = await partner_mission(db, owner)
    for path in (f"/r/{theirs}/{other}", f"/r/{ours}/{sleeping}", f"/r/{ours}/999999", f"/r/{ours}/abc"):
        response = await client.get(path, headers=BROWSER, follow_redirects=False)
        assert response.status_code == 302, path
        assert urlsplit(response.headers["location"]).path.startswith("/missions/"), path
    offline = await mission(db, await organisation(db, "Autre structure"), title="Brouillon", status="draft")
    for path in (f"/r/{offline}/{owner}", f"/r/999999/{owner}", "/r/abc/1", f"/r/{'9' * 30}/1",
                 "/r/%00/1", f"/r/{ours}-x/{owner}"):
        response = await client.get(path, headers=BROWSER, follow_redirects=False)
        assert response.status_code == 404, path
        assert "introuvable" in response.text.lower(), path
    assert await clicks(db) == []


async def test_landing_moves_the_click_id_into_a_cookie_and_off_the_address(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db))
    location = (await client.get(f"/r/{ours}/{partner}", headers=BROWSER, follow_redirects=False)).headers["location"]
    landed = await client.get(location, follow_redirects=False)
    assert landed.status_code == 302
    assert landed.headers["location"] == f"/missions/{ours}-distribution-de-colis"
    assert tracking.unsign(SECRET, landed.cookies[tracking.CLICK_COOKIE]) is not None
    page = await client.get(landed.headers["location"])
    assert page.status_code == 200 and "apiengagement_id" not in page.text

    tampered = await client.get(f"/missions/{ours}-distribution-de-colis?apiengagement_id=abc.def",
                                follow_redirects=False)
    assert tampered.status_code == 302 and tracking.CLICK_COOKIE not in tampered.cookies
    hostile = await client.get(f"/missions/{ours}-distribution-de-colis",
                               params={"apiengagement_id": "\x00" + "x" * 5000}, follow_redirects=False)
    assert hostile.status_code in (302, 400)


async def test_a_visitor_sent_by_a_partner_who_applies_credits_that_partner_once(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    ours = await mission(db, await organisation(db))
    (_, email), = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    location = (await client.get(f"/r/{ours}/{partner}", headers=BROWSER, follow_redirects=False)).headers["location"]
    await client.get(location, follow_redirects=False)  # the landing keeps the click in the visitor's cookie
    assert await apply(client, ours) == "pending"
    assert await apply(client, ours) == "exists"
    assert await db.fetchval("SELECT count(*) FROM partner_applications") == 0  # a job credits it, not the request
    run_worker()
    rows = await db.fetch("SELECT partner_id, mission_id, direction, status, click_id FROM partner_applications")
    assert [(row["partner_id"], row["mission_id"], row["direction"], row["status"]) for row in rows] == [
        (partner, ours, "inbound", "PENDING")]
    assert rows[0]["click_id"] == await db.fetchval("SELECT id FROM partner_clicks")


async def test_a_click_on_one_mission_credits_nothing_on_another(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    structure = await organisation(db)
    first, second = await mission(db, structure, title="Premier"), await mission(db, structure, title="Second")
    (_, email), = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    location = (await client.get(f"/r/{first}/{partner}", headers=BROWSER, follow_redirects=False)).headers["location"]
    await client.get(location, follow_redirects=False)
    assert await apply(client, second) == "pending"
    run_worker()
    assert await db.fetchval("SELECT count(*) FROM partner_applications") == 0
