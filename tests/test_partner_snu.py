"""A partner's mission sent with `snu` and `snuPlaces` (and both dates) becomes an SNU offer of source partner awaiting
the referents' validation; sent again without `snu`, or deleted, its offer is withdrawn; bad values get the partner's
usual refusals, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from app.partners import imports
from app.volunteers.age import today
from tests.partner_fixtures import create_key, create_partner
from tests.test_partner_feed_fetch import FeedServer
from tests.test_partner_imports import mission, partner_with_feed, run
from tests.test_partners_v2 import body

SNU = {"snu": True, "snuPlaces": 700, "startAt": "2030-01-15T18:00:00+01:00", "endAt": "2030-03-15",
       "contactName": "Tom Tuteur", "contactEmail": "Tom.Tuteur@Example.org"}


@pytest.fixture
async def key(db: asyncpg.Connection) -> str:
    return await create_key(db, await create_partner(db, "Bénévoles en ligne"))


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_pause_between_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "ASK_AGAIN_AFTER", timedelta(0))


async def offers(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT o.*, m.client_id FROM youth_offers o JOIN missions m ON m.id = o.mission_id "
                          "ORDER BY m.client_id")


async def test_a_snu_mission_becomes_an_awaiting_partner_offer_and_leaves_with_snu_false(
        client: AsyncTestClient, key: str, db: asyncpg.Connection) -> None:
    headers = {"x-api-key": key}
    created = await client.post("/v2/mission", json=body(**SNU), headers=headers)
    assert created.status_code == 201 and created.json()["data"]["statusCode"] == "ACCEPTED", created.text
    [offer] = await offers(db)
    assert (offer["source"], offer["status"], offer["places"], offer["hours"], offer["department_code"]) == (
        "partner", "awaiting_validation", 500, 84, "69")
    assert (str(offer["start_date"]), str(offer["end_date"])) == ("2030-01-15", "2030-03-15")
    assert (offer["tutor_name"], offer["tutor_email"], offer["tutor_user_id"]) == (
        "Tom Tuteur", "tom.tuteur@example.org", None)

    # A referent's validation survives an update that leaves the offer's terms alone…
    await db.execute("UPDATE youth_offers SET status = 'validated', decided_at = now()")
    await client.put("/v2/mission/m-1", json={"title": "Maraude du matin à Lyon"}, headers=headers)
    assert (await offers(db))[0]["status"] == "validated"
    # …not one that changes them.
    await client.put("/v2/mission/m-1", json={"snuPlaces": "12"}, headers=headers)
    [offer] = await offers(db)
    assert (offer["status"], offer["places"], offer["decided_at"]) == ("awaiting_validation", 12, None)

    withdrawn = await client.put("/v2/mission/m-1", json={"snu": False}, headers=headers)
    assert withdrawn.status_code == 200
    assert [row["status"] for row in await offers(db)] == ["withdrawn"]
    await client.put("/v2/mission/m-1", json={"snu": "yes"}, headers=headers)
    assert [row["status"] for row in await offers(db)] == ["awaiting_validation"]
    assert (await client.delete("/v2/mission/m-1", headers=headers)).status_code == 200
    assert [row["status"] for row in await offers(db)] == ["withdrawn"]


async def test_no_dates_no_offer_and_bad_snu_values_are_refusals_not_crashes(
        client: AsyncTestClient, key: str, db: asyncpg.Connection) -> None:
    headers = {"x-api-key": key}
    undated = await client.post("/v2/mission", json=body("sans-fin", **{**SNU, "endAt": None}), headers=headers)
    assert undated.status_code == 201 and undated.json()["data"]["statusCode"] == "ACCEPTED"
    for client_id, value in (("texte", "beaucoup"), ("zero", 0), ("negatif", -3)):
        refused = await client.post("/v2/mission", json=body(client_id, **{**SNU, "snuPlaces": value}),
                                    headers=headers)
        assert refused.status_code == 201, refused.text
        assert refused.json()["data"]["statusCode"] == "REFUSED"
        assert "Nombre de places SNU invalide" in refused.json()["data"]["statusComment"]
    for value in ([1], {"n": 1}, 1.5):
        wrong = await client.post("/v2/mission", json=body("type", **{**SNU, "snuPlaces": value}), headers=headers)
        assert wrong.status_code == 400 and "snuPlaces" in wrong.json()["message"], wrong.text
    hostile = await client.post("/v2/mission", json=body("nul", **{**SNU, "contactName": "Tom\x00" + "x" * 5_000}),
                                headers=headers)
    assert hostile.status_code == 201 and hostile.json()["data"]["statusCode"] == "REFUSED"
    assert await offers(db) == []  # refused records offer nothing either


async def test_a_feed_opens_then_withdraws_its_snu_missions(
        client: AsyncTestClient, db: asyncpg.Connection, feed_server: FeedServer) -> None:
    _, key = await partner_with_feed(db, feed_server)
    snu = mission("s-1").replace("<places>3</places>", "<places>3</places><snu>yes</snu><snuPlaces>4</snuPlaces>"
                                 "<contactEmail>tutrice@example.org</contactEmail>")

    def serve(*missions: str) -> None:
        feed_server.serve("/feed.xml", ("<?xml version='1.0' encoding='UTF-8'?><source><publisher>P</publisher>"
                                        + "".join(missions) + "</source>").encode())

    serve(snu, mission("plain"))
    first = await run(client, key)
    assert (first["status"], first["created"], first["refused"]) == ("succeeded", 2, 0), first
    [offer] = await offers(db)
    assert (offer["client_id"], offer["source"], offer["status"], offer["places"], offer["department_code"]) == (
        "s-1", "partner", "awaiting_validation", 4, "75")
    assert offer["tutor_email"] == "tutrice@example.org"
    assert offer["start_date"] == today() + timedelta(days=10)

    serve(mission("s-1"), mission("plain"))  # `snu` gone from the record
    second = await run(client, key)
    assert second["status"] == "succeeded" and second["updated"] == 1, second
    assert [(row["client_id"], row["status"]) for row in await offers(db)] == [("s-1", "withdrawn")]

    serve(snu)  # back with `snu`, then absent from a complete feed
    await run(client, key)
    assert [row["status"] for row in await offers(db)] == ["awaiting_validation"]
    serve(mission("plain"))
    assert (await run(client, key))["deleted"] == 1
    assert [row["status"] for row in await offers(db)] == ["withdrawn"]

