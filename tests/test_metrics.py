"""/metrics on a real platform: granian with two worker processes, as the Procfile runs it. A scrape reaches one
worker; what it reports is the sum over both (and over a worker that died), never what a previous run counted;
routes are templates; the endpoint wants OPS_TOKEN; a Redis or PostgreSQL that is down or slow never fails it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.metrics import process_files
from app.metrics.http import FLUSH_SECONDS
from app.settings import load_settings
from ops.services import LocalRedis, free_port
from tests.conftest import DATABASE_URL, ROOT
from tests.factories import signup

OPS = {"Authorization": "Bearer ops-test-token"}
MISSION_ROUTE = "/missions/{reference}"  # Litestar's template: the parameter, without its type
PERSONAL = ["Zéphyrine", "Quintavalle", "zephyrine.quintavalle@exemple-prive.fr", "0798765431", "1987-03-29"]


class TwoWorkerWeb:
    """`granian … --workers 2 app.asgi:app` in its own process group, its metrics files in `metrics_dir`."""

    def __init__(self, folder: Path, *, respawn: bool = False, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = folder / f"web-{self.port}.log"
        self.metrics_dir = folder / "metrics"
        self.respawn = respawn
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> TwoWorkerWeb:
        command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port",
                   str(self.port), "--workers", "2", *(["--respawn-failed-workers"] if self.respawn else []),
                   "app.asgi:app"]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log_tail()
            if len(self.workers()) == 2:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                        return
            time.sleep(0.1)
        raise AssertionError(f"the web did not start:\n{self.log_tail()}")

    def workers(self) -> list[int]:
        assert self.process is not None
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(pid) for pid in children.split()]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(15)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def log_once_written(self, text: str, timeout: float = 10) -> str:
        """The log once `text` is in it: an access line is written after its answer has left."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log_file.read_text(errors="replace")) and time.monotonic() < deadline:
            time.sleep(0.05)
        return log

    def scrape(self) -> str:
        response = httpx.get(self.url + "/metrics", headers=OPS, timeout=10)
        assert response.status_code == 200, response.text
        return response.text


@contextlib.contextmanager
def running(folder: Path, **options: object) -> Iterator[TwoWorkerWeb]:
    web = TwoWorkerWeb(folder, **options)  # type: ignore[arg-type]
    try:
        yield web.start()
    finally:
        web.stop()


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(key) == value for key, value in labels.items()):
                return found.value
    return None


def get_each_on_its_own_connection(url: str, paths: list[str]) -> list[int]:
    """New connections, several at once, so the kernel hands them to both workers; returns once their counts have
    reached the metric files (each process writes them every FLUSH_SECONDS)."""
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda path: httpx.get(url + path, timeout=10).status_code, paths))
    time.sleep(FLUSH_SECONDS + 0.3)
    return statuses


def spread_over_both_workers(web: TwoWorkerWeb, prefix: str, rounds: int = 20) -> int:
    """404s on `/missions/{prefix}-n`, in rounds of 40 until each worker's file counts some: the kernel may hand a
    whole round to the worker that is quickest to accept. Returns how many were sent."""
    sent = 0
    for _ in range(rounds):
        paths = [f"/missions/{prefix}-{sent + n}" for n in range(40)]
        assert set(get_each_on_its_own_connection(web.url, paths)) == {404}
        sent += len(paths)
        runs = [folder for folder in web.metrics_dir.iterdir() if folder.is_dir()]
        assert len(runs) == 1
        per_process = counts_per_process(runs[0], MISSION_ROUTE)
        if len(per_process) == 2 and all(count > 0 for count in per_process):
            return sent
    raise AssertionError(f"one worker served all {sent} requests: {per_process}")


def counts_per_process(run_folder: Path, route: str) -> list[float]:
    """The route's count in each process's own file, read one file at a time."""
    counts = []
    for file in sorted(run_folder.glob("counter_*.db")):
        alone = run_folder.parent / f"alone-{file.stem}"
        alone.mkdir()
        shutil.copy(file, alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counts.append(sum(s.value for metric in registry.collect() for s in metric.samples
                          if s.name == "renfort_http_requests_total" and s.labels.get("route") == route))
        shutil.rmtree(alone)
    return counts


def test_requests_are_counted_once_across_both_workers_under_their_route_template(tmp_path: Path) -> None:
    with running(tmp_path) as web:
        sent = spread_over_both_workers(web, "reference-inconnue")
        assert set(get_each_on_its_own_connection(web.url, ["/nulle-part/abc", "/nulle-part/def"])) == {404}
        for _ in range(5):  # whichever worker answers the scrape
            text = web.scrape()
            labels = {"route": MISSION_ROUTE, "method": "GET"}
            assert sample(text, "renfort_http_requests_total", **labels, status="404") == sent
            assert sample(text, "renfort_http_request_duration_seconds_count", **labels) == sent
            assert sample(text, "renfort_http_requests_total", route="unmatched", method="GET", status="404") == 2
            assert "reference-inconnue" not in text and "nulle-part" not in text


def test_a_dead_workers_counts_stay_and_a_new_run_starts_from_nothing(tmp_path: Path) -> None:
    with running(tmp_path, respawn=True) as web:
        sent = spread_over_both_workers(web, "autre")
        first_run = next(folder for folder in web.metrics_dir.iterdir() if folder.is_dir())
        killed = web.workers()[0]
        os.kill(killed, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while killed in web.workers() or len(web.workers()) < 2:  # granian starts a new one in its place
            assert time.monotonic() < deadline, web.log_tail()
            time.sleep(0.2)
        web.wait_ready()
        for _ in range(4):
            assert sample(web.scrape(), "renfort_http_requests_total", route=MISSION_ROUTE, status="404") == sent

    with running(tmp_path) as again:
        assert set(get_each_on_its_own_connection(again.url, [f"/missions/autre-{n}" for n in range(3)])) == {404}
        assert sample(again.scrape(), "renfort_http_requests_total", route=MISSION_ROUTE, status="404") == 3
        assert not first_run.exists()  # the finished run's files are gone, not summed in


def test_metrics_want_the_ops_token(tmp_path: Path) -> None:
    with running(tmp_path) as web:
        assert httpx.get(web.url + "/metrics").status_code == 401
        assert httpx.get(web.url + "/metrics", headers={"Authorization": "Bearer pas-le-bon"}).status_code == 401
        assert httpx.get(web.url + "/metrics", auth=("prometheus", "ops-test-token")).status_code == 200
        assert "renfort_redis_up 1" in web.scrape()


async def test_without_an_ops_token_there_is_no_metrics_endpoint() -> None:
    settings = load_settings({**os.environ, "OPS_TOKEN": ""})
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/metrics", headers=OPS)).status_code == 404


def test_no_personal_data_in_metrics_or_access_log_after_a_signup(tmp_path: Path) -> None:
    person = signup(first_name=PERSONAL[0], last_name=PERSONAL[1] + "-Brocéliande", email=PERSONAL[2],
                    phone="07 98 76 54 31", birth_date=PERSONAL[4])
    with running(tmp_path) as web:
        accepted = httpx.post(web.url + "/api/v1/volunteers?email=" + PERSONAL[2], json=person, timeout=10)
        assert accepted.status_code == 202, accepted.text
        text = web.scrape()
        assert sample(text, "renfort_queue_accepted_total", queue="signups") == 1
        assert sample(text, "renfort_queue_depth", queue="signups") == 1
        log = web.log_once_written('"route": "/api/v1/volunteers"')
    assert '"route": "/api/v1/volunteers"' in log and '"status": 202' in log  # the access line is there
    for value in PERSONAL:
        assert value.casefold() not in text.casefold() and value.casefold() not in log.casefold()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


async def test_a_scrape_with_redis_down_says_so_and_keeps_the_rest(throwaway_redis: LocalRedis) -> None:
    settings = load_settings({**os.environ, "REDIS_URL": throwaway_redis.url()})
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/missions/avant-la-panne")).status_code == 404
        await asyncio.sleep(FLUSH_SECONDS + 0.3)  # its count written to the file
        await asyncio.to_thread(throwaway_redis.stop)
        response = await client.get("/metrics", headers=OPS)
    assert response.status_code == 200
    assert sample(response.text, "renfort_redis_up") == 0
    assert sample(response.text, "renfort_postgresql_up") == 1
    assert sample(response.text, "renfort_dispatch_runs", status="planning") == 0
    assert sample(response.text, "renfort_http_requests_total", route=MISSION_ROUTE, status="404") is not None


async def test_a_scrape_with_postgresql_slow_or_down_answers_in_time(client: AsyncTestClient) -> None:
    assert (await client.get("/health")).status_code == 200  # the postcode snapshot is in Redis now
    locker = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE dispatch_runs IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            slow = await client.get("/metrics", headers=OPS)
            took = time.monotonic() - started
    finally:
        await locker.close()
    assert slow.status_code == 200 and took < 5
    assert sample(slow.text, "renfort_postgresql_up") == 0 and sample(slow.text, "renfort_redis_up") == 1
    assert sample(slow.text, "renfort_queue_depth", queue="signups") == 0

    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/renfort"
    async with AsyncTestClient(app=create_app(load_settings({**os.environ, "DATABASE_URL": nowhere}))) as down:
        response = await down.get("/metrics", headers=OPS)
    assert response.status_code == 200
    assert sample(response.text, "renfort_postgresql_up") == 0 and sample(response.text, "renfort_redis_up") == 1
    assert sample(response.text, "renfort_dispatch_runs", status="planning") is None


async def test_emergency_pages_are_counted_under_their_mount_never_as_unmatched(client: AsyncTestClient) -> None:
    # The emergency pages are a mounted ASGI handler, whose template Litestar leaves as the root's.
    seeded = await client.post("/ops/rehearsal/seed", json={"run": "metriques", "emergency": True}, headers=OPS)
    assert seeded.status_code == 200, seeded.text
    try:
        labels = {"route": "/urgence", "method": "GET", "status": "200"}
        before = sample((await client.get("/metrics", headers=OPS)).text, "renfort_http_requests_total", **labels)
        for _ in range(3):
            assert (await client.get("/urgence/repetition-metriques")).status_code == 200
        await asyncio.sleep(FLUSH_SECONDS + 0.3)
        text = (await client.get("/metrics", headers=OPS)).text
        assert (sample(text, "renfort_http_requests_total", **labels) or 0) - (before or 0) == 3
        assert sample(text, "renfort_http_requests_total", route="unmatched", status="200") is None
    finally:
        purged = await client.post("/ops/rehearsal/purge", json={"run": "metriques"}, headers=OPS)
        assert purged.status_code == 200 and purged.json()["emergencies"] == 1


def test_a_new_run_removes_finished_run_folders_and_nothing_else(tmp_path: Path) -> None:
    # PROMETHEUS_MULTIPROC_DIR may be a folder that holds other things: only run folders (run_name) ever go.
    finished = tmp_path / "0123abcd-4194305-17"  # past Linux's largest pid: its server is gone
    kept = [tmp_path / "sauvegarde-20260101", tmp_path / "boot-12-x", tmp_path / "notes-1-2.txt"]
    for folder in (finished, *kept[:2]):
        folder.mkdir()
        (folder / "garder.txt").write_text("1")
    kept[2].write_text("1")
    process_files._remove_finished_runs(tmp_path, "0123abcd-1-1")
    assert not finished.exists()
    assert all(path.exists() for path in kept)


def test_the_default_metrics_folder_is_private_to_its_user(tmp_path: Path) -> None:
    made = process_files.private_root(tmp_path / "nouveau")
    assert made.stat().st_mode & 0o777 == 0o700
    opened = tmp_path / "ouvert"
    opened.mkdir(mode=0o777)
    opened.chmod(0o777)
    assert process_files.private_root(opened).stat().st_mode & 0o777 == 0o700
    link = tmp_path / "lien"
    link.symlink_to(made)  # another user's link in /tmp would point the files and the clean-up elsewhere
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        process_files.private_root(link)
