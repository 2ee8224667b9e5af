"""The write API `/v2/mission`: a partner creates, partially updates and deletes its own missions, reads the
moderation's verdict back, and gets API Engagement's envelope (French messages) for every error — never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.partner_fixtures import create_key, create_partner


def body(client_id: str = "m-1", **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "clientId": client_id, "title": "Maraude du soir à Lyon", "description": "<p>Aller vers les sans-abri</p>",
        "applicationUrl": "https://partenaire.example/missions/1", "domain": "solidarite-insertion",
        "activities": ["Lutte contre l'isolement"], "remote": "no", "places": 4, "openToMinors": False,
        "reducedMobilityAccessible": True, "startAt": "2030-01-15T18:00:00+01:00",
        "addresses": [{"street": "Place Bellecour", "postalCode": "69002", "city": "Lyon",
                       "location": {"lat": 45.7578, "lon": 4.832}}],
        "organizationName": "Samu social de Lyon", "organizationClientId": "ssl",
    }
    values.update(fields)
    return values


@pytest.fixture
async def key(db: asyncpg.Connection) -> str:
    return await create_key(db, await create_partner(db, "Bénévoles en ligne"))


async def test_a_partner_creates_a_mission_and_reads_it_published(client: AsyncTestClient, key: str,
                                                                   db: asyncpg.Connection) -> None:
    response = await client.post("/v2/mission", json=body(), headers={"x-api-key": key})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert response.json()["ok"] is True
    assert (data["clientId"], data["statusCode"], data["statusComment"]) == ("m-1", "ACCEPTED", "")
    assert data["applicationUrl"] == "https://partenaire.example/missions/1"
    assert data["openToMinors"] is False and data["reducedMobilityAccessible"] is True
    assert data["description"] == "<p>Aller vers les sans-abri</p>" and data["places"] == 4
    assert data["organizationName"] == "Samu social de Lyon" and data["deletedAt"] is None
    row = await db.fetchrow("SELECT id, status, description, start_date, activities FROM missions")
    assert data["id"] == str(row["id"])
    assert (row["status"], row["description"], str(row["start_date"]), row["activities"]) == (
        "published", "Aller vers les sans-abri", "2030-01-15", ["lutte-contre-isolement"])
    point = await db.fetchrow("SELECT commune_code, latitude, longitude FROM mission_addresses")
    assert tuple(point) == ("69123", 45.7578, 4.832)


async def test_a_refused_mission_is_stored_and_reported_refused(client: AsyncTestClient, key: str,
                                                                 db: asyncpg.Connection) -> None:
    response = await client.post("/v2/mission", json=body(applicationUrl=""), headers={"x-api-key": key})
    assert response.status_code == 201
    data = response.json()["data"]
    assert (data["statusCode"], data["statusComment"]) == ("REFUSED", "URL de candidature manquant")
    assert await db.fetchval("SELECT status FROM missions") == "draft"


async def test_without_a_valid_key_the_answer_is_401_in_the_envelope(client: AsyncTestClient) -> None:
    for headers in ({}, {"x-api-key": "nope"}):
        response = await client.post("/v2/mission", json=body(), headers=headers)
        assert response.status_code == 401
        assert response.json()["ok"] is False and response.json()["code"] == "UNAUTHORIZED"


async def test_an_existing_client_id_even_deleted_is_a_409(client: AsyncTestClient, key: str) -> None:
    headers = {"x-api-key": key}
    assert (await client.post("/v2/mission", json=body(), headers=headers)).status_code == 201
    again = await client.post("/v2/mission", json=body(), headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "RESSOURCE_ALREADY_EXIST"
    assert "existe déjà" in again.json()["message"]
    assert (await client.delete("/v2/mission/m-1", headers=headers)).status_code == 200
    assert (await client.post("/v2/mission", json=body(), headers=headers)).status_code == 409


async def test_two_concurrent_creations_of_one_client_id_give_one_201_and_one_409(
    client: AsyncTestClient, key: str, db: asyncpg.Connection,
) -> None:
    headers = {"x-api-key": key}
    responses = await asyncio.gather(*[client.post("/v2/mission", json=body("race"), headers=headers)
                                       for _ in range(2)])
    assert sorted(response.status_code for response in responses) == [201, 409]
    assert await db.fetchval("SELECT count(*) FROM missions") == 1


async def test_a_partial_update_changes_only_the_fields_sent_and_moderates_again(
    client: AsyncTestClient, key: str, db: asyncpg.Connection,
) -> None:
    headers = {"x-api-key": key}
    await client.post("/v2/mission", json=body(), headers=headers)
    changed = await client.put("/v2/mission/m-1", json={"places": 9, "title": "Maraude du matin à Lyon"},
                               headers=headers)
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert (data["places"], data["title"], data["statusCode"]) == (9, "Maraude du matin à Lyon", "ACCEPTED")
    assert data["organizationName"] == "Samu social de Lyon" and data["domain"] == "solidarite-insertion"
    refused = await client.put("/v2/mission/m-1", json={"domain": "mobilite"}, headers=headers)
    assert refused.json()["data"]["statusCode"] == "REFUSED"
    assert refused.json()["data"]["statusComment"] == 'Domaine non valide : "mobilite"'
    row = await db.fetchrow("SELECT status, places, title FROM missions")
    assert tuple(row) == ("draft", 9, "Maraude du matin à Lyon")
    fixed = await client.put("/v2/mission/m-1", json={"domain": "sante"}, headers=headers)
    assert fixed.json()["data"]["statusCode"] == "ACCEPTED"
    assert await db.fetchval("SELECT domain FROM missions") == "sante-pour-tous"


async def test_a_referents_suspension_and_a_coordinators_priority_survive_the_partners_updates(
    client: AsyncTestClient, key: str, db: asyncpg.Connection,
) -> None:
    headers = {"x-api-key": key}
    await client.post("/v2/mission", json=body(), headers=headers)
    await db.execute("UPDATE missions SET status = 'suspended', status_reason = 'Contenu à vérifier', priority = true")
    changed = await client.put("/v2/mission/m-1", json={"places": 7}, headers=headers)
    assert changed.status_code == 200, changed.text
    row = await db.fetchrow("SELECT status, status_reason, priority, places FROM missions")
    assert tuple(row) == ("suspended", "Contenu à vérifier", True, 7)
    refused = await client.put("/v2/mission/m-1", json={"domain": "mobilite"}, headers=headers)
    assert refused.json()["data"]["statusCode"] == "REFUSED"
    assert await db.fetchval("SELECT status FROM missions") == "draft"  # refused: offline whatever it was


async def test_updating_an_absent_or_deleted_mission_is_a_404(client: AsyncTestClient, key: str) -> None:
    headers = {"x-api-key": key}
    absent = await client.put("/v2/mission/inconnue", json={"places": 2}, headers=headers)
    assert absent.status_code == 404 and absent.json()["code"] == "NOT_FOUND"
    await client.post("/v2/mission", json=body(), headers=headers)
    await client.delete("/v2/mission/m-1", headers=headers)
    assert (await client.put("/v2/mission/m-1", json={"places": 2}, headers=headers)).status_code == 404


async def test_delete_is_soft_and_idempotent(client: AsyncTestClient, key: str, db: asyncpg.Connection) -> None:
    headers = {"x-api-key": key}
    await client.post("/v2/mission", json=body(), headers=headers)
    first = await client.delete("/v2/mission/m-1", headers=headers)
    assert first.status_code == 200 and first.json()["ok"] is True
    assert first.json()["data"]["clientId"] == "m-1" and first.json()["data"]["deletedAt"]
    again = await client.delete("/v2/mission/m-1", headers=headers)
    assert again.status_code == 200 and again.json()["data"] == first.json()["data"]
    assert tuple(await db.fetchrow("SELECT status, deleted_at IS NOT NULL FROM missions")) == ("cancelled", True)
    never = await client.delete("/v2/mission/jamais", headers=headers)
    assert never.status_code == 404 and never.json()["code"] == "NOT_FOUND"


async def test_another_partner_cannot_touch_my_missions(client: AsyncTestClient, key: str,
                                                         db: asyncpg.Connection) -> None:
    other = {"x-api-key": await create_key(db, await create_partner(db, "Autre"))}
    await client.post("/v2/mission", json=body(), headers={"x-api-key": key})
    assert (await client.put("/v2/mission/m-1", json={"places": 2}, headers=other)).status_code == 404
    assert (await client.delete("/v2/mission/m-1", headers=other)).status_code == 404
    assert (await client.post("/v2/mission", json=body(), headers=other)).status_code == 201


@pytest.mark.parametrize(("raw", "words"), [
    (b"{not json", "n'est pas un JSON valide"),
    (b"[1, 2]", "objet JSON"),
    (b'"texte"', "objet JSON"),
    (json.dumps(body(title=12)).encode(), "« title » doit être du texte"),
    (json.dumps(body(places=True)).encode(), "« places »"),
    (json.dumps(body(addresses="Lyon")).encode(), "« addresses » doit être une liste"),
    (json.dumps(body(clientId=None)).encode(), "« clientId » est obligatoire"),
    (json.dumps({"title": "Sans identifiant du tout"}).encode(), "« clientId » est obligatoire"),
    (json.dumps(body(clientId="a\u0000b")).encode(), "clientId invalide"),
    (json.dumps(body(clientId="x" * 5000)).encode(), "clientId invalide"),
    (b'{"clientId": "deep", "title": "a b", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}", ""),
])
async def test_hostile_bodies_get_a_400_in_french_never_a_500(client: AsyncTestClient, key: str, raw: bytes,
                                                              words: str) -> None:
    response = await client.post("/v2/mission", content=raw,
                                 headers={"x-api-key": key, "content-type": "application/json"})
    assert response.status_code in (400, 201), response.text  # deep nesting in an ignored field may be accepted
    if response.status_code == 400:
        assert response.json()["ok"] is False and response.json()["code"] in ("INVALID_BODY", "INVALID_PARAMS")
        assert words in response.json()["message"]
    else:
        assert not words and response.json()["data"]["statusCode"] == "REFUSED"


async def test_nul_bytes_and_huge_fields_are_refused_by_moderation_not_by_a_crash(
    client: AsyncTestClient, key: str, db: asyncpg.Connection,
) -> None:
    headers = {"x-api-key": key}
    nul = await client.post("/v2/mission", json=body("nul", description="Texte \u0000 nul", title="Titre\u0000 nul"),
                            headers=headers)
    assert nul.status_code == 201 and nul.json()["data"]["statusCode"] == "REFUSED"
    huge = await client.post("/v2/mission", json=body("huge", title="Très " * 1000, schedule="x" * 5000,
                                                      organizationName="O" * 5000), headers=headers)
    assert huge.status_code == 201, huge.text
    assert huge.json()["data"]["statusComment"] == "Le titre est trop long (plus de 150 caractères)"
    assert await db.fetchval("SELECT max(length(schedule)) FROM missions") <= 300
    path = await client.put("/v2/mission/%00", json={"places": 1}, headers=headers)
    assert path.status_code in (400, 404) and path.json()["ok"] is False
