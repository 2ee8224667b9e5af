"""The rehearsal's ops endpoints: only with the ops token (as Bearer), sign-in links for rehearsal addresses only,
and a purge that gives back the places rehearsal people took and erases them, their sessions and the rehearsal's
own organisations, missions and emergencies, one run or all, and nothing else."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from app.accounts.sessions import SESSIONS_OF
from app.applications.capacity import Places
from app.applications.keys import MissionKeys, volunteer_missions_key
from app.applications.service import apply
from app.db.base import make_engine
from app.main import create_app
from app.rehearsal import DOMAIN
from app.settings import Settings
from app.volunteers.signup_queue import SignupKeys
from tests.conftest import DATABASE_URL, ROOT, TEST_ENV, run_worker
from tests.test_account_deletion import add_volunteer
from tests.test_signin import confirm

BEARER = {"Authorization": f"Bearer {TEST_ENV['OPS_TOKEN']}"}
ENDPOINTS = {"seed": {"run": "essai"}, "links": {"emails": [f"essai.1@{DOMAIN}"]}, "integrity": {}, "purge": {}}


async def ops(client: AsyncTestClient, endpoint: str, body: dict[str, Any], headers: dict[str, str] = BEARER) -> Any:
    return await client.post(f"/ops/rehearsal/{endpoint}", json=body, headers=headers)


async def keys_like(redis: Redis, pattern: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(pattern)]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
async def test_the_endpoints_answer_only_the_ops_token_sent_as_bearer(
    client: AsyncTestClient, db: asyncpg.Connection, settings: Settings, endpoint: str
) -> None:
    body = ENDPOINTS[endpoint]
    assert (await ops(client, endpoint, body, {})).status_code == 401
    assert (await ops(client, endpoint, body, {"Authorization": "Bearer wrong"})).status_code == 401
    # Basic is what a browser replays on its own once typed: these endpoints, which skip CSRF, refuse it.
    basic = {"Authorization": "Basic " + base64.b64encode(b"ops:" + TEST_ENV["OPS_TOKEN"].encode()).decode()}
    assert (await ops(client, endpoint, body, basic)).status_code == 401
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0
    async with AsyncTestClient(app=create_app(replace(settings, ops_token=None))) as tokenless:
        assert (await ops(tokenless, endpoint, body)).status_code == 404  # no token configured: no endpoint
    assert (await ops(client, endpoint, body)).status_code == 200


async def test_sign_in_links_are_for_rehearsal_addresses_only_and_sign_in_for_real(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis
) -> None:
    real, rehearsal = "vraie@example.org", f"essai.1@{DOMAIN}"
    await add_volunteer(db, real)
    for emails in ([real], [rehearsal, real], ["Vraie@Example.org"], [f"x@{DOMAIN}.example.org"]):
        answer = await ops(client, "links", {"emails": emails})
        assert answer.status_code == 422 and "emails" in answer.json()["errors"]
    assert await keys_like(redis, "renfort:signin:*") == []  # nothing minted for anyone

    assert (await ops(client, "links", {"emails": [rehearsal]})).json() == {"links": {rehearsal: None}}  # not saved
    volunteer = await add_volunteer(db, rehearsal)
    token = (await ops(client, "links", {"emails": [rehearsal]})).json()["links"][rehearsal]
    assert token and await keys_like(redis, "renfort:signin:request:*") == []
    signed_in = await confirm(client, token)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/mon-espace"
    assert (await client.get("/mon-espace")).status_code == 200
    user = await db.fetchval("SELECT id FROM users WHERE email_normalized = $1", rehearsal)
    assert user and await redis.scard(SESSIONS_OF + str(user)) == 1 and volunteer


async def real_mission(db: asyncpg.Connection, places: int) -> int:
    organisation = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Banque alimentaire', 'association', '1 rue', '69003', '69123', 'Aide', 'validated') RETURNING id")
    mission: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, priority, status) VALUES ($1, 'Tri', 'Une vraie mission de tri.', 'solidarite-insertion',"
        " '{}', false, current_date, $2, true, false, 'published') RETURNING id", organisation, places)
    return mission


async def test_the_purge_gives_back_places_erases_one_run_then_all_and_leaves_real_data(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis
) -> None:
    places, engine = Places(redis), make_engine(DATABASE_URL)
    mission = await real_mission(db, places=1)
    # A real organisation someone manages keeps its donation URL, whatever it says.
    manager = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ('g@example.org',"
                                " 'g@example.org') RETURNING id")
    managed = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status,"
        " donation_url) VALUES ('Asso', 'association', '1 rue', '69003', '69123', 'Aide', 'validated',"
        " 'https://rehearsal.invalid/runa') RETURNING id")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)", managed, manager)
    seeded = (await ops(client, "seed", {"run": "runa", "missions": 2, "places": 3, "emergency": True})).json()
    assert len(seeded["mission_ids"]) == 2 and seeded["emergency"] == "repetition-runa"

    ghost, other, real = f"runa.1@{DOMAIN}", f"runb.1@{DOMAIN}", "vraie@example.org"
    ghost_id, other_id, real_id = [await add_volunteer(db, email) for email in (ghost, other, real)]
    # The rehearsal's applicant took the real mission's only place before a real person, who waits.
    assert (await apply(places, engine, mission, ghost_id, "", adult_on=None)).outcome == "pending"
    assert (await apply(places, engine, mission, real_id, "", adult_on=None)).outcome == "waitlisted"
    for seeded_mission in seeded["mission_ids"]:
        await apply(places, engine, seeded_mission, ghost_id, "", adult_on=None)
    await engine.dispose()
    run_worker()
    token = (await ops(client, "links", {"emails": [ghost]})).json()["links"][ghost]
    assert (await confirm(client, token)).status_code == 303
    ghost_user = await db.fetchval("SELECT id FROM users WHERE email_normalized = $1", ghost)
    marks = SignupKeys(TEST_ENV["SECRET_KEY"])
    await redis.set(marks.email_mark(ghost), "1")
    idle = f"runa.2@{DOMAIN}"  # signs up, gets a link, never confirms it
    await add_volunteer(db, idle)
    assert (await ops(client, "links", {"emails": [idle]})).json()["links"][idle]
    await redis.set(tokens.link_key("vraie"), msgspec.json.encode(LinkRecord(email=real, email_normalized=real)))

    purged = (await ops(client, "purge", {"run": "runa"})).json()
    assert purged["people"] == 2 and purged["remaining"] == 0 and purged["sessions"] == 1 and purged["links"] == 1
    assert await keys_like(redis, "renfort:signin:link:*") == [tokens.link_key("vraie").encode()]
    assert purged["organisations"] == 1 and purged["missions"] == 2 and purged["emergencies"] == 1
    run_worker()  # the place given back is written, the waiting real person moved up

    statuses = dict(await db.fetch("SELECT volunteer_id, status FROM applications WHERE mission_id = $1", mission))
    assert statuses == {real_id: "pending"}
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email = $1", ghost) == 0
    assert await db.fetchval("SELECT count(*) FROM users WHERE id = $1", ghost_user) == 0
    assert await db.fetchval("SELECT count(*) FROM organisations WHERE id = $1", managed) == 1
    assert await db.fetchval("SELECT count(*) FROM emergencies WHERE slug LIKE 'repetition-%'") == 0
    assert await db.fetchval("SELECT count(*) FROM erasures") == 0  # the queues were empty: no tombstone needed
    assert not await redis.exists(SESSIONS_OF + str(ghost_user), marks.email_mark(ghost),
                                  volunteer_missions_key(ghost_id))
    assert await keys_like(redis, "renfort:sessions:*") == []
    for seeded_mission in seeded["mission_ids"]:
        assert not await redis.exists(MissionKeys(seeded_mission).status, MissionKeys(seeded_mission).meta)
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email = $1", other) == 1  # another run's

    done = subprocess.run([sys.executable, "-m", "app.rehearsal", "purge"], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["people"] == 1
    emails = {row["email"] for row in await db.fetch("SELECT email FROM volunteers")}
    assert emails == {real} and other_id
    assert await db.fetchval("SELECT count(*) FROM missions WHERE id = $1", mission) == 1


@pytest.mark.parametrize(("endpoint", "body"), [
    ("integrity", {"receipts": ["\x00"]}),
    ("integrity", {"missions": [2**63]}),
    ("integrity", {"applications": [[2**70, f"essai.1@{DOMAIN}"]]}),
    ("integrity", {"applications": [[1, "essai\x00@" + DOMAIN]]}),
    ("seed", {"run": "essai", "commune_code": "\x00"}),
    ("seed", {"run": "essai", "commune_code": "6" * 5_000}),
])
async def test_hostile_values_are_refused_before_postgresql_sees_them(
    client: AsyncTestClient, endpoint: str, body: dict[str, Any]
) -> None:
    response = await ops(client, endpoint, body, {**BEARER, "Accept": "application/json"})
    assert response.status_code == 400, response.text


async def test_the_purge_keeps_addresses_that_only_look_like_the_rehearsal_domain(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    look_alikes = [f"essai.1@{DOMAIN}.fr", f"essai.1@x{DOMAIN}", f"{DOMAIN}@ex.org", f"e+{DOMAIN}@ex.org",
                   "essai.1@rehearsal-invalid.fr", "essai.1@rehearsal.invalide", "essai.1@rеhearsal.invalid"]
    assert "\u0435" in look_alikes[-1]  # a Cyrillic "е": another domain
    for email in look_alikes:
        await add_volunteer(db, email)
    ghost = f"essai.1@{DOMAIN}"
    await add_volunteer(db, ghost)
    for run in ("essai", None):
        purged = (await ops(client, "purge", {"run": run})).json()
        assert purged["remaining"] == 0
    kept = {row["email_normalized"] for row in await db.fetch("SELECT email_normalized FROM volunteers")}
    assert kept == set(look_alikes)
