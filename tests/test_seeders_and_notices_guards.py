"""The guards around tools that write made-up data or empty databases, and the notices a URL can name but never
write: the demo and showcase seeders run only where ENVIRONMENT says development or test, the screenshots refuse
any database or Redis db that is not a local scratch one, and the coordinators' notices are fixed texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.conftest import DATABASE_URL, REDIS_URL, ROOT
from tests.test_coordination_flows import PAGE, SLUG, aude_emergency, mission_at
from tests.test_dispatch_runs import emergency as rhone_emergency
from tests.test_emergencies import organisation_in
from tests.test_organisations import post_form, sign_in

CRAFTED = "Votre compte est suspendu : appelez le 08 99 00 00 00"
UNREACHABLE_POSTGRES = "postgresql://postgres@127.0.0.1:9/renfort"  # loopback, nothing listens: never reached


def run_module(module: str, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """`python -m module args` with the test environment, `env` on top (None: the variable is unset)."""
    environment = {**os.environ}
    for name, value in env.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run([sys.executable, "-m", module, *args], env=environment, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.parametrize("module", ["app.demo", "app.showcase"])
@pytest.mark.parametrize("environment", [None, "", "production", "staging"])
async def test_seeders_refuse_unless_environment_says_development_or_test(
    db: asyncpg.Connection, module: str, environment: str | None
) -> None:
    result = run_module(module, ENVIRONMENT=environment)
    assert result.returncode != 0 and "ENVIRONMENT=development" in result.stderr
    assert "jeton" not in result.stdout
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 0


async def test_the_demo_loads_where_environment_says_development(db: asyncpg.Connection) -> None:
    result = run_module("app.demo", ENVIRONMENT="development")
    assert result.returncode == 0, result.stderr[-2000:]
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = 'coordination@demo.renfort.example'") == 1


def test_the_local_run_tells_the_demo_it_is_on_a_development_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import ops.run

    monkeypatch.setattr(ops.run, "process_environment", lambda _root: {"PATH": "/usr/bin"})
    assert ops.run.platform_environment()["ENVIRONMENT"] == "development"
    monkeypatch.setattr(ops.run, "process_environment", lambda _root: {"ENVIRONMENT": "production"})
    assert ops.run.platform_environment()["ENVIRONMENT"] == "production"  # and the demo then refuses


def redis_url(db_number: int, query: str = "") -> str:
    return REDIS_URL.rsplit("/", 1)[0] + f"/{db_number}" + query


SCREENSHOT_REFUSALS = {
    "production": (["--database", "renfort_screenshots"], {"ENVIRONMENT": "production"}, "ENVIRONMENT"),
    "platform database": (["--database", "renfort"], {"DATABASE_URL": UNREACHABLE_POSTGRES}, "scratch"),
    "other database": (["--database", "missions"], {"DATABASE_URL": UNREACHABLE_POSTGRES}, "scratch"),
    "quoted name": (["--database", 'renfort_screenshots"; DROP DATABASE renfort; --'],
                    {"DATABASE_URL": UNREACHABLE_POSTGRES}, "scratch"),
    "remote postgres": (["--database", "renfort_screenshots"],
                        {"DATABASE_URL": "postgresql://postgres@db.invalid:5432/renfort"}, "DATABASE_URL"),
    "remote redis": (["--database", "renfort_screenshots", "--redis-db", "14"],
                     {"DATABASE_URL": UNREACHABLE_POSTGRES, "REDIS_URL": "redis://cache.invalid:6379/0"},
                     "REDIS_URL"),
    "redis db in query": (["--database", "renfort_screenshots", "--redis-db", "14"],
                          {"DATABASE_URL": UNREACHABLE_POSTGRES, "REDIS_URL": redis_url(0, "?db=3")}, "query"),
}


@pytest.mark.parametrize("case", list(SCREENSHOT_REFUSALS))
def test_the_screenshots_refuse_what_they_must_not_empty(case: str) -> None:
    args, env, reason = SCREENSHOT_REFUSALS[case]
    result = run_module("ops.screenshots", "--out", "/nonexistent/screenshots", *args, **env)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "refused:" in result.stderr and reason in result.stderr


async def test_the_screenshots_never_empty_the_platforms_own_database_or_redis_db(
    db: asyncpg.Connection, redis: Redis
) -> None:
    own_database = DATABASE_URL.rsplit("/", 1)[1]
    own_redis_db = int(REDIS_URL.rsplit("/", 1)[1])
    await redis.set("renfort:test:kept", b"1")
    for args in (["--database", own_database, "--redis-db", str(own_redis_db + 1)],
                 ["--database", "renfort_screenshots_guard", "--redis-db", str(own_redis_db)]):
        result = run_module("ops.screenshots", "--out", "/nonexistent/screenshots", *args)
        assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
        assert "platform's own" in result.stderr
    assert await redis.get("renfort:test:kept") == b"1"
    assert await db.fetchval("SELECT count(*) FROM communes") > 0


def notice(page: str) -> str | None:
    """The text of the page's confirmation box (id="info"), or None."""
    if 'id="info"' not in page:
        return None
    return page.split('id="info"', 1)[1].split("<p>", 1)[1].split("</p>", 1)[0]


async def test_the_emergency_page_shows_only_the_notices_its_redirects_name(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await aude_emergency(db)
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    for query in ({"info": CRAFTED}, {"fait": CRAFTED}, {"fait": "inconnu"}, {"fait": ""}):
        page = await client.get(PAGE, params=query)
        assert page.status_code == 200 and notice(page.text) is None and "08 99" not in page.text
    saved = await client.get(PAGE, params={"fait": "enregistree"})
    assert notice(saved.text) == "Urgence enregistrée."

    mission_id = await mission_at(db, await organisation_in(db, "11069"), "Distribution de repas", "11069")
    await db.execute("UPDATE missions SET emergency_slug = $1 WHERE id = $2", SLUG, mission_id)
    detached = await post_form(client, f"{PAGE}/missions/{mission_id}/detacher", {}, PAGE)
    assert detached.status_code == 303 and detached.headers["location"] == f"{PAGE}?fait=detachee"
    assert notice((await client.get(detached.headers["location"])).text) == "Mission détachée."


async def test_the_run_page_shows_only_the_notices_its_redirects_name(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    emergency_id = await rhone_emergency(db)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await db.fetchval(
        "INSERT INTO dispatch_runs (emergency_id, parameters, status) VALUES ($1, $2, 'planned') RETURNING id",
        emergency_id, json.dumps({"pool": "departements", "domains": [], "availability": [], "max_km": 30,
                                  "mission_ids": []}))
    base = f"/coordination/urgences/crue-du-rhone/mobilisation/{run_id}"
    for query in ({"info": CRAFTED}, {"fait": CRAFTED}, {"fait": "inconnu"}):
        page = await client.get(base, params=query)
        assert page.status_code == 200 and notice(page.text) is None and "08 99" not in page.text

    cancelled = await post_form(client, f"{base}/annuler", {}, base)
    assert cancelled.status_code == 303 and cancelled.headers["location"].startswith(f"{base}?fait=annulee")
    assert (notice((await client.get(cancelled.headers["location"])).text) or "").startswith("Mobilisation annulée")
