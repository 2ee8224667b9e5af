"""The partners' dashboard: per partner and per month, the missions shared (its diffusion rules) and received, the
clicks and the applications both ways; admins only."""

from __future__ import annotations

import re
from datetime import date

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.partners.dashboard import months_until
from app.volunteers import age
from tests.partner_fixtures import create_partner
from tests.test_organisations import sign_in
from tests.test_partner_tracking import mission, organisation, partner_mission

PATH = "/administration/partenaires/tableau-de-bord"


def cells(page: str, partner_id: int, month: str) -> dict[str, int]:
    table = page[page.index(f'data-partner="{partner_id}"'):]
    table = table[:table.index("</table>")]
    row = re.search(rf'<tr data-month="{month}">(.*?)</tr>', table, re.S)
    assert row, month
    return {measure: int(value.replace("\u202f", "").replace(" ", ""))
            for measure, value in re.findall(r'data-measure="([a-z_]+)">([^<]*)</td>', row[1])}


async def click(db: asyncpg.Connection, mission_id: int, partner_id: int, direction: str, token: str,
                months_ago: int = 0, applied: bool = False) -> None:
    click_id = await db.fetchval(
        "INSERT INTO partner_clicks (token, mission_id, partner_id, direction, created_at)"
        " VALUES ($1, $2, $3, $4, now() - make_interval(months => $5)) RETURNING id",
        token, mission_id, partner_id, direction, months_ago)
    if applied:
        await db.execute(
            "INSERT INTO partner_applications (click_id, partner_id, mission_id, direction, status, created_at)"
            " VALUES ($1, $2, $3, $4, 'PENDING', now() - make_interval(months => $5))",
            click_id, partner_id, mission_id, direction, months_ago)


async def test_the_dashboard_counts_each_partners_exchanges_by_month(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    lyon = await create_partner(db, "Plateforme Lyonnaise", diffusion_departments=["69"])
    everyone = await create_partner(db, "Plateforme Nationale")
    structure = await organisation(db)
    first = await mission(db, structure, title="Distribution")
    await mission(db, structure, title="Collecte")
    paris = await mission(db, structure, title="Maraude parisienne", commune_code="75056")
    older = await mission(db, structure, title="Ancienne")
    await db.execute("UPDATE missions SET created_at = now() - interval '2 months' WHERE id = $1", older)
    await mission(db, structure, title="Brouillon", status="draft")
    received = await partner_mission(db, lyon, title="Maraude du soir")
    deleted = await partner_mission(db, lyon, title="Supprimée")
    await db.execute("UPDATE missions SET deleted_at = now(), status = 'cancelled' WHERE id = $1", deleted)
    await click(db, first, lyon, "inbound", "a" * 32, applied=True)
    await click(db, paris, lyon, "inbound", "b" * 32)
    await click(db, received, lyon, "outbound", "c" * 32, applied=True)
    await click(db, received, lyon, "outbound", "d" * 32, months_ago=13, applied=True)  # out of the 12 months
    await click(db, first, everyone, "inbound", "e" * 32)

    await sign_in(client, redis, db, "admin@example.org", admin=True)
    page = await client.get(PATH)
    assert page.status_code == 200, page.text
    months = months_until(age.today())
    this_month, two_ago = months[-1].isoformat()[:7], months[-3].isoformat()[:7]
    assert cells(page.text, lyon, this_month) == {
        "shared": 2, "received": 1, "clicks_inbound": 2, "clicks_outbound": 1, "applications_inbound": 1,
        "applications_outbound": 1}  # shared: our two online missions of the Rhône created this month
    assert cells(page.text, lyon, two_ago)["shared"] == 1
    assert cells(page.text, lyon, "total")["clicks_outbound"] == 1
    # Open rules: every online mission of ours this month, Paris included; not the other partners' missions.
    assert cells(page.text, everyone, this_month)["shared"] == 3
    assert cells(page.text, everyone, this_month)["clicks_inbound"] == 1
    assert "Tableau de bord des partenaires" in page.text and 'scope="row"' in page.text


async def test_the_dashboard_is_for_admins_only(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
                                                ) -> None:
    anonymous = await client.get(PATH, follow_redirects=False)
    assert anonymous.status_code in (302, 303, 401, 403)
    await sign_in(client, redis, db, "curieux@example.org")
    assert (await client.get(PATH, follow_redirects=False)).status_code == 403


def test_the_twelve_months_end_with_this_one() -> None:
    months = months_until(date(2026, 2, 17))
    assert (months[0], months[-1], len(months)) == (date(2025, 3, 1), date(2026, 2, 1), 12)
