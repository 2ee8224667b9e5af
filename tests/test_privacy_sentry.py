"""Volunteers' personal data never reaches Sentry, from the web process or from a worker, nor the JSON logs.

Sentry is a real SDK sending real envelopes to a local stand-in server, so what is checked is exactly what would
leave the machine; each test first proves that an event did arrive, so it cannot pass by sending nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import sentry_sdk
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.observability import FILTERED, JsonFormatter, scrub_event
from app.settings import load_settings
from app.volunteers import signup_queue as keys
from app.volunteers.schemas import QueuedSignup
from ops.services import LocalRedis, free_port
from tests.conftest import run_worker
from tests.factories import signup
from tests.servers import SentrySink

FIRST_NAME = "Zéphyrine"
LAST_NAME = "Quintavalle-Brocéliande"
EMAIL = "zephyrine.quintavalle@exemple-prive.fr"
PHONE = "07 98 76 54 31"
PHONE_NORMALISED = "+33798765431"
BIRTH_DATE = "1987-03-29"
PERSONAL_VALUES = [
    FIRST_NAME, LAST_NAME, EMAIL, PHONE, PHONE_NORMALISED, "0798765431", BIRTH_DATE, "29/03/1987", "Zephyrine",
    "Quintavalle",
]


@pytest.fixture
def sentry_sink() -> Iterator[SentrySink]:
    sink = SentrySink()
    sink.start()
    yield sink
    # Back to no client at all, as before: `init(dsn="")` would keep the Litestar integration active in later tests.
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)
    sink.stop()


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()


def readable(envelope: bytes) -> str:
    """An envelope as text with JSON escapes undone, so `Zéphyrine` is found even when sent as `Z\\u00e9phyrine`."""
    lines = []
    for line in envelope.split(b"\n"):
        try:
            lines.append(json.dumps(json.loads(line), ensure_ascii=False))
        except ValueError:
            lines.append(line.decode("utf-8", errors="replace"))
    return "\n".join(lines)


def leaks(envelopes: list[bytes]) -> list[str]:
    found = []
    for envelope in envelopes:
        raw, text = envelope.decode("utf-8", errors="replace").casefold(), readable(envelope).casefold()
        found += [value for value in PERSONAL_VALUES if value.casefold() in raw or value.casefold() in text]
    return found


def distinctive_signup() -> dict[str, Any]:
    return signup(first_name=FIRST_NAME, last_name=LAST_NAME, email=EMAIL, phone=PHONE, birth_date=BIRTH_DATE)


async def test_redis_outage_during_signup_sends_a_sentry_event_without_personal_data(
    sentry_sink: SentrySink, throwaway_redis: LocalRedis
) -> None:
    settings = load_settings({**os.environ, "REDIS_URL": throwaway_redis.url(), "SENTRY_DSN": sentry_sink.dsn,
                              "SOURCE_VERSION": "3f9c2e1"})  # what a PaaS sets: the commit deployed
    async with AsyncTestClient(app=create_app(settings)) as client:
        accepted = await client.post("/api/v1/volunteers", json=signup())
        assert accepted.status_code == 202, accepted.text

        await asyncio.to_thread(throwaway_redis.stop)
        refused = await client.post("/api/v1/volunteers", json=distinctive_signup())

    assert refused.status_code == 503
    assert refused.headers["retry-after"].isdigit()
    assert "réessayez" in refused.json()["error"].lower()
    await asyncio.to_thread(sentry_sdk.flush, 5)
    assert sentry_sink.events(), "the Redis outage should have reached Sentry"
    assert leaks(sentry_sink.received()) == []
    assert all(b'"release":"3f9c2e1"' in event.replace(b" ", b"") for event in sentry_sink.events())


async def test_malformed_json_gets_a_422_even_with_sentry_enabled(sentry_sink: SentrySink) -> None:
    settings = load_settings({**os.environ, "SENTRY_DSN": sentry_sink.dsn})
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.post(
            "/api/v1/volunteers", content=b"{not json", headers={"content-type": "application/json"}
        )

    assert response.status_code == 422
    assert "body" in response.json()["errors"]


async def test_dead_lettered_signup_sends_a_sentry_event_without_personal_data(
    sentry_sink: SentrySink, redis: Redis, db: asyncpg.Connection
) -> None:
    # Commune 00000 does not exist: PostgreSQL refuses the row (foreign key), so the drain buries it.
    record = QueuedSignup(
        receipt="dead-letter-privacy-1",
        email=EMAIL,
        email_normalized=EMAIL,
        accepted_at=datetime.now(UTC),
        first_name=FIRST_NAME,
        last_name=LAST_NAME,
        phone=PHONE_NORMALISED,
        birth_date=date.fromisoformat(BIRTH_DATE),
        postal_code="69003",
        commune_code="00000",
        domains=["solidarite-insertion"],
        availability="weekends",
        consent_at=datetime.now(UTC),
    )
    await redis.rpush(keys.PENDING, msgspec.json.encode(record))

    worker = await asyncio.to_thread(run_worker, {"SENTRY_DSN": sentry_sink.dsn, "RENFORT_RELEASE": "renfort@1.4.2",
                                                  "SOURCE_VERSION": "3f9c2e1"})

    assert sentry_sink.events(), f"the dead letter should have reached Sentry; worker said:\n{worker.stderr[-2000:]}"
    assert leaks(sentry_sink.received()) == []
    assert all(b'"release":"renfort@1.4.2"' in event.replace(b" ", b"") for event in sentry_sink.events())
    dead = [msgspec.json.decode(item, type=QueuedSignup) for item in await redis.hvals(keys.KEYS.dead)]
    assert [letter.receipt for letter in dead] == [record.receipt]
    assert await redis.llen(keys.PENDING) == 0
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 0
    # The worker's own logs hold the receipt and the reason, never the person.
    assert [value for value in PERSONAL_VALUES if value in worker.stderr] == []


def sentry_like_event() -> dict[str, Any]:
    return {
        "event_id": "8d5c1e9a0f3b4c2d9e8f7a6b5c4d3e2f",
        "timestamp": "2026-11-23T18:04:05.123456Z",
        "level": "error",
        "platform": "python",
        "request": {
            "url": "https://renfort.example/inscription",
            "method": "POST",
            "data": {"first_name": FIRST_NAME, "email": EMAIL, "birth_date": BIRTH_DATE},
            "cookies": {"csrftoken": "abc"},
            "query_string": f"email={EMAIL}",
            "headers": {"Cookie": "session=secret", "Authorization": "Bearer t", "User-Agent": "Firefox"},
        },
        "breadcrumbs": {
            "values": [
                {"timestamp": "2026-11-23T18:04:01.000000Z", "category": "renfort.mail",
                 "message": f"welcome mail queued for {EMAIL}", "level": "info"},
                {"timestamp": "2026-11-23T18:04:02.000000Z", "category": "query",
                 "data": {"email": EMAIL, "phone": PHONE_NORMALISED, "rows": 1}},
            ]
        },
        "exception": {
            "values": [{
                "type": "ValueError",
                "value": f"cannot call {PHONE} nor {PHONE_NORMALISED} (born {BIRTH_DATE})",
                "stacktrace": {"frames": [{"function": "save", "vars": {"record": {"last_name": LAST_NAME}}}]},
            }]
        },
        "contexts": {"trace": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}},
    }


def test_scrub_event_removes_personal_data_and_keeps_what_sentry_needs() -> None:
    assert len(leaks([json.dumps(sentry_like_event()).encode()])) > 5  # the detector finds them, even \u-escaped

    scrubbed = scrub_event(sentry_like_event())

    assert leaks([json.dumps(scrubbed).encode()]) == []
    assert scrubbed["event_id"] == "8d5c1e9a0f3b4c2d9e8f7a6b5c4d3e2f"
    assert scrubbed["timestamp"] == "2026-11-23T18:04:05.123456Z"
    assert scrubbed["level"] == "error"
    assert scrubbed["contexts"]["trace"] == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                                             "span_id": "00f067aa0ba902b7"}
    request = scrubbed["request"]
    assert "data" not in request and "cookies" not in request and "query_string" not in request
    assert request["headers"] == {"User-Agent": "Firefox"}
    assert request["url"] == "https://renfort.example/inscription"
    mail, query = scrubbed["breadcrumbs"]["values"]
    assert mail["message"] == f"welcome mail queued for {FILTERED}"
    assert mail["timestamp"] == "2026-11-23T18:04:01.000000Z"
    assert query["data"] == {"email": FILTERED, "phone": FILTERED, "rows": 1}
    exception = scrubbed["exception"]["values"][0]
    assert exception["type"] == "ValueError"
    assert exception["value"] == f"cannot call {FILTERED} nor {FILTERED} (born {FILTERED})"


def log_line(message: str, *args: object, exc_info: Any = None) -> dict[str, Any]:
    record = logging.LogRecord("renfort.drain", logging.ERROR, __file__, 1, message, args, exc_info)
    record.created = datetime(2026, 11, 23, 18, 4, 5).timestamp()
    return json.loads(JsonFormatter().format(record))


def test_json_logs_hide_emails_phones_and_birth_dates() -> None:
    try:
        raise ValueError(f"invalid phone {PHONE} for {EMAIL}")
    except ValueError:
        entry = log_line("sign-up of %s (%s, born %s) failed", EMAIL, PHONE_NORMALISED, BIRTH_DATE,
                         exc_info=sys.exc_info())

    assert entry["time"] == "2026-11-23T18:04:05"
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "renfort.drain"
    assert entry["message"] == f"sign-up of {FILTERED} ({FILTERED}, born {FILTERED}) failed"
    assert "ValueError" in entry["exception"]
    assert leaks([json.dumps(entry, ensure_ascii=False).encode()]) == []


def test_json_logs_keep_receipts_counts_and_timestamps() -> None:
    entry = log_line("drained %d sign-ups at 2026-11-23T18:04:05+00:00 (receipt %s)", 12, "Xk3_9pQ-7RtYw2Lm")

    assert entry["message"] == "drained 12 sign-ups at 2026-11-23T18:04:05+00:00 (receipt Xk3_9pQ-7RtYw2Lm)"


@pytest.mark.parametrize(("env", "release"), [
    ({"RENFORT_RELEASE": "renfort@1.4.2", "SOURCE_VERSION": "3f9c2e1", "CONTAINER_VERSION": "v7"}, "renfort@1.4.2"),
    ({"SOURCE_VERSION": "3f9c2e1", "CONTAINER_VERSION": "v7"}, "3f9c2e1"),
    ({"CONTAINER_VERSION": "v7"}, "v7"),
    ({"RENFORT_RELEASE": "  "}, None),
])
def test_the_release_sentry_files_events_under_comes_from_the_deployment(env: dict[str, str],
                                                                         release: str | None) -> None:
    base = {key: value for key, value in os.environ.items()
            if key not in ("RENFORT_RELEASE", "SOURCE_VERSION", "CONTAINER_VERSION")}
    assert load_settings({**base, **env}).release == release
