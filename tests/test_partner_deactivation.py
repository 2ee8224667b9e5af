"""Deactivating a partner takes its missions off our pages, our search and other partners' diffusion at once, and
reactivating it brings them back (only those the deactivation took off)."""

from __future__ import annotations

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.partner_fixtures import create_key, create_partner
from tests.test_organisations import post_form, sign_in
from tests.test_partners_admin import PAGE, partner_form
from tests.test_partners_v2 import body


async def search_ids(client: AsyncTestClient[Litestar]) -> list[int]:
    response = await client.get("/api/v1/missions", params={"postal_code": "69002", "radius_km": "10"})
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_a_deactivated_partners_missions_leave_the_search_and_come_back_on_reactivation(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    publisher = await create_partner(db, "Bénévoles en ligne")
    reader = await create_partner(db, "Lecteur", diffuses_partner_missions=True)
    publisher_key, reader_key = await create_key(db, publisher), await create_key(db, reader)
    created = await client.post("/v2/mission", json=body(), headers={"x-api-key": publisher_key})
    assert created.status_code == 201, created.text
    mission_id = int(created.json()["data"]["id"])
    assert mission_id in await search_ids(client)
    assert (await client.get(f"/v0/mission/{mission_id}", headers={"x-api-key": reader_key})).status_code == 200

    await sign_in(client, redis, db, "admin.partenaires@example.org", admin=True)
    form = partner_form(nom="Bénévoles en ligne", flux_url="", flux_identifiant="", flux_mot_de_passe="")
    form.pop("active")
    off = await post_form(client, f"{PAGE}/{publisher}", form, f"{PAGE}/{publisher}")
    assert off.status_code == 303, off.text
    assert await db.fetchval("SELECT active FROM partners WHERE id = $1", publisher) is False
    assert mission_id not in await search_ids(client)
    assert (await client.get(f"/v0/mission/{mission_id}", headers={"x-api-key": reader_key})).status_code == 404
    assert (await client.get(f"/r/{mission_id}/{publisher}", follow_redirects=False)).status_code == 404

    on = await post_form(client, f"{PAGE}/{publisher}", {**form, "active": "1"}, f"{PAGE}/{publisher}")
    assert on.status_code == 303, on.text
    assert mission_id in await search_ids(client)
