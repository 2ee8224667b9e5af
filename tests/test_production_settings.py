"""The production files under ops/ hold what they promise: the systemd units pass `systemd-analyze verify`, start the
Procfile's processes unprivileged and stop the workers warm; the environment file example is a valid configuration;
the Redis configuration is accepted by the real server and is what the write queues need (AOF that survives a
SIGKILL, no eviction); the PostgreSQL snippet is accepted line by line by the real server, its connection budget
covers the pools the code opens, and the web's role gets its timeouts and no DDL."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from app.db.base import make_engine
from app.redis_memory import read_memory, unsafe
from app.settings import load_settings
from ops.postgres import BIN_DIR
from ops.processes import scratch_folder, wait_until
from ops.services import LocalPostgres, free_port
from ops.valkey import SERVER as VALKEY_SERVER
from queues.runtime import job_context
from tests.conftest import ROOT

SYSTEMD = ROOT / "ops" / "systemd"
PRODUCTION = ROOT / "ops" / "production"
PROCESS_UNITS = {
    "renfort-web.service": "web", "renfort-worker@.service": "worker", "renfort-release.service": "release"
}
ALL_UNITS = [*PROCESS_UNITS, "renfort.target", "renfort-backup.service", "renfort-backup.timer"]


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section → key → every value it is given (systemd allows a key several times)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (SYSTEMD / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, value = line.split("=", 1)
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def seconds(value: str) -> float:
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, suffix in re.findall(r"(\d+)\s*([a-z]*)", value):
        total += int(number) * units[suffix]
    return total


def longest_job_timeout() -> int:
    """The largest job_timeout any job is enqueued with (queues/*.py)."""
    found = [int(value) for path in (ROOT / "queues").glob("*.py")
             for value in re.findall(r"job_timeout\"?\s*[=:]\s*(\d+)", path.read_text())]
    assert found, "no job_timeout found in queues/: this test reads them to size the workers' stop timeout"
    return max(found)


def procfile_kinds() -> set[str]:
    return {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if ":" in line}


def test_systemd_analyze_verifies_every_unit(tmp_path: Path) -> None:
    # A root of its own: systemd's stock units, ours, and the commands they run (verify checks they are executable).
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name in ALL_UNITS:
        shutil.copy(SYSTEMD / name, root / "etc/systemd/system" / name)
    (root / "opt/renfort/ops").mkdir(parents=True)
    for script in ("start.sh", "backup.sh"):
        shutil.copy(ROOT / "ops" / script, root / "opt/renfort/ops" / script)
    (root / "usr/bin").mkdir()
    shutil.copy("/usr/bin/find", root / "usr/bin/find")  # the backup's retention step
    names = [name.replace("@.service", "@1.service") for name in ALL_UNITS]
    result = subprocess.run(["systemd-analyze", "verify", f"--root={root}", *names],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""  # no warning either: an unknown or misplaced key is reported here


def test_units_start_the_procfile_processes_unprivileged_and_hardened() -> None:
    start = ROOT / "ops" / "start.sh"
    assert start.exists() and os.access(start, os.X_OK)
    for name, kind in PROCESS_UNITS.items():
        service = unit(name)["Service"]
        assert kind in procfile_kinds()
        assert service["ExecStart"] == [f"/opt/renfort/ops/start.sh {kind}"], name
        assert service["User"] == ["renfort"] and service["Group"] == ["renfort"], name
        assert "/etc/renfort/renfort.env" in service["EnvironmentFile"], name
        assert any("RENFORT_VENV=/opt/renfort/venv" in line for line in service["Environment"]), name
        for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("CapabilityBoundingSet", "")]:
            assert service[key] == [value], (name, key)


def test_workers_stop_warm_and_wait_for_the_longest_job() -> None:
    worker = unit("renfort-worker@.service")["Service"]
    # Only the main process gets SIGTERM: RQ's work horse keeps the default SIGTERM action and would die mid-job.
    assert worker["KillMode"] == ["mixed"]
    assert worker["KillSignal"] == ["SIGTERM"]
    assert seconds(worker["TimeoutStopSec"][0]) >= longest_job_timeout()
    assert worker["Restart"] == ["always"]
    web = unit("renfort-web.service")["Service"]
    assert web["KillMode"] == ["mixed"] and web["Restart"] == ["always"]


def test_a_deploy_runs_release_first_but_nothing_needs_it_to_start() -> None:
    assert unit("renfort-release.service")["Service"]["Type"] == ["oneshot"]
    for name in ("renfort-web.service", "renfort-worker@.service"):
        section = unit(name)["Unit"]
        assert any("renfort-release.service" in line.split() for line in section["After"]), name
    for name in ALL_UNITS:
        sections = unit(name)
        for key in ("Requires", "Requisite", "BindsTo", "Wants", "Upholds"):
            for line in sections.get("Unit", {}).get(key, []):
                assert "renfort-release.service" not in line.split(), (name, key)


def test_the_environment_file_example_is_a_valid_configuration_behind_one_proxy() -> None:
    env = {}
    for line in (SYSTEMD / "renfort.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value
    settings = load_settings(env)
    assert settings.trusted_proxy_hops == 1
    assert env["WEB_HOST"] == "127.0.0.1"  # reachable only through nginx, which writes X-Forwarded-For
    assert settings.base_url.startswith("https://")


@contextlib.contextmanager
def valkey_with(conf: Path, folder: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with open(folder / "valkey.log", "ab") as log:
        server = subprocess.Popen([str(VALKEY_SERVER), str(conf), "--port", str(port), "--bind", "127.0.0.1"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def answers(client: Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


async def test_the_redis_configuration_runs_on_valkey_and_keeps_queued_writes_through_a_kill() -> None:
    text = (PRODUCTION / "redis.conf").read_text()
    password = re.search(r"^requirepass (\S+)$", text, re.MULTILINE)
    assert password is not None
    folder = scratch_folder("renfort-redis-conf-")
    try:
        assert "\ndir /var/lib/valkey\n" in text  # the server chdirs there while reading the file: moved for the test
        conf = folder / "redis.conf"
        conf.write_text(text.replace("\ndir /var/lib/valkey\n", f"\ndir {folder}\n"))
        port = free_port()
        client = Redis(port=port, password=password.group(1))
        with valkey_with(conf, folder, port):
            assert wait_until(lambda: answers(client), timeout=15), (folder / "valkey.log").read_text()
            async_client = AsyncRedis(port=port, password=password.group(1))
            try:
                assert unsafe(await read_memory(async_client)) == []  # the web's own start-up check
            finally:
                await async_client.aclose()
            settings = {name: client.config_get(name)[name] for name in (
                "appendonly", "appendfsync", "maxmemory-policy", "aof-use-rdb-preamble", "save", "timeout")}
            assert settings == {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
                                "aof-use-rdb-preamble": "yes", "save": "", "timeout": "0"}
            assert int(client.config_get("maxmemory")["maxmemory"]) > 0
            client.rpush("renfort:signups:pending", b"accepted-before-the-kill")
            time.sleep(1.5)  # everysec: the write has been fsynced within a second
        # SIGKILL above, as a crash would: the AOF brings the write back.
        with valkey_with(conf, folder, port):
            assert wait_until(lambda: answers(client), timeout=15), (folder / "valkey.log").read_text()
            assert client.lrange("renfort:signups:pending", 0, -1) == [b"accepted-before-the-kill"]
        client.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def configured(name: str) -> str:
    found = re.search(rf"^{name}\s*=\s*(\S+)", (PRODUCTION / "postgresql.conf").read_text(), re.MULTILINE)
    assert found is not None, name
    return found.group(1).strip("'")


async def test_max_connections_covers_the_pools_of_two_application_machines() -> None:
    web = make_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    web_connections = web.pool.size() + web.pool._max_overflow
    await web.dispose()
    async with job_context() as context:
        job_connections = context.engine.pool.size() + context.engine.pool._max_overflow
    # Per machine: WEB_CONCURRENCY=2 web processes, 4 workers (a job, plus a drain outside RQ when Redis is full).
    reserved = int(configured("superuser_reserved_connections"))
    needed = 2 * (2 * web_connections + 4 * 2 * job_connections) + 10 + reserved
    assert web_connections == 10 and job_connections == 2  # the figures the snippet's comment computes with
    assert int(configured("max_connections")) >= needed


@pytest.fixture
def production_postgres() -> Iterator[LocalPostgres]:
    folder = scratch_folder("renfort-pg-conf-")
    server = LocalPostgres(folder / "postgres", free_port())
    server.start()
    server.stop()
    snippet = folder / "renfort.conf"
    shutil.copy(PRODUCTION / "postgresql.conf", snippet)
    snippet.chmod(0o644)  # read by the server, which runs as nobody when the tests run as root
    folder.chmod(0o755)
    with open(server.data_dir / "postgresql.conf", "a") as conf:
        # After the snippet, so it wins: this test machine has not the 8 GB the snippet is sized for.
        conf.write(f"include '{snippet}'\nshared_buffers = '128MB'\n")
    server.start()
    server.create_database("renfort")
    yield server
    server.kill()
    shutil.rmtree(folder, ignore_errors=True)


def test_the_postgresql_snippet_is_accepted_line_by_line(production_postgres: LocalPostgres) -> None:
    # Port and addresses are the test server's own, on its command line: a file cannot change those.
    errors = production_postgres.sql(
        "SELECT f.name || ': ' || f.error FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name "
        "WHERE f.error IS NOT NULL AND s.source IS DISTINCT FROM 'command line'"
    )
    assert errors == ""
    snippet_lines = production_postgres.sql(
        "SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%/renfort.conf'"
    )
    assert int(snippet_lines) > 30
    shown = {name: production_postgres.sql(f"SHOW {name}") for name in (
        "max_connections", "synchronous_commit", "idle_in_transaction_session_timeout", "log_parameter_max_length",
        "wal_level", "jit")}
    assert shown == {"max_connections": "100", "synchronous_commit": "on",
                     "idle_in_transaction_session_timeout": "1min", "log_parameter_max_length": "0",
                     "wal_level": "replica", "jit": "off"}


async def test_the_web_role_gets_its_timeouts_and_rows_but_no_ddl(production_postgres: LocalPostgres) -> None:
    production_postgres.sql("CREATE ROLE renfort LOGIN")
    production_postgres.sql('ALTER DATABASE renfort OWNER TO renfort')
    psql = [str(BIN_DIR / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
            "-p", str(production_postgres.port), "-U", "postgres", "-d", "renfort"]
    for _ in range(2):  # run again, as after a restore: it must be idempotent
        result = subprocess.run([*psql, "-f", str(PRODUCTION / "roles.sql")], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, result.stderr
    url = f"postgresql://{{}}@127.0.0.1:{production_postgres.port}/renfort"
    owner = await asyncpg.connect(url.format("renfort"))
    try:
        # Created after roles.sql ran, as a later migration would: the default privileges cover it.
        await owner.execute("CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY, note text)")
    finally:
        await owner.close()
    web = await asyncpg.connect(url.format("renfort_web"))
    try:
        assert await web.fetchval("SHOW statement_timeout") == "10s"
        assert await web.fetchval("SHOW lock_timeout") == "5s"
        await web.execute("INSERT INTO later_table (note) VALUES ('ok')")
        assert await web.fetchval("SELECT count(*) FROM later_table") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await web.execute("DROP TABLE later_table")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await web.execute("CREATE TABLE intruder (id int)")
    finally:
        await web.close()
    worker = await asyncpg.connect(url.format("renfort_worker"))
    try:
        assert await worker.fetchval("SHOW statement_timeout") == "5min"
        await worker.execute("DELETE FROM later_table")
    finally:
        await worker.close()
