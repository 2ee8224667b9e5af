"""Feed imports end to end: `POST /v2/import` (or the schedule) asks, a real RQ worker fetches the feed from a real
local HTTP server, upserts, and soft-deletes what a complete feed no longer holds; a failed run deletes nothing and
says why on `GET /v2/import/{id}`."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from app.partners import imports
from app.volunteers.age import today
from queues import enqueue
from queues.connection import sync_redis
from tests.conftest import REDIS_URL, run_worker
from tests.partner_fixtures import create_key, create_partner
from tests.test_partner_feed_fetch import FeedServer, drip
from tests.test_partner_feed_parse import BILLION_LAUGHS, XXE

OPEN = {"PARTNER_FEEDS_ALLOW_LOOPBACK": "on"}


def mission(client_id: str, title: str = "Aide aux devoirs pour collégiens") -> str:
    start, end = today() + timedelta(days=10), today() + timedelta(days=60)
    return f"""<mission>
    <clientId><![CDATA[{client_id}]]></clientId>
    <title><![CDATA[{title}]]></title>
    <description><![CDATA[<p>Accompagner des collégiens dans leurs devoirs, deux soirs par semaine, dans une
      salle de quartier. Aucune compétence particulière n'est demandée, seulement de la patience.</p>]]></description>
    <applicationUrl><![CDATA[https://partner.example/m/{client_id}]]></applicationUrl>
    <startAt>{start.isoformat()}</startAt><endAt>{end.isoformat()}</endAt>
    <domain>education</domain><activity>soutien-scolaire</activity>
    <remote>no</remote><openToMinors>yes</openToMinors><places>3</places>
    <organizationName><![CDATA[Asso du quartier]]></organizationName>
    <organizationClientId>org-1</organizationClientId>
    <addresses><address><street>1 rue Oberkampf</street><postalCode>75011</postalCode><city>Paris</city>
      <country>FR</country><location><lat>48.865</lat><lon>2.375</lon></location></address></addresses>
  </mission>"""


def feed(*client_ids: str, extra: str = "") -> bytes:
    return ("<?xml version='1.0' encoding='UTF-8'?><source><publisher>P</publisher>"
            + "".join(mission(client_id) for client_id in client_ids) + extra + "</source>").encode()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


PAUSE = imports.ASK_AGAIN_AFTER


@pytest.fixture(autouse=True)
def no_pause_between_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests run a feed several times in a row; the pause a partner waits between two runs it asks for has
    its own test."""
    monkeypatch.setattr(imports, "ASK_AGAIN_AFTER", timedelta(0))


async def partner_with_feed(db: asyncpg.Connection, server: FeedServer, **columns: Any) -> tuple[int, str]:
    partner_id = await create_partner(db, "Plateforme Flux", feed_url=server.url("/feed.xml"), **columns)
    return partner_id, await create_key(db, partner_id)


async def start(client: AsyncTestClient, key: str) -> int:
    response = await client.post("/v2/import", headers={"x-api-key": key})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["ok"] is True and body["data"]["status"] == "running"
    return int(body["data"]["id"])


async def report(client: AsyncTestClient, key: str, import_id: int) -> dict[str, Any]:
    response = await client.get(f"/v2/import/{import_id}", headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


async def run(client: AsyncTestClient, key: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    import_id = await start(client, key)
    run_worker({**OPEN, **(env or {})})
    return await report(client, key, import_id)


async def live_missions(db: asyncpg.Connection, partner_id: int) -> list[str]:
    rows = await db.fetch("SELECT client_id FROM missions WHERE partner_id = $1 AND deleted_at IS NULL "
                          "ORDER BY client_id", partner_id)
    return [row["client_id"] for row in rows]


async def test_import_creates_then_leaves_unchanged_then_deletes_what_left_the_feed(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    partner_id, key = await partner_with_feed(db, feed_server)
    feed_server.serve("/feed.xml", feed("m-1", "m-2", "m-3"))
    first = await run(client, key)
    assert first["status"] == "succeeded", first
    assert (first["received"], first["created"], first["refused"], first["deleted"]) == (3, 3, 0, 0), first
    assert first["finishedAt"] and first["startedAt"] and first["error"] is None
    assert await live_missions(db, partner_id) == ["m-1", "m-2", "m-3"]

    second = await run(client, key)
    assert second["status"] == "succeeded"
    assert (second["created"], second["updated"], second["unchanged"], second["deleted"]) == (0, 0, 3, 0), second

    feed_server.serve("/feed.xml", feed("m-1", "m-3"))
    third = await run(client, key)
    assert (third["status"], third["unchanged"], third["deleted"]) == ("succeeded", 2, 1), third
    assert await live_missions(db, partner_id) == ["m-1", "m-3"]
    assert await db.fetchval("SELECT deleted_at IS NOT NULL FROM missions WHERE client_id = 'm-2'")


def _oversized() -> bytes:
    return feed(*(f"big-{index}" for index in range(40)))


@pytest.mark.parametrize(("name", "serve", "env", "expected"), [
    ("empty", lambda server: server.serve("/feed.xml", b"<?xml version='1.0'?><source></source>"), {},
     "aucune mission"),
    ("malformed", lambda server: server.serve("/feed.xml", feed("m-1")[:-30]), {}, "bien formé"),
    ("billion laughs", lambda server: server.serve("/feed.xml", BILLION_LAUGHS.encode()), {}, "DTD"),
    ("xxe", lambda server: server.serve("/feed.xml", XXE.encode()), {}, "DTD"),
    ("oversized", lambda server: server.serve("/feed.xml", _oversized()), {"PARTNER_FEED_MAX_BYTES": "20000"},
     "taille maximale"),
    ("slow", lambda server: server.routes.__setitem__("/feed.xml", drip), {"PARTNER_FEED_TIMEOUT_SECONDS": "1"},
     "temps imparti"),
    ("server error", lambda server: server.serve("/feed.xml", b"oops", status=500), {}, "500"),
])
async def test_a_failed_run_says_why_and_deletes_nothing(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer,
        name: str, serve: Any, env: dict[str, str], expected: str) -> None:
    partner_id, key = await partner_with_feed(db, feed_server)
    feed_server.serve("/feed.xml", feed("m-1", "m-2"))
    assert (await run(client, key))["status"] == "succeeded"
    serve(feed_server)
    failed = await run(client, key, env)
    assert failed["status"] == "failed", (name, failed)
    assert expected in failed["error"], (name, failed["error"])
    assert "Traceback" not in failed["error"] and failed["deleted"] == 0 and failed["finishedAt"]
    assert await live_missions(db, partner_id) == ["m-1", "m-2"]


async def test_loopback_feed_is_refused_when_the_setting_is_off(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    _, key = await partner_with_feed(db, feed_server)
    feed_server.serve("/feed.xml", feed("m-1"))
    failed = await run(client, key, {"PARTNER_FEEDS_ALLOW_LOOPBACK": "off"})
    assert failed["status"] == "failed" and "non publique" in failed["error"]
    assert not feed_server.requests


async def test_private_feed_address_is_refused(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    partner_id = await create_partner(db, "Plateforme Interne", feed_url="http://169.254.169.254/latest/meta-data/")
    key = await create_key(db, partner_id)
    failed = await run(client, key)
    assert failed["status"] == "failed" and "non publique" in failed["error"]


async def test_duplicates_are_dropped_and_reported_and_credentials_sent(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    partner_id, key = await partner_with_feed(db, feed_server, feed_username="renfort", feed_password="m0t-de-passe")
    feed_server.serve("/feed.xml", feed("m-1", "m-2", "m-1", extra="<mission><title>Sans id</title></mission>"))
    result = await run(client, key)
    assert result["status"] == "succeeded"
    assert (result["received"], result["created"], result["refused"]) == (4, 2, 2), result
    reasons = {(refusal["clientId"], refusal["reason"].split(" :")[0]) for refusal in result["refusals"]}
    assert reasons == {("m-1", "clientId en double dans le flux"), (None, "Mission sans clientId")}
    assert await live_missions(db, partner_id) == ["m-1", "m-2"]
    expected = "Basic " + base64.b64encode(b"renfort:m0t-de-passe").decode()
    assert feed_server.requests[-1][1]["Authorization"] == expected


async def test_asking_twice_returns_the_running_import(client: AsyncTestClient, db: asyncpg.Connection,
                                                       feed_server: FeedServer) -> None:
    _, key = await partner_with_feed(db, feed_server)
    first = await start(client, key)
    assert await start(client, key) == first
    assert await db.fetchval("SELECT count(*) FROM partner_imports") == 1


async def test_a_run_left_running_by_a_dead_worker_is_failed_and_replaced(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    partner_id, key = await partner_with_feed(db, feed_server)
    stale = await db.fetchval("INSERT INTO partner_imports (partner_id, status, started_at) "
                              "VALUES ($1, 'running', now() - interval '3 hours') RETURNING id", partner_id)
    fresh = await start(client, key)
    assert fresh != stale
    old = await report(client, key, stale)
    assert old["status"] == "failed" and "interrompu" in old["error"]


async def test_import_routes_refuse_what_is_not_the_callers(client: AsyncTestClient, db: asyncpg.Connection,
                                                            feed_server: FeedServer) -> None:
    _, key = await partner_with_feed(db, feed_server)
    other_id = await create_partner(db, "Sans flux")
    other_key = await create_key(db, other_id)
    import_id = await start(client, key)

    no_feed = await client.post("/v2/import", headers={"x-api-key": other_key})
    assert no_feed.status_code == 404 and no_feed.json()["ok"] is False and "flux" in no_feed.json()["message"]
    for path in (f"/v2/import/{import_id}", "/v2/import/0", "/v2/import/99999999999999999999999"):
        response = await client.get(path, headers={"x-api-key": other_key})
        assert response.status_code == 404, path
        assert response.json()["ok"] is False and "introuvable" in response.json()["message"]
    for path in ("/v2/import/abc", "/v2/import/%00"):
        assert (await client.get(path, headers={"x-api-key": key})).status_code in (400, 404)
    assert (await client.post("/v2/import")).status_code == 401
    assert (await client.get(f"/v2/import/{import_id}")).status_code == 401


async def test_schedule_imports_the_feeds_that_are_due_once(client: AsyncTestClient, db: asyncpg.Connection,
                                                            feed_server: FeedServer) -> None:
    due, _ = await partner_with_feed(db, feed_server)
    recent = await create_partner(db, "Récent", feed_url=feed_server.url("/feed.xml"))
    await db.execute("INSERT INTO partner_imports (partner_id, status, started_at, finished_at) "
                     "VALUES ($1, 'succeeded', now() - interval '5 minutes', now())", recent)
    await create_partner(db, "Inactif", feed_url=feed_server.url("/feed.xml"), active=False)
    feed_server.serve("/feed.xml", feed("m-1"))
    connection = sync_redis(REDIS_URL)
    enqueue.schedule_partner_feeds(connection)
    enqueue.schedule_partner_feeds(connection)  # a second worker ticking at the same moment
    run_worker(OPEN)
    runs = await db.fetch("SELECT partner_id, status FROM partner_imports ORDER BY id")
    assert [(row["partner_id"], row["status"]) for row in runs] == [(recent, "succeeded"), (due, "succeeded")]
    assert await live_missions(db, due) == ["m-1"]
    connection.close()


async def test_schedule_tick_restarts_the_feeds_whose_interval_has_passed(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    # The real tick, through a real worker, past the clock comparisons: a feed last imported longer ago than its
    # interval, and one whose run a dead worker left "running".
    overdue, _ = await partner_with_feed(db, feed_server, feed_interval_minutes=60)
    await db.execute("INSERT INTO partner_imports (partner_id, status, started_at, finished_at) "
                     "VALUES ($1, 'succeeded', now() - interval '2 hours', now() - interval '2 hours')", overdue)
    stuck = await create_partner(db, "Bloqué", feed_url=feed_server.url("/feed.xml"), feed_interval_minutes=60)
    await db.execute("INSERT INTO partner_imports (partner_id, status, started_at) "
                     "VALUES ($1, 'running', now() - interval '3 hours')", stuck)
    feed_server.serve("/feed.xml", feed("m-1"))
    connection = sync_redis(REDIS_URL)
    enqueue.schedule_partner_feeds(connection)
    run_worker(OPEN)
    connection.close()
    runs = await db.fetch("SELECT partner_id, status, error FROM partner_imports ORDER BY id")
    assert [(row["partner_id"], row["status"]) for row in runs] == [
        (overdue, "succeeded"), (stuck, "failed"), (overdue, "succeeded"), (stuck, "succeeded")]
    assert "interrompu" in runs[1]["error"]
    assert await live_missions(db, overdue) == ["m-1"] and await live_missions(db, stuck) == ["m-1"]


async def test_a_partner_asking_again_right_after_a_run_is_told_when_it_may(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imports, "ASK_AGAIN_AFTER", PAUSE)
    _, key = await partner_with_feed(db, feed_server)
    feed_server.serve("/feed.xml", feed("m-1"))
    assert (await run(client, key))["status"] == "succeeded"
    again = await client.post("/v2/import", headers={"x-api-key": key})
    assert again.status_code == 429 and again.json()["code"] == "TOO_MANY_REQUESTS"
    assert 0 < int(again.headers["retry-after"]) <= 60
    await db.execute("UPDATE partner_imports SET finished_at = finished_at - interval '61 seconds'")
    assert (await client.post("/v2/import", headers={"x-api-key": key})).status_code == 202
