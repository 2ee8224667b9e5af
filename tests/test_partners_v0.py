"""`GET /v0/mission` and `GET /v0/mission/{id}` as API Engagement's partners read them: a key, the envelope, the
mission's wire names, the tracked link, and only what the partner's diffusion rules let through."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from app.settings import Settings
from app.volunteers.age import today
from tests.partner_fixtures import create_key, create_partner


async def organisation(db: asyncpg.Connection, name: str = "Entraide du Rhône", commune: str = "69123", *,
                       partner_id: int | None = None, partner_key: str | None = None, rna: str | None = None,
                       status: str = "validated") -> int:
    return int(await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status,"
        " partner_id, partner_key, rna) SELECT $1, 'association', '1 rue de la Mairie', postal_codes[1], code,"
        " 'Une structure.', $3, $4, $5, $6 FROM communes WHERE code = $2 RETURNING id",
        name, commune, status, partner_id, partner_key, rna,
    ))


async def mission(db: asyncpg.Connection, organisation_id: int, title: str = "Distribution alimentaire", *,
                  communes: tuple[str, ...] = ("69123",), description: str = "Aider à distribuer des colis.",
                  domain: str = "solidarite-insertion", activities: tuple[str, ...] = ("distribution",),
                  remote: bool = False, minors: bool = False, start: date | None = None, end: date | None = None,
                  status: str = "published", partner_id: int | None = None, client_id: str | None = None,
                  deleted: bool = False, created_at: datetime | None = None, places: int = 5) -> int:
    mission_id = int(await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, end_date,"
        " places, open_to_minors, status, partner_id, client_id, application_url, deleted_at, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
        " CASE WHEN $15 THEN now() END, coalesce($16::timestamptz, now())) RETURNING id",
        organisation_id, title, description, domain, list(activities), remote, start, end, places, minors, status,
        partner_id, client_id, "https://partenaire.example/m/1" if partner_id else None, deleted, created_at,
    ))
    for commune in communes:
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " SELECT $1, '2 place de la Mairie', postal_codes[1], code, latitude, longitude FROM communes"
            " WHERE code = $2", mission_id, commune,
        )
    return mission_id


async def reader(db: asyncpg.Connection, name: str = "Plateforme Lectrice", **columns: Any) -> tuple[int, str]:
    partner_id = await create_partner(db, name, **columns)
    return partner_id, await create_key(db, partner_id)


async def listed(client: AsyncTestClient, key: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v0/mission", params=params, headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ids(client: AsyncTestClient, key: str, **params: Any) -> list[int]:
    return [int(item["_id"]) for item in (await listed(client, key, **params))["data"]]


@pytest.mark.parametrize("path", ["/v0/mission", "/v0/mission/1", "/v0/mission/feed.xml"])
async def test_without_a_valid_key_the_api_answers_401(client: AsyncTestClient, db: asyncpg.Connection,
                                                       path: str) -> None:
    await reader(db)
    assert (await client.get(path)).status_code == 401
    response = await client.get(path, headers={"x-api-key": "not-a-key"})
    assert response.status_code == 401
    assert response.json()["ok"] is False and response.json()["code"] == "UNAUTHORIZED"


async def test_a_mission_reads_in_api_engagement_names_with_the_tracked_link(
        client: AsyncTestClient, db: asyncpg.Connection, settings: Settings) -> None:
    partner_id, key = await reader(db)
    org = await organisation(db, rna="W691234567")
    start = date(today().year + 1, 3, 14)
    mission_id = await mission(db, org, start=start, end=date(start.year, 6, 30), minors=True,
                               activities=("distribution", "logistique"), domain="sante-pour-tous",
                               communes=("69123", "69266"))
    body = await listed(client, key)
    assert (body["ok"], body["total"], body["limit"], body["skip"]) == (True, 1, 25, 0)
    item = body["data"][0]
    assert item["_id"] == item["clientId"] == str(mission_id)
    assert item["title"] == "Distribution alimentaire"
    assert item["applicationUrl"] == f"{settings.base_url}/r/{mission_id}/{partner_id}"
    assert item["domain"] == "sante"
    assert item["activity"] == "Distribution, Logistique"
    assert (item["type"], item["remote"], item["openToMinors"]) == ("benevolat", "no", "yes")
    assert (item["places"], item["deleted"], item["statusCode"]) == (5, False, "ACCEPTED")
    assert item["startAt"] == f"{start.isoformat()}T00:00:00.000Z"
    assert item["endAt"] == f"{start.year}-06-30T00:00:00.000Z"
    assert item["createdAt"].endswith("Z") and item["updatedAt"].endswith("Z")
    assert (item["publisherId"], item["publisherName"]) == ("renfort", "Renfort")
    assert (item["organizationName"], item["organizationRNA"]) == ("Entraide du Rhône", "W691234567")
    assert item["organizationClientId"] == str(org)
    lyon, villeurbanne = item["addresses"]
    assert lyon["city"] == "Lyon" and lyon["postalCode"].startswith("690")
    assert (lyon["departmentCode"], lyon["departmentName"]) == ("69", "Rhône")
    assert lyon["region"] == "Auvergne-Rhône-Alpes" and lyon["country"] == "FR"
    assert 45.7 < lyon["location"]["lat"] < 45.8 and 4.8 < lyon["location"]["lon"] < 4.9
    assert villeurbanne["city"] == "Villeurbanne"
    assert (item["city"], item["postalCode"], item["departmentCode"]) == ("Lyon", lyon["postalCode"], "69")
    assert (item["departmentName"], item["country"], item["location"]) == ("Rhône", "FR", lyon["location"])

    one = await client.get(f"/v0/mission/{mission_id}", headers={"x-api-key": key})
    assert one.status_code == 200
    assert one.json() == {"ok": True, "data": item}


async def test_a_partners_mission_shows_its_own_ids_and_publisher(client: AsyncTestClient,
                                                                  db: asyncpg.Connection) -> None:
    _, key = await reader(db, diffuses_partner_missions=True)
    publisher = await create_partner(db, "Plateforme Éditrice")
    org = await organisation(db, "Les Amis du Parc", partner_id=publisher, partner_key="id:asso-7")
    mission_id = await mission(db, org, partner_id=publisher, client_id="abc-123", remote=True)
    item = (await listed(client, key))["data"][0]
    assert item["_id"] == str(mission_id)
    assert (item["clientId"], item["organizationClientId"]) == ("abc-123", "asso-7")
    assert (item["publisherId"], item["publisherName"]) == (str(publisher), "Plateforme Éditrice")
    assert item["remote"] == "full"
    assert item["applicationUrl"].endswith(f"/r/{mission_id}/{item['applicationUrl'].rsplit('/', 1)[1]}")


async def test_only_online_diffused_missions_are_returned(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    partner_id, key = await reader(db, diffusion_domains=["sante-pour-tous"], diffusion_departments=["69"],
                                   diffuses_partner_missions=True)
    _, closed_key = await reader(db, "Plateforme sans partenaires")
    org = await organisation(db)
    shared = await mission(db, org, domain="sante-pour-tous")
    await mission(db, org, domain="solidarite-insertion")  # outside its domains
    shared_elsewhere = await mission(db, org, domain="sante-pour-tous", communes=("38185",))  # not in its departments
    await mission(db, org, domain="sante-pour-tous", status="draft")
    await mission(db, org, domain="sante-pour-tous", status="finished")
    offline = await organisation(db, "Structure suspendue", status="suspended")
    await mission(db, offline, domain="sante-pour-tous")
    other = await create_partner(db, "Plateforme Éditrice")
    other_org = await organisation(db, "Asso partenaire", partner_id=other, partner_key="id:1")
    theirs = await mission(db, other_org, partner_id=other, client_id="live")
    await mission(db, other_org, partner_id=other, client_id="gone", status="cancelled", deleted=True)
    await mission(db, other_org, partner_id=other, client_id="refused", status="draft")
    own_org = await organisation(db, "Sa propre asso", partner_id=partner_id, partner_key="id:2")
    own = await mission(db, own_org, partner_id=partner_id, client_id="mine")  # never its own back
    assert sorted(await ids(client, key)) == sorted([shared, theirs])
    for hidden in (own,):
        response = await client.get(f"/v0/mission/{hidden}", headers={"x-api-key": key})
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND" and "introuvable" in response.json()["message"]

    assert sorted(await ids(client, closed_key, domain="sante")) == sorted([shared, shared_elsewhere])
    assert (await client.get(f"/v0/mission/{theirs}", headers={"x-api-key": closed_key})).status_code == 404


@pytest.mark.parametrize("path", ["/v0/mission/0", "/v0/mission/abc", "/v0/mission/99999999999999999999",
                                  "/v0/mission/%00", "/v0/mission/12345"])
async def test_an_unknown_mission_is_a_404_envelope(client: AsyncTestClient, db: asyncpg.Connection,
                                                    path: str) -> None:
    _, key = await reader(db)
    response = await client.get(path, headers={"x-api-key": key})
    assert response.status_code == 404
    assert response.json()["ok"] is False and response.json()["code"] == "NOT_FOUND"


async def test_pagination_keeps_the_total_and_the_order(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    _, key = await reader(db)
    org = await organisation(db)
    year = today().year + 1
    made = [await mission(db, org, f"Mission numéro {day}", start=date(year, 1, day)) for day in range(1, 8)]
    undated = await mission(db, org, "Mission sans date")
    first = await listed(client, key, limit=3)
    assert (first["total"], first["limit"], first["skip"]) == (8, 3, 0)
    assert [int(item["_id"]) for item in first["data"]] == made[::-1][:3]  # startAt descending
    last = await listed(client, key, limit=3, skip=6)
    assert [int(item["_id"]) for item in last["data"]] == [made[0], undated]  # undated last
    beyond = await listed(client, key, limit=3, skip=50)
    assert (beyond["total"], beyond["data"]) == (8, [])
    assert (await listed(client, key, limit=0))["total"] == 8


async def test_the_openapi_schema_documents_the_partner_routes(client: AsyncTestClient) -> None:
    schema = (await client.get("/api/schema/openapi.json")).json()
    listing = schema["paths"]["/v0/mission"]["get"]
    names = {parameter["name"] for parameter in listing["parameters"]}
    assert {"limit", "skip", "domain", "activity", "city", "departmentCode", "keywords", "createdAt", "startAt",
            "lat", "lon", "distance"} <= names
    assert listing["security"] == [{"x-api-key": []}]
    assert {"200", "400", "401", "429"} <= set(listing["responses"])
    assert "/v0/mission/{mission_id}" in schema["paths"] and "/v0/mission/feed.xml" in schema["paths"]
    scheme = schema["components"]["securitySchemes"]["x-api-key"]
    assert (scheme["type"], scheme["name"], scheme["in"]) == ("apiKey", "x-api-key", "header")
    assert {"MissionV0", "ErrorV0"} <= {name.rsplit(".", 1)[-1].split("_")[-1] for name in
                                        schema["components"]["schemas"]}
