"""Helpers for tests that queue sign-ups directly and watch real worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

from redis.asyncio import Redis

from app.volunteers.intake import SignupIntake
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import new_receipt
from tests.conftest import ROOT, TEST_ENV


def queued_signup(number: int, *, prefix: str = "wave", commune_code: str = "69123") -> QueuedSignup:
    now = datetime.now(UTC)
    email = f"{prefix}.{number}@example.org"
    return QueuedSignup(
        receipt=new_receipt(),
        email_normalized=email,
        accepted_at=now,
        email=email,
        first_name="Ana",
        last_name="Martin",
        phone="+33612345678",
        birth_date=date(1990, 4, 12),
        postal_code="69003",
        commune_code=commune_code,
        domains=["solidarite-insertion"],
        availability="weekends",
        skills=[],
        consent_at=now,
    )


async def queue_signups(redis: Redis, records: list[QueuedSignup]) -> None:
    """Through the accept path's own Lua script, as the web process would (without HTTP)."""
    intake = SignupIntake(redis, TEST_ENV["SECRET_KEY"], ip_limit_per_minute=0, backlog_limit=10**9)
    for start in range(0, len(records), 500):
        chunk = records[start : start + 500]
        outcomes = await asyncio.gather(
            *[intake.accept(record, client_ip="test", idempotency_key=None) for record in chunk]
        )
        assert {accepted.outcome for accepted in outcomes} == {"accepted"}


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A long-running worker in its own process group, so a test can SIGKILL it and its job child at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "queues.worker"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_worker(worker: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, sig)
    worker.wait(timeout=30)


def wait_for_fresh_minute(needed_seconds: float = 5) -> None:
    """Per-address limits count per calendar minute: a test that fills one window waits for a new minute when fewer
    than `needed_seconds` are left, so it cannot straddle two windows (and see the count start again)."""
    if 60 - time.time() % 60 < needed_seconds:
        time.sleep(60 - time.time() % 60 + 0.1)


async def eventually(condition: Callable[[], object], timeout: float = 60, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
