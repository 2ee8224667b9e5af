"""Accounts: passwordless sign-in by e-mail link, sessions in Redis shared by web processes, limits and role guards."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.connection import ASGIConnection
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import guards, tokens
from app.accounts.guards import RoleRequired, SignInRequired
from app.db.base import make_engine
from app.main import create_app
from app.settings import Settings
from ops.services import MailSink
from queues.connection import job_queue, sync_redis
from tests.conftest import REDIS_URL, TEST_ENV, run_worker
from tests.factories import signup
from tests.helpers import wait_for_fresh_minute

SENT = "Si cette adresse est connue, vous allez recevoir un lien de connexion valable 15 minutes."
LINK_SUBJECT = "Votre lien de connexion à Renfort"
UNKNOWN_SUBJECT = "Votre demande de connexion à Renfort"
COOKIE = "renfort_session"


def csrf_token(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match[1]


async def ask_for_link(client: AsyncTestClient, email: str) -> Any:
    page = await client.get("/connexion")
    return await client.post("/connexion", data={"email": email, "_csrf_token": csrf_token(page.text)})


async def sign_up(client: AsyncTestClient, mail_sink: MailSink, email: str) -> None:
    assert (await client.post("/api/v1/volunteers", json=signup(email=email))).status_code == 202
    run_worker({"SMTP_URL": mail_sink.url})


def mails(mail_sink: MailSink, subject: str) -> list[Any]:
    return [message for message in mail_sink.messages() if message["Subject"] == subject]


def token_in(message: Any) -> str:
    match = re.search(r"/connexion/lien\?jeton=(\S+)", message.get_content())
    assert match, "no sign-in link in the e-mail"
    return match[1]


async def confirm(client: AsyncTestClient, token: str) -> Any:
    page = await client.get("/connexion/lien", params={"jeton": token})
    assert page.status_code == 200, page.text
    return await client.post(
        "/connexion/lien", data={"jeton": token, "_csrf_token": csrf_token(page.text)}, follow_redirects=False
    )


async def signed_in_client(client: AsyncTestClient, mail_sink: MailSink, email: str, **env: str) -> str:
    """Signs `email` in through the real e-mail; returns the link's token."""
    assert (await ask_for_link(client, email)).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url, **env})
    token = token_in(mails(mail_sink, LINK_SUBJECT)[-1])
    response = await confirm(client, token)
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
    return token


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Any]:
    """Builds clients over their own `create_app()`, as separate web processes would be."""
    clients: list[AsyncTestClient] = []

    async def build(**overrides: Any) -> AsyncTestClient:
        client = AsyncTestClient(app=create_app(dataclasses.replace(settings, **overrides)))
        await client.__aenter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.__aexit__(None, None, None)


async def test_volunteer_signs_in_with_the_emailed_link_and_signs_out(
    client: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection, redis: Redis
) -> None:
    await sign_up(client, mail_sink, "Camille.Durand@Example.org")
    response = await ask_for_link(client, "  camille.durand@example.org ")
    assert response.status_code == 200 and SENT in response.text
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mails(mail_sink, LINK_SUBJECT)
    assert mail["To"] == "camille.durand@example.org"
    assert "valable 15 minutes" in mail.get_content()

    assert (await confirm(client, token_in(mail))).status_code == 303
    space = await client.get("/mon-espace")
    assert space.status_code == 200
    assert "camille.durand@example.org" in space.text and "Bénévole" in space.text
    assert space.headers["cache-control"] == "no-store"
    user = await db.fetchrow("SELECT * FROM users")
    assert user["email_normalized"] == "camille.durand@example.org" and user["last_sign_in_at"] is not None

    signed_out = await client.post(
        "/deconnexion", data={"_csrf_token": csrf_token(space.text)}, follow_redirects=False
    )
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/connexion?deconnexion=1"
    assert signed_out.headers["set-cookie"].startswith("renfort_session=null;")  # the browser drops the cookie
    assert await redis.keys("renfort:sessions:*") == []  # the session is gone, not replaced by an empty one
    after = await client.get("/mon-espace", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == "/connexion?suite=%2Fmon-espace"


async def test_unknown_address_gets_the_same_answer_and_an_invitation_instead_of_a_link(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_up(client, mail_sink, "known@example.org")
    known = await ask_for_link(client, "known@example.org")
    unknown = await ask_for_link(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    strip = re.compile(r'name="_csrf_token" value="[^"]+"')
    assert strip.sub("", known.text) == strip.sub("", unknown.text)
    # Both requests did the same work: one request record and one queued job each, no address in the payloads.
    assert len(await redis.keys(tokens.request_key("*"))) == 2
    jobs = job_queue(sync_redis(REDIS_URL)).jobs
    assert [job.func_name for job in jobs] == ["queues.mail.send_signin_mail"] * 2
    assert not any("example.org" in repr(job.kwargs) for job in jobs)

    run_worker({"SMTP_URL": mail_sink.url})
    [invitation] = mails(mail_sink, UNKNOWN_SUBJECT)
    assert invitation["To"] == "nobody@example.org"
    assert "/inscription" in invitation.get_content() and "jeton" not in invitation.get_content()
    assert [mail["To"] for mail in mails(mail_sink, LINK_SUBJECT)] == ["known@example.org"]
    assert await db.fetchval("SELECT count(*) FROM users") == 0  # users appear at the first sign-in, not before


async def test_a_sign_in_link_works_only_once(client: AsyncTestClient, mail_sink: MailSink) -> None:
    await sign_up(client, mail_sink, "once@example.org")
    token = await signed_in_client(client, mail_sink, "once@example.org")
    again_page = await client.get("/connexion/lien", params={"jeton": token})
    assert again_page.status_code == 410
    assert "a expiré ou a déjà servi" in again_page.text and 'href="/connexion"' in again_page.text
    page = await client.get("/connexion")
    again = await client.post("/connexion/lien", data={"jeton": token, "_csrf_token": csrf_token(page.text)})
    assert again.status_code == 410


async def test_concurrent_uses_of_one_link_sign_in_exactly_once(
    client: AsyncTestClient, mail_sink: MailSink, make_client: Any
) -> None:
    await sign_up(client, mail_sink, "race@example.org")
    assert (await ask_for_link(client, "race@example.org")).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url})
    token = token_in(mails(mail_sink, LINK_SUBJECT)[-1])
    others = [await make_client() for _ in range(4)]
    forms = [(other, csrf_token((await other.get("/connexion")).text)) for other in others]
    responses = await asyncio.gather(
        *[
            other.post("/connexion/lien", data={"jeton": token, "_csrf_token": csrf}, follow_redirects=False)
            for other, csrf in forms
        ]
    )
    assert sorted(response.status_code for response in responses) == [303, 410, 410, 410]


async def test_an_expired_link_is_refused_with_a_way_to_ask_for_a_new_one(
    client: AsyncTestClient, mail_sink: MailSink
) -> None:
    await sign_up(client, mail_sink, "late@example.org")
    assert (await ask_for_link(client, "late@example.org")).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url, "SIGNIN_LINK_TTL_SECONDS": "1"})
    token = token_in(mails(mail_sink, LINK_SUBJECT)[-1])
    await asyncio.sleep(1.5)
    page = await client.get("/connexion/lien", params={"jeton": token})
    assert page.status_code == 410
    assert "Demander un nouveau lien" in page.text
    form = await client.get("/connexion")
    refused = await client.post("/connexion/lien", data={"jeton": token, "_csrf_token": csrf_token(form.text)})
    assert refused.status_code == 410
    assert (await client.get("/mon-espace", follow_redirects=False)).status_code == 303


async def test_forged_or_altered_links_are_refused_not_crashing(client: AsyncTestClient, redis: Redis) -> None:
    secret = TEST_ENV["SECRET_KEY"]
    token_id, expiry = tokens.new_id(), int(time.time()) + 900
    await redis.set(tokens.link_key(token_id), b'{"email": "x@example.org", "email_normalized": "x@example.org"}')
    genuine = tokens.mint(secret, token_id, expiry)
    forged = [
        tokens.mint("another-secret-key-of-at-least-32-characters", token_id, expiry),
        genuine.replace(f".{expiry}.", f".{expiry + 86_400}."),  # a longer life, same signature
        genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),
        "not-a-token",
        "a.b.c",
        "",
        "x" * 500,
    ]
    form = await client.get("/connexion")
    for token in forged:
        page = await client.get("/connexion/lien", params={"jeton": token})
        assert page.status_code == 400, token
        assert "pas valide" in page.text
        posted = await client.post("/connexion/lien", data={"jeton": token, "_csrf_token": csrf_token(form.text)})
        assert posted.status_code == 400
    assert await redis.exists(tokens.link_key(token_id))  # nothing consumed the genuine link


async def test_too_many_sign_in_requests_from_one_address_get_429_with_retry_after(make_client: Any) -> None:
    wait_for_fresh_minute()
    client = await make_client(signin_ip_limit_per_minute=3)
    for number in range(3):
        assert (await ask_for_link(client, f"person{number}@example.org")).status_code == 200
    refused = await ask_for_link(client, "person9@example.org")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "Trop de demandes de connexion" in refused.text
    assert job_queue(sync_redis(REDIS_URL)).count == 3


async def test_too_many_requests_for_one_email_look_the_same_and_send_nothing_more(
    make_client: Any, mail_sink: MailSink
) -> None:
    client = await make_client(signin_email_limit_per_hour=2)
    answers = [await ask_for_link(client, "Flood@Example.org") for _ in range(4)]
    assert {answer.status_code for answer in answers} == {200}
    assert all(SENT in answer.text for answer in answers)
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(mails(mail_sink, UNKNOWN_SUBJECT)) == 2


async def test_a_session_started_on_one_web_process_works_on_another(
    mail_sink: MailSink, make_client: Any
) -> None:
    first, second = await make_client(), await make_client()
    await sign_up(first, mail_sink, "shared@example.org")
    await signed_in_client(first, mail_sink, "shared@example.org")
    second.cookies.set(COOKIE, first.cookies[COOKIE], domain="testserver.local")
    space = await second.get("/mon-espace")
    assert space.status_code == 200 and "shared@example.org" in space.text
    await second.post("/deconnexion", data={"_csrf_token": csrf_token(space.text)})
    assert (await first.get("/mon-espace", follow_redirects=False)).status_code == 303  # signed out everywhere


async def test_signing_in_replaces_a_session_id_planted_beforehand(
    client: AsyncTestClient, mail_sink: MailSink, make_client: Any
) -> None:
    attacker = await make_client()
    await sign_up(client, mail_sink, "victim@example.org")
    await sign_up(client, mail_sink, "attacker@example.org")
    await signed_in_client(attacker, mail_sink, "attacker@example.org")
    planted = attacker.cookies[COOKIE]
    client.cookies.set(COOKIE, planted, domain="testserver.local")
    await signed_in_client(client, mail_sink, "victim@example.org")
    assert client.cookies[COOKIE] != planted
    assert "victim@example.org" not in (await attacker.get("/mon-espace")).text


async def test_anonymous_visits_and_the_signup_api_create_no_session(client: AsyncTestClient, redis: Redis) -> None:
    for path in ("/inscription", "/connexion", "/health"):
        response = await client.get(path)
        assert response.status_code == 200 and COOKIE not in response.headers.get("set-cookie", "")
    assert (await client.post("/api/v1/volunteers", json=signup())).status_code == 202
    assert await redis.keys("renfort:sessions*") == []


async def test_sign_in_form_without_csrf_token_is_refused(client: AsyncTestClient) -> None:
    await client.get("/connexion")
    response = await client.post("/connexion", data={"email": "someone@example.org"})
    assert response.status_code == 403
    assert job_queue(sync_redis(REDIS_URL)).count == 0


async def test_an_invalid_address_gets_a_french_message_on_the_form(client: AsyncTestClient) -> None:
    response = await ask_for_link(client, "pas-une-adresse")
    assert response.status_code == 422
    assert "Saisissez une adresse e-mail valide" in response.text
    assert job_queue(sync_redis(REDIS_URL)).count == 0


def connection_with(
    session: dict[str, Any], app: Any = None, **path_params: str
) -> ASGIConnection[Any, Any, Any, Any]:
    scope: Any = {"type": "http", "session": session, "path_params": path_params, "headers": [], "state": {},
                  "app": app, "litestar_app": app}
    return ASGIConnection(scope)


async def session_of(client: AsyncTestClient, redis: Redis) -> dict[str, Any]:
    raw = await redis.get(f"renfort:sessions:{client.cookies[COOKIE]}")
    assert raw is not None
    data: dict[str, Any] = msgspec.json.decode(raw)
    return data


@pytest.fixture
async def here(settings: Settings) -> AsyncIterator[Any]:
    """What the guards read of the app (its engine, on the real database), built on the test's own event loop: the
    test client runs the app on another one."""
    engine = make_engine(settings.database_url)
    yield SimpleNamespace(state=SimpleNamespace(web=SimpleNamespace(engine=engine)))
    await engine.dispose()


async def test_role_guards_follow_the_roles_computed_at_sign_in(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection, here: Any
) -> None:
    handler: Any = None
    with pytest.raises(SignInRequired):
        await guards.signed_in(connection_with({}), handler)

    await sign_up(client, mail_sink, "vol@example.org")
    await signed_in_client(client, mail_sink, "vol@example.org")
    volunteer = await session_of(client, redis)
    await guards.signed_in(connection_with(volunteer, here), handler)
    for guard in (guards.admin, guards.coordinator, guards.coordinator_of("department_code")):
        with pytest.raises(RoleRequired):
            await guard(connection_with(volunteer, here, department_code="69"), handler)

    user_id = await db.fetchval("SELECT id FROM users WHERE email_normalized = 'vol@example.org'")
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, '69'), ($1, '01')", user_id)
    await signed_in_client(client, mail_sink, "vol@example.org")
    coordinator = await session_of(client, redis)
    space = await client.get("/mon-espace")
    assert "Coordination départementale : Rhône (69)" in space.text and "Bénévole" in space.text
    await guards.coordinator(connection_with(coordinator, here), handler)
    of_department = guards.coordinator_of("department_code")
    await of_department(connection_with(coordinator, here, department_code="69"), handler)
    for other in ("13", ""):
        with pytest.raises(RoleRequired):
            await of_department(connection_with(coordinator, here, department_code=other), handler)
    with pytest.raises(RoleRequired):
        await guards.national_coordinator(connection_with(coordinator, here), handler)

    await db.execute("UPDATE users SET is_admin = true WHERE id = $1", user_id)
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, NULL)", user_id)
    await signed_in_client(client, mail_sink, "vol@example.org", MAILS_PER_RECIPIENT_PER_HOUR="10")
    national = await session_of(client, redis)
    await guards.admin(connection_with(national, here), handler)
    await of_department(connection_with(national, here, department_code="13"), handler)
    assert "Coordination nationale" in (await client.get("/mon-espace")).text


async def test_a_session_ends_thirty_days_after_sign_in_however_active(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis
) -> None:
    await sign_up(client, mail_sink, "old@example.org")
    await signed_in_client(client, mail_sink, "old@example.org")
    key = f"renfort:sessions:{client.cookies[COOKIE]}"
    session = await session_of(client, redis)
    session["account"]["since"] -= 31 * 86_400
    await redis.set(key, msgspec.json.encode(session), ex=3600)
    assert (await client.get("/mon-espace", follow_redirects=False)).status_code == 303
