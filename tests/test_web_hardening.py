"""The web tier's edges: request bodies are bounded before anything parses them (the CSRF check included), the CSRF
exemption of the API is anchored, every search parameter is checked and cached variants stay bounded (an unknown
postal code costs no SQL and no cache entry), and a revoked role stops working at the next request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import event

from app.main import MAX_BODY, create_app
from app.missions import search
from app.settings import Settings
from surge.emergencies import page
from tests.test_coordination import add_emergency
from tests.test_organisations import register, sign_in
from tests.test_signin import csrf_token

FORM = {"content-type": "application/x-www-form-urlencoded"}
TOO_LARGE = "La requête est trop volumineuse."


@contextmanager
def statements(client: AsyncTestClient) -> Iterator[list[str]]:
    """The SQL the client's app sends to PostgreSQL while the block runs."""
    sent: list[str] = []
    engine = client.app.state.web.engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


# Request bodies ---------------------------------------------------------------------------------------------------


async def test_a_five_megabyte_form_is_refused_with_413_before_the_csrf_check_reads_it(client: AsyncTestClient) -> None:
    body = b"_csrf_token=x&notes=" + b"x" * 5_000_000  # under Litestar's own default of 10 MB
    response = await client.post("/missions/1/statut/publier", content=body, headers=FORM)
    assert response.status_code == 413 and TOO_LARGE in response.text  # not the CSRF 403: the limit came first
    api = await client.post("/api/v1/volunteers", content=b'{"a": "' + b"x" * 200_000 + b'"}',
                            headers={"content-type": "application/json"})
    assert api.status_code == 413 and api.json() == {"error": TOO_LARGE}


@pytest.mark.parametrize("path", ["/mon-espace", "/missions/999999-x", "/nulle-part", "/missions"])
async def test_a_host_header_with_an_impossible_port_is_never_a_500(client: AsyncTestClient, path: str) -> None:
    response = await client.get(path, headers={"Host": "renfort.example:99999999",
                                               "Referer": "http://renfort.example:99999999/missions"},
                                follow_redirects=False)
    assert response.status_code < 500, response.text


async def test_a_chunked_body_without_length_is_cut_off_at_the_limit(settings: Settings) -> None:
    """Straight through ASGI, so the body arrives in chunks as a server hands them over: reading stops at the limit."""
    app = create_app(settings)
    chunk, handed, sent = b"x" * 16_384, [0], []

    async def receive() -> dict[str, Any]:
        if handed[0] >= 10_000_000:
            return {"type": "http.request", "body": b"", "more_body": False}
        handed[0] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/missions/1/statut/publier", "raw_path": b"/missions/1/statut/publier", "query_string": b"",
             "root_path": "", "headers": [(b"content-type", FORM["content-type"].encode())],
             "client": ("127.0.0.1", 1), "server": ("testserver", 80), "state": {}}
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert handed[0] <= MAX_BODY + len(chunk)


# CSRF -------------------------------------------------------------------------------------------------------------


async def test_a_signed_in_post_whose_path_merely_contains_api_still_needs_its_csrf_token(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    path = "/coordination/urgences/api/statut/clore"  # a real route: the emergency whose address is "api"
    forged = await client.post(path, data={}, follow_redirects=False)
    assert forged.status_code == 403 and "Votre session a expiré" in forged.text.replace("&#39;", "'")
    token = csrf_token((await client.get("/coordination/urgences/nouvelle")).text)
    genuine = await client.post(path, data={"_csrf_token": token}, follow_redirects=False)
    assert genuine.status_code == 404  # past the CSRF check: there is no such emergency


# Emergency page variants ----------------------------------------------------------------------------------------


async def test_unknown_postal_codes_share_one_variant_of_the_emergency_page_and_cost_no_sql(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await add_emergency(db, "crues-aude", ["11"])
    first = await client.get("/urgence/crues-aude", params={"code_postal": "99999"})
    assert first.status_code == 200 and page.ERRORS[page.UNKNOWN] in first.text
    with statements(client) as sent:  # another unknown code: the same variant, already built
        other = await client.get("/urgence/crues-aude", params={"code_postal": "99998"})
    assert other.status_code == 200 and page.ERRORS[page.UNKNOWN] in other.text and sent == []
    # Digits of another script, or a trailing character, are not a postal code.
    for typed in ("١١٠٠٠", "11000x", "1100"):
        response = await client.get("/urgence/crues-aude", params={"code_postal": typed})
        assert page.ERRORS[page.MALFORMED] in response.text
    known = await client.get("/urgence/crues-aude", params={"code_postal": "11000"})
    assert known.status_code == 200 and page.ERRORS[page.UNKNOWN] not in known.text
    entries = {key.decode().rpartition(":")[2] for key in await redis.keys("renfort:pages:urgence:crues-aude:*")
               if not key.endswith((b":fresh", b":lock"))}
    assert entries == {page.UNKNOWN, page.MALFORMED, "11000"}


async def test_a_hit_on_the_emergency_page_runs_no_sql(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    await add_emergency(db, "crues-aude", ["11"])
    assert (await client.get("/urgence/crues-aude", params={"code_postal": "11000"})).status_code == 200
    with statements(client) as sent:
        for _ in range(5):
            assert (await client.get("/urgence/crues-aude", params={"code_postal": "11 000"})).status_code == 200
    assert sent == []


# Search parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x1f", "\x7f", "\u200b"])
async def test_a_control_character_in_any_search_parameter_is_a_422_with_a_french_message(
    client: AsyncTestClient, character: str
) -> None:
    for field in search.SearchQuery.__struct_fields__:
        response = await client.get("/api/v1/missions", params={field: f"69{character}003"})
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"] == {field: search.UNSAFE}
    page_response = await client.get("/missions", params={"domain": f"san{character}te"})
    assert page_response.status_code == 422 and search.UNSAFE in page_response.text


async def test_search_parameters_take_bounded_values_only(client: AsyncTestClient, redis: Redis) -> None:
    refused = {
        "postal_code": "99999", "radius_km": "12", "page": "101", "per_page": "٣", "department": "00",
        "emergency": "x" * 101, "date_from": "2999-01-01", "commune_code": "99999", "lat": "91",
    }
    with statements(client) as sent:
        for field, value in refused.items():
            response = await client.get("/api/v1/missions", params={field: value})
            assert response.status_code == 422 and field in response.json()["errors"], (field, response.text)
    assert sent == [] and await redis.keys("renfort:missions:search:*") == []
    assert (await client.get("/api/v1/missions", params={"postal_code": "99999"})).json()["errors"] == {
        "postal_code": search.UNKNOWN_POSTAL_CODE}
    # Nearby points (to ~1 km) are one query, so one cache entry.
    for lat, lon in (("45.7601", "4.8301"), ("45.7649", "4.8349"), ("45,764", "4,83")):
        near = await client.get("/api/v1/missions", params={"lat": lat, "lon": lon, "radius_km": "10"})
        assert near.status_code == 200
    assert len([key for key in await redis.keys("renfort:missions:search:*") if key.endswith(b"}")]) == 1


# Roles ----------------------------------------------------------------------------------------------------------


async def test_a_revoked_coordination_stops_working_at_the_next_request(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    user_id = await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    assert (await client.get("/coordination")).status_code == 200
    assert (await client.get("/coordination/urgences")).status_code == 200
    await db.execute("DELETE FROM coordinator_scopes WHERE user_id = $1", user_id)
    assert (await client.get("/coordination")).status_code == 403
    assert (await client.get("/coordination/urgences/nouvelle")).status_code == 403
    assert "Coordination départementale" not in (await client.get("/mon-espace")).text  # the session follows
    # And a role granted after sign-in works at once.
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, NULL)", user_id)
    assert (await client.get("/coordination")).status_code == 200


async def test_revoked_management_and_administration_stop_working_at_the_next_request(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    user_id = await sign_in(client, redis, db, "admin@example.org", admin=True)
    organisation_id, _ = await register(client)
    assert (await client.get(f"/organisations/{organisation_id}/modifier")).status_code == 200
    assert (await client.get("/moderation/organisations")).status_code == 200
    await db.execute("DELETE FROM organisation_managers WHERE user_id = $1", user_id)
    assert (await client.get(f"/organisations/{organisation_id}/modifier")).status_code == 403
    assert (await client.get(f"/organisations/{organisation_id}/missions/nouvelle")).status_code == 403
    await db.execute("UPDATE users SET is_admin = false WHERE id = $1", user_id)
    assert (await client.get("/moderation/organisations")).status_code == 403
    await db.execute("DELETE FROM users WHERE id = $1", user_id)
    gone = await client.get("/moderation/organisations", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == "/connexion?suite=%2Fmoderation%2Forganisations"
