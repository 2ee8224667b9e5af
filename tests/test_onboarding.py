"""Organisations onboarded without a volunteer account: `/inscription/structure` keeps the organisation as a draft
with no manager and e-mails an invitation (signed, expiring, single use) that makes the person its manager and signs
in an address that had no account; nothing tells whether the address had an account; unclaimed drafts are purged."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import tokens
from app.main import create_app
from app.organisations import invitations
from app.settings import Settings
from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from tests.conftest import REDIS_URL, TEST_ENV, run_worker
from tests.helpers import wait_for_fresh_minute
from tests.test_organisations import organisation, sign_in
from tests.test_signin import ask_for_link, csrf_token

SIGNUP = "/inscription/structure"
NEUTRAL = "Si cette adresse est valide, vous allez recevoir un lien pour confirmer votre adresse"
CREATOR_SUBJECT = "Confirmez l'inscription de votre structure sur Renfort"
INVITED_SUBJECT = "Invitation à gérer une structure sur Renfort"
EXPIRED = "a expiré, a déjà servi ou a été annulé"
CSRF = re.compile(r'name="_csrf_token" value="[^"]+"')


async def register_structure(client: AsyncTestClient, email: str, **overrides: Any) -> Any:
    page = await client.get(SIGNUP)
    assert page.status_code == 200, page.text
    data = {**organisation(**overrides), "email": email, "_csrf_token": csrf_token(page.text)}
    return await client.post(SIGNUP, data=data, follow_redirects=False)


def mails(mail_sink: MailSink, subject: str) -> list[Any]:
    return [message for message in mail_sink.messages() if message["Subject"] == subject]


def invitation_token(message: Any) -> str:
    match = re.search(r"/invitation\?jeton=(\S+)", message.get_content())
    assert match, "no invitation link in the e-mail"
    return match[1]


async def accept(client: AsyncTestClient, token: str) -> Any:
    page = await client.get("/invitation", params={"jeton": token})
    assert page.status_code == 200, page.text
    return await client.post("/invitation", data={"jeton": token, "_csrf_token": csrf_token(page.text)},
                             follow_redirects=False)


async def post_token(client: AsyncTestClient, token: str) -> Any:
    form = await client.get(SIGNUP)
    return await client.post("/invitation", data={"jeton": token, "_csrf_token": csrf_token(form.text)},
                             follow_redirects=False)


async def onboard(client: AsyncTestClient, mail_sink: MailSink, email: str, **overrides: Any) -> str:
    """Registers an organisation for `email` and returns the token its e-mail carried."""
    assert (await register_structure(client, email, **overrides)).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url})
    return invitation_token([m for m in mails(mail_sink, CREATOR_SUBJECT) if m["To"] == email][-1])


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Any]:
    """Clients over their own `create_app()`, as separate web processes (or other browsers) would be."""
    clients: list[AsyncTestClient] = []

    async def build(**overrides: Any) -> AsyncTestClient:
        client = AsyncTestClient(app=create_app(dataclasses.replace(settings, **overrides)))
        await client.__aenter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.__aexit__(None, None, None)


async def test_an_association_registers_without_an_account_and_manages_it_from_the_emailed_link(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    response = await register_structure(client, "Presidente@Example.org")
    assert response.status_code == 200 and NEUTRAL in response.text
    assert response.headers["cache-control"] == "no-store"
    row = await db.fetchrow("SELECT * FROM organisations")
    assert row["status"] == "draft" and row["name"] == "Les Restos du Cœur du Rhône"
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 0
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    invitation = await db.fetchrow("SELECT * FROM manager_invitations")
    assert invitation["organisation_id"] == row["id"] and invitation["invited_by"] is None
    assert invitation["email_normalized"] == "presidente@example.org" and invitation["accepted_at"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", invitation["token_digest"])
    # The job names the invitation by its id; the address stays out of the payload.
    [job] = job_queue(sync_redis(REDIS_URL)).jobs
    assert job.func_name == "queues.organisation_mail.send_invitation_mail"
    assert job.kwargs == {"invitation_id": invitation["id"]} and "example.org" not in repr(job.args)

    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mails(mail_sink, CREATOR_SUBJECT)
    assert mail["To"] == "presidente@example.org"
    assert "« Les Restos du Cœur du Rhône »" in mail.get_content() and "valable 7 jours" in mail.get_content()
    token = invitation_token(mail)
    secret_part = token.split(".")[0]
    assert invitation["token_digest"] == hashlib.sha256(secret_part.encode()).hexdigest()
    assert secret_part not in repr(await db.fetch("SELECT * FROM manager_invitations"))
    assert await redis.exists(invitations.InvitationKeys(invitation["id"]).token) == 0  # only in the e-mail now

    page = await client.get("/invitation", params={"jeton": token})
    assert page.status_code == 200 and "Accepter et me connecter" in page.text
    assert "Les Restos du Cœur du Rhône" in page.text
    assert await db.fetchval("SELECT accepted_at FROM manager_invitations") is None  # opening the link burns nothing
    accepted = await accept(client, token)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/mon-espace/structures"
    user = await db.fetchrow("SELECT * FROM users")
    assert user["email_normalized"] == "presidente@example.org" and user["last_sign_in_at"] is not None
    assert await db.fetchval("SELECT user_id FROM organisation_managers WHERE organisation_id = $1",
                             row["id"]) == user["id"]
    assert await db.fetchval("SELECT accepted_at FROM manager_invitations") is not None

    space = await client.get("/mon-espace/structures")
    assert space.status_code == 200 and space.headers["cache-control"] == "no-store"
    assert "Les Restos du Cœur du Rhône" in space.text and "Brouillon" in space.text
    for link in (f"/organisations/{row['id']}/modifier", f"/organisations/{row['id']}/gestionnaires",
                 f"/organisations/{row['id']}/missions/nouvelle", f'action="/organisations/{row["id"]}/soumettre"'):
        assert link in space.text
    submitted = await client.post(f"/organisations/{row['id']}/soumettre",
                                  data={"_csrf_token": csrf_token(space.text)}, follow_redirects=False)
    assert submitted.status_code == 303
    assert await db.fetchval("SELECT status FROM organisations") == "awaiting_validation"
    assert "Gestion de la structure : Les Restos du Cœur du Rhône" in (await client.get("/mon-espace")).text

    # Later, the manager signs in as anyone does: the address is known now.
    await client.post("/deconnexion", data={"_csrf_token": csrf_token(space.text)})
    assert (await ask_for_link(client, "presidente@example.org")).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url})
    assert [m["To"] for m in mails(mail_sink, "Votre lien de connexion à Renfort")] == ["presidente@example.org"]


async def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_e_mail(
    client: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ('known@example.org', 'known@example.org')")
    known = await register_structure(client, "known@example.org")
    unknown = await register_structure(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert CSRF.sub("", known.text) == CSRF.sub("", unknown.text)
    assert await db.fetchval("SELECT count(*) FROM organisations WHERE status = 'draft'") == 2
    run_worker({"SMTP_URL": mail_sink.url})
    sent = mails(mail_sink, CREATOR_SUBJECT)
    assert sorted(mail["To"] for mail in sent) == ["known@example.org", "nobody@example.org"]
    bodies = {mail["To"]: re.sub(r"jeton=\S+", "", mail.get_content()) for mail in sent}
    assert bodies["known@example.org"] == bodies["nobody@example.org"]

    # The known address becomes manager of its user, no second account; it signs in as usual (see
    # test_onboarding_invitation_sessions.py).
    token = invitation_token(next(mail for mail in sent if mail["To"] == "known@example.org"))
    accepted = await accept(client, token)
    assert accepted.status_code == 200 and "Invitation acceptée" in accepted.text
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    assert await db.fetchval(
        "SELECT u.email FROM organisation_managers m JOIN users u ON u.id = m.user_id") == "known@example.org"


async def test_a_signed_in_person_is_sent_to_the_usual_registration(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "benevole@example.org")
    page = await client.get(SIGNUP, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/organisations/nouvelle"
    csrf = csrf_token((await client.get("/mon-espace")).text)
    posted = await client.post(SIGNUP, data={**organisation(), "email": "x@example.org", "_csrf_token": csrf},
                               follow_redirects=False)
    assert posted.status_code == 303 and posted.headers["location"] == "/organisations/nouvelle"
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0


async def test_bots_and_floods_keep_nothing_and_learn_nothing(
    client: AsyncTestClient, make_client: Any, db: asyncpg.Connection
) -> None:
    trapped = await register_structure(client, "bot@example.org", website="https://spam.example")
    assert trapped.status_code == 200 and NEUTRAL in trapped.text
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0
    assert job_queue(sync_redis(REDIS_URL)).count == 0

    # Past the per-address limit of e-mails: the same answer, nothing more kept.
    limited = await make_client(signin_email_limit_per_hour=1)
    first = await register_structure(limited, "again@example.org")
    second = await register_structure(limited, "Again@example.org", name="Secours populaire")
    assert first.status_code == second.status_code == 200
    assert CSRF.sub("", first.text) == CSRF.sub("", second.text)
    assert await db.fetchval("SELECT count(*) FROM organisations") == 1


async def test_too_many_registrations_from_one_address_are_refused_for_a_minute(
    make_client: Any, db: asyncpg.Connection
) -> None:
    wait_for_fresh_minute()
    flooded = await make_client(signin_ip_limit_per_minute=2)
    statuses = [(await register_structure(flooded, f"flood{number}@example.org")).status_code for number in range(2)]
    refused = await register_structure(flooded, "flood3@example.org")
    assert statuses == [200, 200] and refused.status_code == 429
    assert "Trop de demandes" in refused.text and int(refused.headers["retry-after"]) >= 1
    assert await db.fetchval("SELECT count(*) FROM organisations") == 2


async def test_hostile_input_gets_french_messages_and_keeps_nothing(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    nul = await register_structure(client, "a\x00b@example.org", name="Les\x00Restos")
    assert nul.status_code == 422
    assert "Le champ « Nom de la structure » contient un caractère non autorisé." in nul.text
    email_error = re.search(r'id="email-error"[^>]*>([^<]+)', nul.text)
    assert email_error and "contient un caractère non autorisé" in email_error[1]
    long = await register_structure(client, "long@example.org", name="A" * 5_000, address_line="B" * 5_000)
    assert long.status_code == 422 and "ne doit pas dépasser 150 caractères" in long.text
    assert "ne doit pas dépasser 200 caractères" in long.text
    missing = await register_structure(client, "", description="Court")
    assert missing.status_code == 422 and "Indiquez votre adresse e-mail." in missing.text
    assert "Présentez la structure en quelques phrases" in missing.text
    assert 'value="Les Restos du Cœur du Rhône"' in missing.text  # what was typed is kept
    for token in ("abc", "a\x00b.1.c", "x" * 5_000, "é.9999999999.é"):
        assert (await client.get("/invitation", params={"jeton": token})).status_code == 400
        posted = await post_token(client, token)
        assert posted.status_code in (400, 413) and "La demande n'a pas abouti" in posted.text
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0


async def test_an_invitation_works_once_even_when_clicked_twice_at_once(
    client: AsyncTestClient, mail_sink: MailSink, make_client: Any, db: asyncpg.Connection
) -> None:
    token = await onboard(client, mail_sink, "once@example.org")
    others = [await make_client() for _ in range(4)]
    forms = [(other, csrf_token((await other.get(SIGNUP)).text)) for other in others]
    responses = await asyncio.gather(*[
        other.post("/invitation", data={"jeton": token, "_csrf_token": csrf}, follow_redirects=False)
        for other, csrf in forms
    ])
    assert sorted(response.status_code for response in responses) == [303, 410, 410, 410]
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 1
    again = await client.get("/invitation", params={"jeton": token})
    assert again.status_code == 410 and EXPIRED in again.text and 'href="/inscription/structure"' in again.text
    assert (await post_token(client, token)).status_code == 410


async def test_expired_or_forged_invitations_are_refused_in_french(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    token = await onboard(client, mail_sink, "late@example.org")
    await db.execute("UPDATE manager_invitations SET expires_at = now() - interval '1 second'")
    for response in (await client.get("/invitation", params={"jeton": token}), await post_token(client, token)):
        assert response.status_code == 410 and EXPIRED in response.text
    assert await db.fetchval("SELECT count(*) FROM organisation_managers") == 0

    secret = TEST_ENV["SECRET_KEY"]
    past, _ = invitations.mint(secret, int(time.time()) - 1)
    assert (await client.get("/invitation", params={"jeton": past})).status_code == 410
    expiry = int(token.split(".")[1])
    signin_token = tokens.mint(secret, tokens.new_id(), int(time.time()) + 900)
    forged = [
        invitations.mint("another-secret-key-of-at-least-32-characters", expiry)[0],
        token.replace(f".{expiry}.", f".{expiry + 86_400}."),  # a longer life, same signature
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        signin_token,  # a sign-in link is not an invitation
    ]
    for bad in forged:
        page = await client.get("/invitation", params={"jeton": bad})
        assert page.status_code == 400 and "il a peut-être été mal copié depuis" in page.text
        assert (await post_token(client, bad)).status_code == 400
    # Nor is an invitation a sign-in link.
    assert (await client.get("/connexion/lien", params={"jeton": token})).status_code == 400


async def test_whoever_was_signed_in_in_the_browser_is_signed_out_first(
    client: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection
) -> None:
    token = await onboard(client, mail_sink, "new.manager@example.org")
    await sign_in(client, redis, db, "someone.else@example.org")
    assert (await accept(client, token)).status_code == 303
    space = await client.get("/mon-espace")
    assert "new.manager@example.org" in space.text and "someone.else@example.org" not in space.text


async def test_unclaimed_drafts_are_purged_once_every_invitation_expired(
    client: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection
) -> None:
    claimed_token = await onboard(client, mail_sink, "claimed@example.org", name="Réclamée")
    await onboard(client, mail_sink, "waiting@example.org", name="En attente")
    await onboard(client, mail_sink, "gone@example.org", name="Abandonnée")
    assert (await accept(client, claimed_token)).status_code == 303
    await db.execute("UPDATE manager_invitations SET expires_at = now() - interval '1 minute'"
                     " WHERE email_normalized IN ('gone@example.org', 'claimed@example.org')")

    enqueue.purge_unclaimed_organisations(sync_redis(REDIS_URL))
    run_worker()
    assert sorted(await db.fetchval("SELECT array_agg(name) FROM organisations")) == ["En attente", "Réclamée"]
    # Expired invitations are forgotten (their address with them); the pending one stays.
    assert [row["email_normalized"] for row in await db.fetch("SELECT * FROM manager_invitations")] == [
        "waiting@example.org"]
    enqueue.purge_unclaimed_organisations(sync_redis(REDIS_URL))
    run_worker()  # idempotent
    assert await db.fetchval("SELECT count(*) FROM organisations") == 2


async def test_sign_in_pages_point_organisations_to_their_registration(
    client: AsyncTestClient, mail_sink: MailSink
) -> None:
    assert 'href="/inscription/structure"' in (await client.get("/connexion")).text
    assert (await ask_for_link(client, "asso@example.org")).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mails(mail_sink, "Votre demande de connexion à Renfort")
    assert "/inscription/structure" in mail.get_content()
