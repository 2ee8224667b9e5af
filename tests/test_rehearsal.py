"""A rehearsal against a real platform (web under granian, a worker, a mail sink), run by its own command: a run
within its SLOs passes with every accepted write in PostgreSQL exactly once, a run missing one fails, rehearsal
addresses get no e-mail, and once it is over nothing of it is left, while the real data stays as it was."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.keys import MissionKeys
from app.rehearsal import DOMAIN
from app.volunteers.signup_queue import KEYS, SignupKeys
from loadtests.rehearse import SCENARIOS, load_scenario
from ops.services import MailSink, free_port
from queues.mail_keys import DROPPED
from tests.conftest import ROOT, TEST_ENV, run_worker
from tests.factories import signup
from tests.helpers import eventually, kill_worker, start_worker
from tests.servers import WebServer

SCENARIO = """
description = "soirée de test"
duration = "8s"
spawn_rate = 50
processes = 0
emergency = "covid-19"

[seed]
missions = 2
places = 2

[users.EmergencyReader]
count = 2
rate = 10

[users.RehearsalCitizen]
count = 2
rate = 5

[users.RehearsalApplicant]
count = 4
wait = [0.1, 0.3]

[[slo]]
name = "signups_per_s"
request = "POST /api/v1/volunteers"
metric = "rps"
target = {signups}

[[slo]]
name = "emergency_views_per_s"
request = "GET /urgence/[slug]"
metric = "rps"
target = 2

[[slo]]
name = "emergency_p99_ms"
request = "GET /urgence/[slug]"
metric = "p99_ms"
target = 30000

[[slo]]
name = "error_rate"
request = "*"
metric = "error_rate"
target = 0.05
"""


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    with MailSink(tmp_path_factory.mktemp("rehearsal-mail"), port=free_port()) as running:
        yield running


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, sink: MailSink, database: str) -> Iterator[WebServer]:
    log = tmp_path_factory.mktemp("rehearsal-web") / "web.log"
    server = WebServer(log, {"SMTP_URL": sink.url, "SIGNUP_IP_LIMIT_PER_MINUTE": "0"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def worker(sink: MailSink) -> Iterator[None]:
    process = start_worker({"SMTP_URL": sink.url})
    try:
        yield
    finally:
        kill_worker(process)


async def live_emergency(db: asyncpg.Connection) -> None:
    await db.execute(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status, live_at)"
        " VALUES ('covid-19', 'Covid-19', 'Une épidémie.', 'Des bras.', '{}', '{solidarite-insertion}', 'live', now())"
        " ON CONFLICT (slug) DO UPDATE SET status = 'live'")


async def real_data(db: asyncpg.Connection, platform: WebServer) -> dict[str, Any]:
    """A person signed up through the API (drained by the worker), an organisation, its mission, an application."""
    person = signup(email="vraie.personne@example.org")
    answer = httpx.post(platform.base_url + "/api/v1/volunteers", json=person, timeout=10)
    assert answer.status_code == 202
    await eventually(lambda: db.fetchval("SELECT count(*) FROM volunteers WHERE email = $1", person["email"]))
    organisation = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Banque alimentaire', 'association', '1 rue', '69003', '69123', 'Aide', 'validated') RETURNING id")
    mission = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, priority, status) VALUES ($1, 'Tri', 'Une vraie mission de tri.', 'solidarite-insertion',"
        " '{}', false, current_date, 3, false, false, 'published') RETURNING id", organisation)
    await db.execute(
        "INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
        " SELECT $1, id, 'pending', 1, now() FROM volunteers WHERE email = $2", mission, person["email"])
    return {"email": person["email"], "receipt": answer.json()["receipt"], "organisation": organisation,
            "mission": mission}


async def snapshot(db: asyncpg.Connection) -> list[Any]:
    return [list(await db.fetch(query)) for query in (
        "SELECT id, email, receipt FROM volunteers ORDER BY id",
        "SELECT id, name, status FROM organisations ORDER BY id",
        "SELECT id, title, places, status FROM missions ORDER BY id",
        "SELECT mission_id, volunteer_id, status, version FROM applications ORDER BY id",
        "SELECT slug, status FROM emergencies ORDER BY slug",
    )]


def rehearse(platform: WebServer, scenario: Path, runs: Path, *, through_database: bool) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "OPS_TOKEN": TEST_ENV["OPS_TOKEN"]}
    if not through_database:
        env.pop("DATABASE_URL")  # then the integrity is asked of /ops/rehearsal/integrity
    command = [sys.executable, "-m", "loadtests.rehearse", str(scenario), "--host", platform.base_url,
               "--runs", str(runs), "--drain-timeout", "120"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.stdout.strip(), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def outputs(result: dict[str, Any], runs: Path) -> dict[str, Any]:
    """What the run left in its folder: the report, the stats, the history's lines and the records' lines."""
    folder = Path(result["folder"])
    return {"report": Path(result["report"]).is_file(), "stats": (folder / "stats_stats.csv").is_file(),
            "history": (runs / "history.csv").read_text().splitlines(),
            "records": [line.split() for path in (folder / "records").glob("*.txt")
                        for line in path.read_text().splitlines()]}


async def everything_in_redis(redis: Redis) -> str:
    """Every key and value Redis holds, as text, to look for a trace of rehearsal traffic."""
    found = []
    async for raw in redis.scan_iter(count=1000):
        key = raw.decode()
        kind = (await redis.type(key)).decode()
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1)
        else:
            value = kind
        found.append(f"{key} {value!r}")
    return "\n".join(found)


async def test_a_rehearsal_within_its_slos_passes_with_every_write_saved_once_and_leaves_nothing_behind(
    platform: WebServer, worker: None, sink: MailSink, db: asyncpg.Connection, redis: Redis, tmp_path: Path
) -> None:
    await live_emergency(db)
    real = await real_data(db, platform)
    before = await snapshot(db)
    scenario = tmp_path / "soiree.toml"
    scenario.write_text(SCENARIO.replace("{signups}", "1"))

    code, result = rehearse(platform, scenario, tmp_path / "runs", through_database=False)

    assert code == 0 and result["passed"] is True, result
    assert all(slo["met"] for slo in result["slos"])
    integrity = result["integrity"]
    assert integrity["ok"] and integrity["through"] == "ops endpoint" and integrity["drained"]
    assert integrity["signups_accepted"] > 0 and integrity["signups_saved"] == integrity["signups_accepted"]
    assert integrity["applications_accepted"] > 0 and integrity["missions_checked"] == 2
    assert integrity["oversold"] == 0 and integrity["signups_doubled"] == integrity["applications_doubled"] == 0
    written = outputs(result, tmp_path / "runs")
    assert written["report"] and written["stats"]
    history = written["history"]
    assert len(history) == 2 and "signups_per_s" in history[0] and result["run"] in history[1]

    # Purged: no rehearsal person, organisation, mission, emergency, tombstone or key; the real data as it was.
    assert result["purge"]["ok"] and result["purge"]["remaining"] == 0 and result["purge"]["people"] > 0
    assert await snapshot(db) == before
    assert await db.fetchval("SELECT count(*) FROM users WHERE email_normalized LIKE '%@' || $1", DOMAIN) == 0
    assert await db.fetchval("SELECT count(*) FROM erasures") == 0
    assert await db.fetchval("SELECT count(*) FROM dispatch_runs") == 0
    traces = await everything_in_redis(redis)
    assert DOMAIN not in traces
    records = written["records"]
    receipts = [fields[1] for fields in records if fields[0] == "S"]
    addresses = {fields[2] for fields in records if fields[0] == "A"}
    assert receipts and addresses
    assert not any(KEYS.receipt(receipt) in traces for receipt in receipts)
    marks = SignupKeys(TEST_ENV["SECRET_KEY"])
    assert not any(marks.email_mark(address) in traces for address in addresses)
    assert marks.email_mark(real["email"]) in traces and KEYS.receipt(real["receipt"]) in traces
    assert not any(f"renfort:applications:m{mission}:" in traces for mission in result["missions"])
    assert not any(MissionKeys(mission).status in traces for mission in result["missions"])

    # E-mail: the real person's welcome left, nothing to a rehearsal address.
    recipients = [str(message["To"]) for message in sink.messages()]
    assert real["email"] in recipients
    assert not [address for address in recipients if address.endswith("@" + DOMAIN)]


async def test_a_rehearsal_that_misses_an_slo_fails_and_still_checks_and_purges(
    platform: WebServer, worker: None, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await live_emergency(db)
    scenario = tmp_path / "impossible.toml"
    scenario.write_text(SCENARIO.replace("{signups}", "1000000000"))

    code, result = rehearse(platform, scenario, tmp_path / "runs", through_database=True)

    assert code == 1 and result["passed"] is False
    missed = [slo["name"] for slo in result["slos"] if not slo["met"]]
    assert missed == ["signups_per_s"]
    assert result["integrity"]["ok"] and result["integrity"]["through"] == "database"
    assert result["integrity"]["signups_accepted"] > 0
    assert result["purge"]["ok"]
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email_normalized LIKE '%@' || $1", DOMAIN) == 0
    assert await db.fetchval("SELECT count(*) FROM missions") == 0


async def test_a_rehearsal_sign_up_goes_the_whole_way_but_gets_no_email_while_a_real_one_does(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis, mail_sink: MailSink
) -> None:
    rehearsal, real = f"r1.1@{DOMAIN}", "ana.vraie@example.org"
    for address in (rehearsal, real):
        answer = await client.post("/api/v1/volunteers", json=signup(email=address))
        assert answer.status_code == 202, answer.text  # the reserved domain is a valid address
    run_worker({"SMTP_URL": mail_sink.url})

    saved = {row["email"] for row in await db.fetch("SELECT email FROM volunteers")}
    assert saved == {rehearsal, real}
    recipients = [str(message["To"]) for message in mail_sink.messages()]
    assert recipients == [real]
    assert await redis.hgetall(DROPPED) == {b"welcome:skipped": b"1"}  # counted, without the address
    # Skipped before anything else: no sent mark, claim or budget kept for it, only for the real one.
    assert len([key async for key in redis.scan_iter("renfort:mail:sent:*")]) == 1
    assert len([key async for key in redis.scan_iter("renfort:mail:budget:*")]) == 1


def test_every_shipped_scenario_loads_with_real_user_classes_and_known_metrics() -> None:
    classes = {node.name for node in ast.parse((ROOT / "loadtests" / "rehearsal_users.py").read_text()).body
               if isinstance(node, ast.ClassDef)}
    names = sorted(path.stem for path in SCENARIOS.glob("*.toml"))
    assert names == ["campaign-launch", "covid-evening", "dispatch-day", "last-places-rush", "soak"]
    for name in names:
        scenario = load_scenario(name)
        assert set(scenario.classes) <= classes, name
        assert scenario.slos and scenario.duration_s <= 600, name
    soak, evening = load_scenario("soak"), load_scenario("covid-evening")
    assert soak.duration_s == 300 and soak.users == evening.users and soak.slos == evening.slos
    targets = {slo.name: slo.target for slo in evening.slos}
    assert targets["signups_per_s"] >= 150 and targets["emergency_views_per_s"] >= 1500
    assert targets["signup_p99_ms"] <= 300 and targets["emergency_p99_ms"] <= 300 and targets["error_rate"] <= 0.005
