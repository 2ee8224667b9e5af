"""The sign-up API: accept into Redis only, answer at once, reveal nothing, and land in PostgreSQL exactly once."""

from __future__ import annotations

import asyncio

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.volunteers.signup_queue import PENDING
from ops.services import MailSink
from tests.conftest import run_worker
from tests.factories import signup
from tests.helpers import wait_for_fresh_minute

API = "/api/v1/volunteers"


async def test_valid_signup_is_accepted_with_a_receipt(client: AsyncTestClient, redis: Redis) -> None:
    response = await client.post(API, json=signup())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted" and len(body["receipt"]) >= 20
    assert await redis.llen(PENDING) == 1
    receipt = await client.get(f"/api/v1/receipts/{body['receipt']}")
    assert receipt.json() == {"receipt": body["receipt"], "status": "queued"}


async def test_invalid_signup_gets_422_with_a_french_message_per_field(client: AsyncTestClient, redis: Redis) -> None:
    response = await client.post(API, json=signup(email="pas-une-adresse", birth_date="2015-01-01", consent=False))
    assert response.status_code == 422
    assert response.json() == {
        "errors": {
            "email": "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr.",
            "birth_date": "Il faut avoir au moins 16 ans pour s'inscrire.",
            "consent": "Vous devez accepter que vos données servent à vous proposer des missions pour vous inscrire.",
        }
    }
    assert await redis.llen(PENDING) == 0


async def test_malformed_bodies_get_a_structured_error_not_a_500(client: AsyncTestClient) -> None:
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        response = await client.post(API, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert "body" in response.json()["errors"]
    too_big = await client.post(API, content=b"{" + b" " * 40_000 + b"}", headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert "error" in too_big.json()


async def test_signup_is_saved_once_and_welcomed_by_email(
    client: AsyncTestClient, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    body = signup(email="Camille.Durand@Example.org")
    receipt = (await client.post(API, json=body)).json()["receipt"]
    run_worker({"SMTP_URL": mail_sink.url})
    row = await db.fetchrow("SELECT * FROM volunteers WHERE email_normalized = 'camille.durand@example.org'")
    assert row["receipt"] == receipt
    assert row["commune_code"] == "69123" and row["phone"] == "+33612345678"
    assert row["domains"] == ["solidarite-insertion"] and row["emergency_slug"] == "covid-19"
    assert row["consent_at"] is not None
    assert (await client.get(f"/api/v1/receipts/{receipt}")).json()["status"] == "saved"
    [mail] = mail_sink.messages()
    assert mail["To"] == "camille.durand@example.org"  # the validated, normalised address
    assert mail["Subject"] == "Bienvenue sur Renfort, votre inscription est enregistrée"
    assert "Bonjour Ana" in mail.get_content()


async def test_repeat_signup_looks_the_same_and_sends_a_reminder_instead(
    client: AsyncTestClient, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    first = await client.post(API, json=signup(email="lea@example.org"))
    second = await client.post(API, json=signup(email=" LEA@example.org", first_name="Autre"))
    # Same status, same shape: the answer never tells whether the address was known.
    assert first.status_code == second.status_code == 202
    assert first.json().keys() == second.json().keys()
    assert first.json()["receipt"] != second.json()["receipt"]
    run_worker({"SMTP_URL": mail_sink.url})
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email_normalized = 'lea@example.org'") == 1
    assert await db.fetchval("SELECT first_name FROM volunteers") == "Ana"
    for receipt in (first.json()["receipt"], second.json()["receipt"]):
        assert (await client.get(f"/api/v1/receipts/{receipt}")).json()["status"] == "saved"
    subjects = sorted(message["Subject"] for message in mail_sink.messages())
    assert subjects == [
        "Bienvenue sur Renfort, votre inscription est enregistrée",
        "Vous êtes déjà inscrit·e sur Renfort",
    ]


async def test_idempotency_key_makes_a_client_retry_safe(client: AsyncTestClient, redis: Redis) -> None:
    body = signup()
    headers = {"Idempotency-Key": "retry-42"}
    first = await client.post(API, json=body, headers=headers)
    again = await client.post(API, json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert await redis.llen(PENDING) == 1


async def test_honeypot_signups_are_answered_like_people_and_dropped(client: AsyncTestClient, redis: Redis) -> None:
    response = await client.post(API, json=signup(website="http://spam.example"))
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    assert await redis.llen(PENDING) == 0


async def test_past_the_per_address_limit_signups_are_still_accepted_but_held_back_unconfirmed(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    """Thousands of phones share one public address behind a mobile carrier: nobody is turned away."""
    limit = client.app.state.web.settings.signup_ip_limit_per_minute
    wait_for_fresh_minute(30)  # 120 sign-ups take seconds on a busy machine
    answers = [await client.post(API, json=signup(email=f"phone.{n}@example.org")) for n in range(limit + 3)]
    assert {answer.status_code for answer in answers} == {202}
    assert {tuple(answer.json()) for answer in answers} == {("receipt", "status")}  # nothing tells them apart
    assert await redis.llen(PENDING) == limit + 3
    run_worker()
    held_back = await db.fetch("SELECT email FROM volunteers WHERE unconfirmed ORDER BY id")
    assert [row["email"] for row in held_back] == [f"phone.{n}@example.org" for n in range(limit, limit + 3)]
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE NOT unconfirmed") == limit


async def test_an_idempotency_key_replays_only_the_same_body(client: AsyncTestClient, redis: Redis) -> None:
    headers = {"Idempotency-Key": "form-7"}
    first = await client.post(API, json=signup(email="one@example.org"), headers=headers)
    again = await client.post(API, json=signup(email="one@example.org"), headers=headers)
    other = await client.post(API, json=signup(email="two@example.org"), headers=headers)
    assert first.status_code == again.status_code == 202 and again.json()["receipt"] == first.json()["receipt"]
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["errors"]["idempotency_key"]
    for hostile in ("k" * 201, "key\x00"):
        refused = await client.post(API, json=signup(email="three@example.org"), headers={"Idempotency-Key": hostile})
        assert refused.status_code == 422 and "Idempotency-Key" in refused.json()["errors"]["idempotency_key"]
    assert await redis.llen(PENDING) == 1


async def test_a_full_queue_answers_503_with_retry_after_rather_than_timing_out(
    client: AsyncTestClient, redis: Redis
) -> None:
    await redis.rpush(PENDING, *[b"{}"] * 3)
    client.app.state.web.intake.backlog_limit = 3
    response = await client.post(API, json=signup())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "30"
    assert await redis.llen(PENDING) == 3


async def test_unknown_receipts_are_404(client: AsyncTestClient) -> None:
    response = await client.get("/api/v1/receipts/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "Cette page n'existe pas ou plus."}


async def test_communes_of_a_postal_code_are_listed_for_the_form(client: AsyncTestClient) -> None:
    assert (await client.get("/api/v1/communes", params={"postal_code": "69100"})).json() == [
        {"code": "69266", "name": "Villeurbanne"}
    ]
    assert len((await client.get("/api/v1/communes", params={"postal_code": "51300"})).json()) > 10


async def test_readiness_reports_dependencies_and_queue(client: AsyncTestClient) -> None:
    await client.post(API, json=signup())
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["postgresql"] == "ok" and body["redis"] == "ok"
    assert body["queue"]["signups_pending"] == 1
    assert body["queue"]["oldest_pending_seconds"] >= 0
    metrics = await client.get("/metrics", headers={"Authorization": "Bearer ops-test-token"})
    assert "renfort_signups_pending 1" in metrics.text


async def test_simultaneous_signups_each_get_their_own_answer(client: AsyncTestClient, redis: Redis) -> None:
    """Sign-ups arriving together share one Redis call; each still gets its own receipt and outcome."""
    bodies = [signup() for _ in range(40)]
    same_person = signup(email="twin@example.org")
    retried = signup()
    requests = [client.post(API, json=body) for body in bodies]
    requests += [client.post(API, json=same_person), client.post(API, json={**same_person, "first_name": "Autre"})]
    requests += [client.post(API, json=retried, headers={"Idempotency-Key": "k1"}) for _ in range(3)]
    responses = await asyncio.gather(*requests)
    assert {response.status_code for response in responses} == {202}
    receipts = [response.json()["receipt"] for response in responses]
    assert len(set(receipts[:42])) == 42  # everyone distinct, the repeat of twin@ included
    assert len(set(receipts[42:])) == 1  # the three retries of one request: one receipt
    # 40 + twin + its repeat (a marker, no personal data) + one for the retried request.
    assert await redis.llen(PENDING) == 43
