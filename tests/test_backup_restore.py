"""ops/backup.sh and ops/restore.sh end to end, on throwaway servers: a platform with real data (the demo's
organisations and missions, sign-ups saved in PostgreSQL and sign-ups still queued in Redis) is backed up, its
servers are wiped, and new empty servers get everything back: every row of every table, every queued sign-up; once
drained, each sign-up is in PostgreSQL exactly once. A non-empty target is refused, a backup is never overwritten,
and --force overwrites a target that is not empty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis

from app.main import create_app
from app.settings import load_settings
from app.volunteers.signup_queue import KEYS, PENDING
from ops.processes import scratch_folder
from ops.services import LocalPostgres, LocalRedis, free_port
from tests.conftest import DATABASE_URL, ROOT, TEST_ENV, _recreate_database, run_release, run_worker
from tests.factories import signup

BACKUP = ROOT / "ops" / "backup.sh"
RESTORE = ROOT / "ops" / "restore.sh"
TARGET_REDIS_DB = 3  # not the source's 0: the restore copies into whichever database REDIS_URL names


@dataclass
class Platform:
    """A PostgreSQL and a Redis of its own, in one scratch folder."""

    folder: Path
    postgres: LocalPostgres
    redis: LocalRedis
    redis_db: int = 0

    @classmethod
    def start(cls, started: list[Platform], redis_db: int = 0) -> Platform:
        """Listed in `started` before its servers start, so the fixture wipes whatever did start."""
        folder = scratch_folder("renfort-backup-")
        platform = cls(folder, LocalPostgres(folder / "postgres", free_port()),
                       LocalRedis(folder / "redis", free_port()), redis_db)
        started.append(platform)
        platform.postgres.start()
        platform.postgres.create_database("renfort")
        platform.redis.start()
        return platform

    def wipe(self) -> None:
        self.postgres.kill()
        self.redis.kill()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.postgres.url("renfort"),
            "REDIS_URL": self.redis.url(self.redis_db),
            "SECRET_KEY": TEST_ENV["SECRET_KEY"],
            "SMTP_URL": TEST_ENV["SMTP_URL"],
            "PYTHON": sys.executable,
        }

    def client(self) -> Redis:
        return Redis.from_url(self.redis.url(self.redis_db))

    def sql(self, statement: str) -> str:
        return self.postgres.sql(statement, database="renfort")

    def table_digests(self) -> dict[str, str]:
        """Every table of the schema → its row count and a digest of all its rows, in a stable order."""
        tables = self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").split()
        digests = {}
        for table in tables:
            # The table name goes in as a psql identifier variable, quoted by psql.
            digests[table] = self.postgres.sql(
                "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                'FROM public.:"table" t', database="renfort", table=table,
            )
        return digests

    def queued(self) -> list[bytes]:
        with self.client() as client:
            return list(client.lrange(PENDING, 0, -1))

    def receipt_statuses(self, receipts: list[str]) -> list[bytes | None]:
        with self.client() as client:
            return list(client.mget([KEYS.receipt(receipt) for receipt in receipts]))


@pytest.fixture
def platforms() -> Iterator[list[Platform]]:
    started: list[Platform] = []
    yield started
    for platform in started:
        platform.wipe()


def run_script(script: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # Only what the scripts are given under systemd (the environment file), plus PATH.
    return subprocess.run(
        [str(script), *args], env={"PATH": os.environ["PATH"], **env}, cwd=ROOT, capture_output=True, text=True,
        timeout=600, check=False,
    )


async def sign_up(platform: Platform, count: int, prefix: str) -> list[str]:
    settings = load_settings({**os.environ, **platform.env})
    receipts = []
    async with AsyncTestClient(app=create_app(settings)) as client:
        for number in range(count):
            response = await client.post("/api/v1/volunteers", json=signup(email=f"{prefix}.{number}@example.org"))
            assert response.status_code == 202, response.text
            receipts.append(response.json()["receipt"])
    return receipts


def mine(platform: Platform) -> str:
    """How many rows this test's sign-ups have (the demo has volunteers of its own)."""
    return platform.sql("SELECT count(*) FROM volunteers WHERE email_normalized ~ '^(saved|overlap|queued)\\.'")


def drain(platform: Platform) -> None:
    run_worker({**platform.env, "DRAIN_BATCH_SIZE": "7"})


async def build_source(platforms: list[Platform]) -> tuple[Platform, list[str]]:
    """The platform to back up, and the receipts of the sign-ups this test made there."""
    source = Platform.start(platforms)
    run_release(source.env)
    demo = subprocess.run([sys.executable, "-m", "app.demo"], env={**os.environ, **source.env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert mine(source) == "0"
    saved = await sign_up(source, 30, "saved")
    drain(source)
    # Drained after the Redis snapshot and before the dump: the backup then holds them in both places (backup.sh
    # takes Redis first for exactly that reason). Built here on purpose: queued, copied, drained, copies put back.
    overlap = await sign_up(source, 10, "overlap")
    copies = source.queued()
    drain(source)
    with source.client() as client:
        client.rpush(PENDING, *copies)
    queued = await sign_up(source, 20, "queued")
    assert mine(source) == "40"
    assert len(source.queued()) == 30
    return source, saved + overlap + queued


async def test_a_backup_restores_every_row_and_every_queued_signup_onto_new_servers(
    platforms: list[Platform],
) -> None:
    source, receipts = await build_source(platforms)
    rows = source.table_digests()
    queue = source.queued()
    statuses = source.receipt_statuses(receipts)
    assert statuses == [b"saved"] * 40 + [b"queued"] * 20
    assert int(rows["organisations"].split(":")[0]) > 0 and int(rows["missions"].split(":")[0]) > 0

    folder = source.folder.parent / f"{source.folder.name}-backups" / "one"
    try:
        made = run_script(BACKUP, "--into", str(folder), env=source.env)
        assert made.returncode == 0, made.stderr
        assert made.stdout.strip() == str(folder)
        assert sorted(path.name for path in folder.iterdir()) == [
            "SHA256SUMS", "manifest.txt", "postgresql.dump", "redis.rdb"
        ]
        checked = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=folder, check=False)
        assert checked.returncode == 0
        manifest = dict(line.split("=", 1) for line in (folder / "manifest.txt").read_text().splitlines())
        assert manifest["redis_snapshot_at"] <= manifest["postgres_dump_at"]
        assert manifest["redis_db"] == "0"
        assert (folder / "redis.rdb").stat().st_mode & 0o077 == 0  # personal data: readable by its owner only

        sums = (folder / "SHA256SUMS").read_bytes()
        again = run_script(BACKUP, "--into", str(folder), env=source.env)
        assert again.returncode == 1
        assert "existe déjà" in again.stderr
        assert (folder / "SHA256SUMS").read_bytes() == sums

        # The disaster: both servers and their data are gone.
        source.wipe()
        platforms.remove(source)
        target = Platform.start(platforms, redis_db=TARGET_REDIS_DB)

        restored = run_script(RESTORE, str(folder), env=target.env)
        assert restored.returncode == 0, restored.stderr
        assert target.table_digests() == rows
        assert target.queued() == queue
        assert target.receipt_statuses(receipts) == statuses

        # A second restore onto what is now a live platform is refused before anything is touched.
        refused = run_script(RESTORE, str(folder), env=target.env)
        assert refused.returncode == 1
        assert "cible non vide" in refused.stderr
        assert target.queued() == queue

        # The workers start: every sign-up lands once, the ones saved before the backup included.
        drain(target)
        assert target.queued() == []
        assert mine(target) == str(len(receipts))
        assert target.sql("SELECT count(*) - count(DISTINCT email_normalized) FROM volunteers") == "0"
        assert set(receipts) <= set(target.sql("SELECT receipt FROM volunteers").split())
        assert set(target.receipt_statuses(receipts)) == {b"saved"}

        # --force puts the platform back as it was at the backup, queue included.
        forced = run_script(RESTORE, "--force", str(folder), env=target.env)
        assert forced.returncode == 0, forced.stderr
        assert target.table_digests() == rows
        assert target.queued() == queue
        assert target.receipt_statuses(receipts) == statuses
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)


def test_restore_refuses_a_folder_whose_checksums_do_not_match(tmp_path: Path) -> None:
    folder = tmp_path / "damaged"
    folder.mkdir()
    for name in ("manifest.txt", "redis.rdb", "postgresql.dump"):
        (folder / name).write_text(json.dumps({"name": name}))
    sums = subprocess.run(["sha256sum", "manifest.txt", "redis.rdb", "postgresql.dump"], cwd=folder, check=True,
                          capture_output=True)
    (folder / "SHA256SUMS").write_bytes(sums.stdout)
    (folder / "postgresql.dump").write_text("truncated")
    env = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/renfort", "REDIS_URL": "redis://127.0.0.1:9/0",
           "PYTHON": sys.executable}
    refused = run_script(RESTORE, str(folder), env=env)
    assert refused.returncode == 1
    assert "sommes de contrôle fausses" in refused.stderr


async def test_restore_refuses_a_redis_whose_key_count_is_an_error_reply(tmp_path: Path) -> None:
    # valkey-cli exits 0 on an error reply: a Redis asking for a password (or still loading) must not pass for an
    # empty target, or the copy would land among the keys already there.
    folder = scratch_folder("renfort-restore-")
    server = LocalRedis(folder / "redis", free_port())
    target_database = f"{urlsplit(DATABASE_URL).path.lstrip('/')}_restore"
    target_url = urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{target_database}"))
    try:
        server.start()
        with Redis(port=server.port) as client:
            client.set("deja:la", "1")
            client.save()
            client.config_set("requirepass", "secret")
        backup = tmp_path / "backup"
        backup.mkdir()
        shutil.copy(folder / "redis" / "dump.rdb", backup / "redis.rdb")
        (backup / "manifest.txt").write_text("redis_db=0\npostgres_dump_at=2026-01-01T00:00:00Z\n")
        (backup / "postgresql.dump").write_bytes(b"never read: refused before")
        sums = subprocess.run(["sha256sum", "manifest.txt", "redis.rdb", "postgresql.dump"], cwd=backup, check=True,
                              capture_output=True)
        (backup / "SHA256SUMS").write_bytes(sums.stdout)
        await _recreate_database(target_url)
        env = {"DATABASE_URL": target_url, "REDIS_URL": server.url(0), "SECRET_KEY": TEST_ENV["SECRET_KEY"],
               "PYTHON": sys.executable}
        refused = run_script(RESTORE, str(backup), env=env)
        assert refused.returncode == 1
        assert "Redis n'a pas donné son nombre de clés" in refused.stderr and "NOAUTH" in refused.stderr
        assert "pg_restore" not in refused.stderr  # PostgreSQL was not touched
    finally:
        server.kill()
        shutil.rmtree(folder, ignore_errors=True)
        await _drop_database(target_url)


async def _drop_database(url: str) -> None:
    parts = urlsplit(url)
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}"')
    finally:
        await admin.close()
