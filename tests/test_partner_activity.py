"""`POST /v2/activity` and `PUT /v2/activity/{id}`: a partner reports the application that followed one of our
outbound clicks on its own mission; once per click, only for its own clicks, with the API's envelope on errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from litestar.testing import AsyncTestClient

from tests.partner_fixtures import create_key, create_partner
from tests.test_partner_tracking import BROWSER, mission, organisation, partner_mission


async def outbound_click(client: AsyncTestClient, mission_id: int, partner_id: int) -> str:
    """Follows our tracked link as a visitor would; returns the signed click id the partner's page receives."""
    response = await client.get(f"/r/{mission_id}/{partner_id}", headers=BROWSER, follow_redirects=False)
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["location"]).query)["apiengagement_id"][0]


async def report(client: AsyncTestClient, key: str, body: Any) -> Any:
    return await client.post("/v2/activity", json=body, headers={"x-api-key": key})


async def test_a_partner_reports_an_application_once_per_click(client: AsyncTestClient, db: asyncpg.Connection
                                                                ) -> None:
    partner = await create_partner(db, "Bénévoles en ligne")
    key = await create_key(db, partner)
    theirs = await partner_mission(db, partner)
    click_id = await outbound_click(client, theirs, partner)

    first = await report(client, key, {"clickId": click_id, "missionClientId": "client-Maraude du soir"})
    assert first.status_code == 200, first.text
    data = first.json()["data"]
    assert first.json()["ok"] is True
    assert (data["clickId"], data["missionId"], data["type"], data["status"]) == (
        click_id, str(theirs), "apply", "PENDING")
    assert data["_id"] and data["createdAt"]
    again = await report(client, key, {"type": "apply", "clickId": click_id})
    assert again.status_code == 200 and again.json()["data"]["_id"] == data["_id"]
    rows = await db.fetch("SELECT partner_id, mission_id, direction, status FROM partner_applications")
    assert [tuple(row) for row in rows] == [(partner, theirs, "outbound", "PENDING")]


async def test_an_account_then_an_application_keeps_one_row_of_type_apply(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    partner = await create_partner(db)
    key = await create_key(db, partner)
    click_id = await outbound_click(client, await partner_mission(db, partner), partner)
    account = await report(client, key, {"type": "account", "clickId": click_id})
    assert account.json()["data"]["type"] == "account"
    applied = await report(client, key, {"type": "apply", "clickId": click_id})
    assert applied.json()["data"]["type"] == "apply"
    assert applied.json()["data"]["_id"] == account.json()["data"]["_id"]


async def test_the_status_of_a_reported_application_is_updated(client: AsyncTestClient, db: asyncpg.Connection
                                                               ) -> None:
    partner = await create_partner(db)
    key = await create_key(db, partner)
    click_id = await outbound_click(client, await partner_mission(db, partner), partner)
    activity_id = (await report(client, key, {"clickId": click_id})).json()["data"]["_id"]
    for status in ("VALIDATED", "CARRIED_OUT"):
        response = await client.put(f"/v2/activity/{activity_id}", json={"status": status},
                                    headers={"x-api-key": key})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] == status
    assert await db.fetchval("SELECT status FROM partner_applications") == "CARRIED_OUT"
    refused = await client.put(f"/v2/activity/{activity_id}", json={"status": "DONE"}, headers={"x-api-key": key})
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_BODY"
    for missing in ("999999", "abc", "%00"):
        response = await client.put(f"/v2/activity/{missing}", json={"status": "VALIDATED"},
                                    headers={"x-api-key": key})
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND", missing


async def test_a_tampered_or_unknown_click_is_not_found(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    partner = await create_partner(db)
    key = await create_key(db, partner)
    click_id = await outbound_click(client, await partner_mission(db, partner), partner)
    token, _, signature = click_id.partition(".")
    for forged in (token, f"{token}.{signature[::-1]}", f"{'0' * 32}.{signature}", "inconnu"):
        response = await report(client, key, {"clickId": forged})
        assert response.status_code == 404, forged
        assert response.json() == {"ok": False, "code": "NOT_FOUND", "message": response.json()["message"]}
        assert "clic" in response.json()["message"].lower()
    assert await db.fetchval("SELECT count(*) FROM partner_applications") == 0


async def test_a_partner_cannot_report_on_someone_elses_click(client: AsyncTestClient, db: asyncpg.Connection
                                                              ) -> None:
    owner = await create_partner(db, "Propriétaire")
    intruder = await create_partner(db, "Intruse")
    intruder_key = await create_key(db, intruder)
    owner_key = await create_key(db, owner)  # before the first call: the keys are copied once per process
    click_id = await outbound_click(client, await partner_mission(db, owner), owner)
    response = await report(client, intruder_key, {"clickId": click_id})
    assert response.status_code == 403 and response.json()["code"] == "FORBIDDEN"
    # An inbound click (the intruder sent a visitor to one of OUR missions) is credited by our flow, not reported.
    ours = await mission(db, await organisation(db))
    location = (await client.get(f"/r/{ours}/{intruder}", headers=BROWSER, follow_redirects=False)).headers["location"]
    inbound = parse_qs(urlsplit(location).query)["apiengagement_id"][0]
    response = await report(client, intruder_key, {"clickId": inbound})
    assert response.status_code == 403
    wrong_mission = await report(client, owner_key, {"clickId": click_id, "missionClientId": "une-autre"})
    assert wrong_mission.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM partner_applications") == 0


async def test_bad_bodies_get_invalid_body_and_no_key_gets_401(client: AsyncTestClient, db: asyncpg.Connection
                                                               ) -> None:
    partner = await create_partner(db)
    key = await create_key(db, partner)
    click_id = await outbound_click(client, await partner_mission(db, partner), partner)
    bodies: list[Any] = [{}, [], "texte", 12, {"clickId": 12}, {"clickId": ["a"]}, {"clickId": "x" * 5000},
                         {"clickId": "a\x00b"}, {"clickId": click_id, "type": "print"},
                         {"clickId": click_id, "status": "DONE"}, {"clickId": click_id, "missionClientId": {}}]
    for body in bodies:
        response = await report(client, key, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == "INVALID_BODY"
        assert response.json()["message"]
    broken = await client.post("/v2/activity", content=b"{pas du json", headers={"x-api-key": key,
                                                                                 "content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["code"] == "INVALID_BODY"
    nested = await client.post("/v2/activity", content=b"[" * 8000 + b"]" * 8000,
                               headers={"x-api-key": key, "content-type": "application/json"})
    assert nested.status_code == 400 and nested.json()["code"] == "INVALID_BODY"
    anonymous = await client.post("/v2/activity", json={"clickId": click_id})
    assert anonymous.status_code == 401
