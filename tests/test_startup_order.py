"""Whatever order a platform starts the processes in, nothing breaks and nothing is lost.

Scalingo runs `release` (its postdeploy) after the new web and worker processes have started; Heroku runs it before
them; compose waits for it. Real processes, started through ops/start.sh from the Procfile, on a database of their
own that starts empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

from app.geo import dataset
from app.volunteers.signup_queue import KEYS, PENDING, PREFIX
from ops.services import free_port
from queues.schema import DatabaseState, expected_heads, known_revisions, why_not_ready
from tests.conftest import DATABASE_URL, ROOT
from tests.factories import signup
from tests.helpers import eventually, queue_signups, queued_signup

API = "/api/v1/volunteers"


def database_url(name: str) -> str:
    return urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def empty_database(suffix: str) -> AsyncIterator[str]:
    """A database of its own on the test server, with no table at all, dropped afterwards."""
    name = f"{urlsplit(DATABASE_URL).path.lstrip('/')}_{suffix}"
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield database_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Platform:
    """The Procfile's processes, each started by ops/start.sh in its own process group, logging to `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.env = {**env, "PORT": str(self.port), "WEB_HOST": "127.0.0.1", "WEB_CONCURRENCY": "1"}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, kind: str, *args: str, timeout: float = 300) -> None:
        """A one-off process (release, a burst worker): returns once it exited 0."""
        result = subprocess.run([str(ROOT / "ops" / "start.sh"), kind, *args], cwd="/", env=self.env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{kind} exited {result.returncode}:\n{result.stderr[-3000:]}"

    def start(self, kind: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.log(kind), "wb") as log:
            process = subprocess.Popen([str(ROOT / "ops" / "start.sh"), kind, *args], cwd="/", env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def log(self, kind: str) -> Path:
        return self.logs / f"{kind}.log"

    def start_web(self, timeout: float = 60) -> subprocess.Popen[bytes]:
        web = self.start("web")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert web.poll() is None, f"web exited {web.returncode}:\n{self.log('web').read_text()[-3000:]}"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/health", timeout=1).status_code == 200:
                    return web
            time.sleep(0.2)
        raise AssertionError(f"web did not answer /health:\n{self.log('web').read_text()[-3000:]}")

    def stop_all(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@contextlib.contextmanager
def running_platform(env: dict[str, str], logs: Path) -> Iterator[Platform]:
    processes = Platform(env, logs)
    try:
        yield processes
    finally:
        processes.stop_all()


async def test_web_started_before_release_serves_then_takes_signups_once_release_ran(tmp_path: Path) -> None:
    async with empty_database("web_first") as url, httpx.AsyncClient(timeout=10) as http:
        with running_platform({**os.environ, "DATABASE_URL": url}, tmp_path) as processes:
            web = processes.start_web()  # no table, no snapshot: it starts all the same, and never migrates
            base = processes.base_url
            assert (await http.get(base + "/health")).status_code == 200

            refused = await http.post(base + API, json=signup(email="first.deploy@example.org"))
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            assert "mise en service" in refused.json()["error"]
            form = await http.get(base + "/inscription")
            token = re.search(r'name="_csrf_token" value="([^"]+)"', form.text)
            assert form.status_code == 200 and token
            page = await http.post(base + "/inscription", data={**signup(email="form@example.org"),
                                                                "_csrf_token": token[1]})
            assert page.status_code == 503 and "retry-after" in page.headers
            assert "Les inscriptions ouvrent dans quelques instants" in page.text
            home = await http.get(base + "/")  # pages that need tables say the same instead of a 500
            assert home.status_code == 503 and "retry-after" in home.headers
            assert "mise en service" in home.text
            database = await asyncpg.connect(url)
            try:
                assert await database.fetchval("SELECT to_regclass('alembic_version')") is None
            finally:
                await database.close()

            processes.run("release")

            async def accepted() -> bool:
                response = await http.post(base + API, json=signup(email="after.release@example.org"))
                assert response.status_code in (202, 503), response.text
                return response.status_code == 202

            await eventually(accepted, timeout=30, interval=1)  # the same process, which took up the snapshot
            assert web.poll() is None and processes.processes == [web]
            assert (await http.get(base + "/")).status_code == 200

            processes.run("worker", "--burst")
            database = await asyncpg.connect(url)
            try:
                emails = await database.fetch("SELECT email FROM volunteers")
            finally:
                await database.close()
            assert [row["email"] for row in emails] == ["after.release@example.org"]
            assert "Traceback" not in processes.log("web").read_text()


async def test_worker_started_on_an_unmigrated_database_waits_then_drains_everything(
    tmp_path: Path, redis: Redis
) -> None:
    records = [queued_signup(number, prefix="before-migration") for number in range(40)]
    await queue_signups(redis, records)
    async with empty_database("worker_first") as url:
        with running_platform({**os.environ, "DATABASE_URL": url}, tmp_path) as processes:
            worker = processes.start("worker")

            def says_it_waits() -> bool:
                return "does not start yet" in processes.log("worker").read_text()

            await eventually(says_it_waits, timeout=60)
            await asyncio.sleep(3)  # longer than a drain takes: it would have written by now if it were going to
            assert worker.poll() is None, processes.log("worker").read_text()
            assert await redis.llen(PENDING) == len(records)  # nothing claimed, nothing lost
            log = processes.log("worker").read_text()
            assert "no schema yet" in log and "Traceback" not in log

            # The release migrates first, then loads the geography: the worker starts only once both are done,
            # or the sign-ups naming communes not loaded yet would be refused into the dead letters.

            processes.run("release")
            database = await asyncpg.connect(url)
            try:
                async def all_saved() -> bool:
                    return await database.fetchval("SELECT count(*) FROM volunteers") == len(records)

                await eventually(all_saved, timeout=90, interval=0.5)
                assert await database.fetchval("SELECT count(DISTINCT email_normalized) FROM volunteers") == 40
            finally:
                await database.close()
            assert worker.poll() is None  # the same process: it waited instead of crashing and being restarted
    assert await redis.zcard(KEYS.dead_order) == 0
    statuses = await redis.mget([PREFIX + "receipt:" + record.receipt for record in records])
    assert set(statuses) == {b"saved"}


def test_a_worker_waits_for_a_schema_behind_or_ahead_of_its_code_and_for_its_geography() -> None:
    heads, known, geography = expected_heads(), known_revisions(), dataset.version()
    assert len(heads) == 1 and heads <= known
    assert why_not_ready(DatabaseState(heads, geography), heads, known, geography) is None
    (head,) = heads
    older = sorted(known - heads)[0]
    behind = why_not_ready(DatabaseState(frozenset({older}), None), heads, known, geography) or ""
    assert re.search(rf"at revision {older}, this code expects {head}", behind)
    ahead = why_not_ready(DatabaseState(frozenset({"ffffffffffff"}), None), heads, known, geography) or ""
    assert "does not know" in ahead
    assert "no schema yet" in (why_not_ready(DatabaseState(frozenset(), None), heads, known, geography) or "")
    # Migrated, but the release has not loaded the communes the queued sign-ups name yet.
    for loaded in (None, "1.0.0+loader2"):
        waiting = why_not_ready(DatabaseState(heads, loaded), heads, known, geography) or ""
        assert f"geography {geography} is not loaded yet" in waiting


async def test_two_releases_started_together_both_succeed_and_migrate_once(tmp_path: Path) -> None:
    async with empty_database("two_releases") as url:
        env = {**os.environ, "DATABASE_URL": url}
        releases = [await asyncio.create_subprocess_exec(str(ROOT / "ops" / "start.sh"), "release", cwd="/", env=env,
                                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                    for _ in range(2)]
        outputs = await asyncio.wait_for(asyncio.gather(*(process.communicate() for process in releases)), 300)
        assert [process.returncode for process in releases] == [0, 0], [out.decode() for out, _ in outputs]
        database = await asyncpg.connect(url)
        try:
            revisions = {row["version_num"] for row in await database.fetch("SELECT version_num FROM alembic_version")}
            communes = await database.fetchval("SELECT count(*) FROM communes")
        finally:
            await database.close()
        assert revisions == set(expected_heads())
        assert communes > 30_000
