"""Sign-ups past the per-address limit are accepted but held back until their e-mail is confirmed: the confirmation
e-mail and nothing else, its signed link (a page with a button, then the welcome e-mail once), signing in as proof
of the address, hidden from organisations, dispatch and counters, and purged after 30 days. Real PostgreSQL, Redis,
SMTP sink and burst workers throughout."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from app.accounts import tokens
from app.accounts.schemas import Roles
from app.applications import service as applications
from app.db.base import make_engine, unit_of_work
from app.main import create_app
from app.settings import Settings
from app.volunteers import confirmation
from app.volunteers.intake import SignupIntake
from app.volunteers.signup_queue import SignupKeys
from ops.services import MailSink
from queues import enqueue
from queues.connection import sync_redis
from queues.worker import PURGE_UNCONFIRMED_LOCK, schedule_unconfirmed_purge
from surge.dispatch import links
from surge.emergencies.page import counters
from tests.conftest import REDIS_URL, TEST_ENV, run_worker
from tests.factories import signup
from tests.helpers import queued_signup, wait_for_fresh_minute
from tests.test_applications import add_volunteers
from tests.test_dispatch_runs import SLUG, commit, emergency, missions, plan, proposals
from tests.test_mail_delivery import proposal, to
from tests.test_organisations import sign_in
from tests.test_signin import LINK_SUBJECT, ask_for_link, csrf_token, token_in
from tests.test_signin import confirm as confirm_signin

SECRET = TEST_ENV["SECRET_KEY"]
API = "/api/v1/volunteers"
CONFIRM_SUBJECT = "Confirmez votre inscription sur Renfort"
WELCOME_SUBJECT = "Bienvenue sur Renfort, votre inscription est enregistrée"
PAGE = "/inscription/confirmer"


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """A web process that lets one sign-up a minute through per client address."""
    async with AsyncTestClient(app=create_app(dataclasses.replace(settings, signup_ip_limit_per_minute=1))) as client:
        yield client


async def sign_up_past_the_limit(client: AsyncTestClient, mail_sink: MailSink, email: str) -> str:
    """A first sign-up from the address, then `email` past the limit; both drained and mailed. Returns the receipt
    of `email`'s sign-up."""
    wait_for_fresh_minute(10)
    first = await client.post(API, json=signup(email="premier@example.org"))
    second = await client.post(API, json=signup(email=email))
    assert first.status_code == second.status_code == 202
    assert set(first.json()) == set(second.json()) == {"receipt", "status"}  # nothing tells them apart
    run_worker({"SMTP_URL": mail_sink.url})
    return str(second.json()["receipt"])


def confirm_link(mail: Any) -> str:
    match = re.search(r"/inscription/confirmer\?jeton=(\S+)", mail.get_content())
    assert match, "no confirmation link in the e-mail"
    return match[1]


async def press_the_button(client: AsyncTestClient, token: str) -> Any:
    page = await client.get(PAGE, params={"jeton": token})
    assert page.status_code == 200, page.text
    return await client.post(PAGE, data={"jeton": token, "_csrf_token": csrf_token(page.text)})


async def unconfirmed(db: asyncpg.Connection, email: str) -> bool | None:
    return await db.fetchval("SELECT unconfirmed FROM volunteers WHERE email_normalized = $1", email)


async def test_a_held_back_signup_gets_only_the_confirmation_and_confirming_sends_the_welcome_once(
    limited: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection, rq: SyncRedis
) -> None:
    email = "telephone@example.org"
    receipt = await sign_up_past_the_limit(limited, mail_sink, email)
    assert len(to(mail_sink, "premier@example.org", WELCOME_SUBJECT)) == 1
    [mail] = to(mail_sink, email)
    assert mail["Subject"] == CONFIRM_SUBJECT
    text = mail.get_content()
    assert "30 jours" in text and "supprimée" in text and "ignorez simplement ce message" in text
    token = confirm_link(mail)
    assert "@" not in token and await unconfirmed(db, email) is True
    # The thank-you page after sign-up is the same for everyone.
    thanks = (await limited.get("/inscription/merci", params={"recu": receipt})).text
    assert thanks.replace(receipt, "R") == (await limited.get("/inscription/merci", params={"recu": "R"})).text

    # A link previewer fetching the link confirms nothing: the page only shows a button.
    page = await limited.get(PAGE, params={"jeton": token})
    assert page.status_code == 200 and "Je confirme mon inscription" in page.text and 'method="post"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert await unconfirmed(db, email) is True
    assert (await limited.post(PAGE, data={"jeton": token})).status_code == 403  # no CSRF token

    done = await press_the_button(limited, token)
    assert done.status_code == 200 and "Merci, votre inscription est confirmée" in done.text
    assert 'href="/missions"' in done.text and 'href="/connexion"' in done.text
    assert await unconfirmed(db, email) is False
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(to(mail_sink, email, WELCOME_SUBJECT)) == 1

    # A second click (the back button, a double submit) says so and sends nothing; a late retry of the
    # confirmation e-mail sends nothing either.
    again = await limited.post(PAGE, data={"jeton": token, "_csrf_token": csrf_token(page.text)})
    assert again.status_code == 200 and "déjà confirmée" in again.text
    assert "déjà confirmée" in (await limited.get(PAGE, params={"jeton": token})).text
    volunteer_id = await db.fetchval("SELECT id FROM volunteers WHERE email_normalized = $1", email)
    enqueue.send_volunteer_mails(rq, "confirm_email", [(volunteer_id, f"welcome:{receipt}")])
    run_worker({"SMTP_URL": mail_sink.url})
    assert [m["Subject"] for m in to(mail_sink, email)] == [CONFIRM_SUBJECT, WELCOME_SUBJECT]


async def test_forged_expired_and_orphaned_links_get_french_pages_not_errors(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    [(volunteer_id, _)] = await add_volunteers(db, 1, prefix="lien")
    await db.execute("UPDATE volunteers SET unconfirmed = true WHERE id = $1", volunteer_id)
    later = int(time.time()) + 3600
    genuine = confirmation.mint(SECRET, volunteer_id, later)
    forged = [
        "n'importe-quoi",
        genuine.replace(f"{volunteer_id}.", f"{volunteer_id + 1}.", 1),  # another person's id under this signature
        genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),
        confirmation.mint("another-secret", volunteer_id, later),
        tokens.mint(SECRET, str(volunteer_id), later),  # a sign-in signature, same shape
        links.mint(SECRET, "confirmer", 1, volunteer_id, 1, later),  # a dispatch signature
        "9" * 500,
    ]
    for token in forged:
        page = await client.get(PAGE, params={"jeton": token})
        assert page.status_code == 400, token
        assert "Ce lien de confirmation" in page.text and "pas valide" in page.text
    form = await client.get(PAGE, params={"jeton": genuine})
    refused = await client.post(PAGE, data={"jeton": forged[1], "_csrf_token": csrf_token(form.text)})
    assert refused.status_code == 400
    assert await db.fetchval("SELECT unconfirmed FROM volunteers WHERE id = $1", volunteer_id) is True

    expired = await client.get(PAGE, params={"jeton": confirmation.mint(SECRET, volunteer_id, int(time.time()) - 1)})
    assert expired.status_code == 410 and "Inscrivez-vous à nouveau" in expired.text
    await db.execute("DELETE FROM volunteers WHERE id = $1", volunteer_id)
    gone = await client.get(PAGE, params={"jeton": genuine})
    assert gone.status_code == 410 and gone.text == expired.text  # reveals nothing about who signed up
    posted = await client.post(PAGE, data={"jeton": genuine, "_csrf_token": csrf_token(form.text)})
    assert posted.status_code == 410 and posted.text == expired.text


async def hold_back(db: asyncpg.Connection, volunteer_id: int) -> None:
    await db.execute("UPDATE volunteers SET unconfirmed = true WHERE id = $1", volunteer_id)


async def test_held_back_volunteers_get_no_other_mail(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await emergency(db)
    [mission_id] = await missions(db, (2,))
    (held, held_address), (free, free_address) = await add_volunteers(db, 2, prefix="courrier")
    await hold_back(db, held)
    for volunteer_id in (held, free):
        await proposal(db, mission_id, volunteer_id)
        enqueue.send_volunteer_mails(rq, "reminder", [(volunteer_id, f"reminder:{volunteer_id}")])
        enqueue.send_volunteer_mails(rq, "welcome", [(volunteer_id, f"welcome:{volunteer_id}")])
        enqueue.send_application_mails(rq, [
            (mission_id, volunteer_id, "application_received", f"received:{volunteer_id}"),
            (mission_id, volunteer_id, "dispatch_proposal", f"proposal:{volunteer_id}"),
            (mission_id, volunteer_id, "application_message", f"message:{volunteer_id}", "Rendez-vous à 8 h."),
        ])
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(to(mail_sink, free_address)) == 5
    assert to(mail_sink, held_address) == []


async def test_held_back_volunteers_are_not_dispatched_listed_nor_counted(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    await emergency(db)
    mission_ids = await missions(db, (3,))
    (held, _), (free, _) = await add_volunteers(db, 2, prefix="pool")
    await hold_back(db, held)
    await db.execute("UPDATE volunteers SET emergency_slug = $1", SLUG)
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, mission_ids)
    assert (await commit(client, run_id)).status_code == 303
    run_worker()
    assert {volunteer_id for _, volunteer_id in await proposals(db, run_id)} == {free}

    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                     " VALUES ($1, $2, 'pending', 1, now())", mission_ids[0], held)
    organisation_id = await db.fetchval("SELECT organisation_id FROM missions WHERE id = $1", mission_ids[0])
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            _, listed = await applications.of_mission(session, redis, mission_ids[0],
                                                      Roles(organisations=(organisation_id,)))
            figures = await counters(session, SLUG)
    finally:
        await engine.dispose()
    assert [application.volunteer_id for application in listed] == [free]
    assert figures.volunteers == 1


async def test_the_purge_deletes_only_signups_left_unconfirmed_for_30_days_and_runs_twice_the_same(
    limited: AsyncTestClient, mail_sink: MailSink, redis: Redis, db: asyncpg.Connection, rq: SyncRedis
) -> None:
    email = "oublie@example.org"
    await sign_up_past_the_limit(limited, mail_sink, email)
    others = await add_volunteers(db, 2, prefix="garde")
    (recent, _), (old_confirmed, _) = others
    await hold_back(db, recent)
    await db.execute("UPDATE volunteers SET accepted_at = now() - interval '31 days'"
                     " WHERE email_normalized = $1 OR id = $2", email, old_confirmed)
    await db.execute("UPDATE volunteers SET accepted_at = now() - interval '29 days' WHERE id = $1", recent)
    [mission_id] = await missions(db, (2,), slug="collecte")
    forgotten = await db.fetchval("SELECT id FROM volunteers WHERE email_normalized = $1", email)
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                     " VALUES ($1, $2, 'pending', 1, now())", mission_id, forgotten)
    before = await db.fetchval("SELECT count(*) FROM volunteers")

    assert rq.exists(PURGE_UNCONFIRMED_LOCK)  # the workers' maintenance tick scheduled a purge already
    rq.delete(PURGE_UNCONFIRMED_LOCK)  # as an hour later
    assert schedule_unconfirmed_purge(rq) is True
    assert schedule_unconfirmed_purge(rq) is False  # at most once an hour, however many workers tick
    assert 3000 < rq.ttl(PURGE_UNCONFIRMED_LOCK) <= 3600
    run_worker()
    assert await unconfirmed(db, email) is None
    assert await db.fetchval("SELECT count(*) FROM volunteers") == before - 1
    assert await db.fetchval("SELECT count(*) FROM applications WHERE volunteer_id = $1", forgotten) == 0
    assert await redis.exists(SignupKeys(SECRET).email_mark(email)) == 0

    job = enqueue.purge_unconfirmed(rq)
    run_worker()
    assert Job.fetch(job.id, connection=rq, serializer=JSONSerializer).return_value() == {"purged": 0}
    assert await db.fetchval("SELECT count(*) FROM volunteers") == before - 1

    # Signing up again afterwards is a new sign-up, not a repeat of someone no longer there.
    wait_for_fresh_minute(5)
    assert (await limited.post(API, json=signup(email=email))).status_code == 202
    run_worker({"SMTP_URL": mail_sink.url})
    assert await unconfirmed(db, email) is not None


async def test_signing_in_with_the_emailed_link_confirms_a_held_back_signup(
    limited: AsyncTestClient, mail_sink: MailSink, db: asyncpg.Connection
) -> None:
    email = "connexion@example.org"
    await sign_up_past_the_limit(limited, mail_sink, email)
    assert await unconfirmed(db, email) is True
    for _ in range(2):
        assert (await ask_for_link(limited, email)).status_code == 200
        run_worker({"SMTP_URL": mail_sink.url})
        response = await confirm_signin(limited, token_in(to(mail_sink, email, LINK_SUBJECT)[-1]))
        assert response.status_code == 303 and response.headers["location"] == "/mon-espace"
        assert await unconfirmed(db, email) is False
        run_worker({"SMTP_URL": mail_sink.url})
        assert len(to(mail_sink, email, WELCOME_SUBJECT)) == 1  # the second sign-in sends no second welcome


@pytest.mark.parametrize("drains", ["one batch", "two drains"])
async def test_a_signup_within_the_limit_takes_the_place_of_a_held_back_one_of_the_same_address(
    redis: Redis, db: asyncpg.Connection, drains: str
) -> None:
    """Someone behind a busy shared address signed up the owner's e-mail first: the owner's own sign-up, from
    elsewhere, is saved in full and welcomed, instead of being taken for a repeat of a row nobody confirmed."""
    intake = SignupIntake(redis, TEST_ENV["SECRET_KEY"], ip_limit_per_minute=1, backlog_limit=10**6)
    wait_for_fresh_minute(10)
    first = queued_signup(0, prefix="crowd")
    squatted = msgspec.structs.replace(queued_signup(0, prefix="owner"), first_name="Usurpe")
    real = queued_signup(0, prefix="owner")
    assert (await intake.accept(first, client_ip="carrier", idempotency_key=None)).outcome == "accepted"
    assert (await intake.accept(squatted, client_ip="carrier", idempotency_key=None)).outcome == "accepted"
    if drains == "two drains":
        run_worker()
        assert await db.fetchval("SELECT unconfirmed FROM volunteers WHERE email = $1", real.email) is True
    assert (await intake.accept(real, client_ip="home", idempotency_key=None)).outcome == "accepted"
    run_worker()
    row = await db.fetchrow("SELECT first_name, unconfirmed, receipt FROM volunteers WHERE email = $1", real.email)
    assert (row["first_name"], row["unconfirmed"], row["receipt"]) == ("Ana", False, real.receipt)
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 2
