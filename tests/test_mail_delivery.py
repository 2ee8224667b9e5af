"""E-mail delivery through a real SMTP sink, real RQ workers (burst mode, RQ's own scheduler moving due jobs) and
real PostgreSQL and Redis: budgets per family of e-mails, deferral instead of loss, sign-in links that never arrive
after they lapsed, one refused recipient isolated from the batch, and job payloads without personal data."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from rq.job import Job
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer

from app.mail import build
from app.main import create_app
from app.settings import Settings
from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.mail_keys import DROPPED
from tests.conftest import REDIS_URL, run_worker
from tests.test_applications import add_volunteers
from tests.test_dispatch_runs import emergency, missions
from tests.test_signin import LINK_SUBJECT, ask_for_link

PROPOSAL = "Une mission vous est proposée"


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


def scheduled(connection: SyncRedis) -> list[tuple[str, float]]:
    """Jobs waiting in RQ's scheduled registry, with the time they are due."""
    key = job_queue(connection).scheduled_job_registry.key
    return [(job_id.decode(), score) for job_id, score in connection.zrange(key, 0, -1, withscores=True)]


def run_due(connection: SyncRedis, env: dict[str, str]) -> str:
    """What the worker's scheduler does every second (moving the jobs that are due onto the queue), then a burst
    worker; returns the worker's log."""
    scheduler = RQScheduler([job_queue(connection)], connection=connection, serializer=JSONSerializer)
    scheduler.acquire_locks()
    try:
        scheduler.enqueue_scheduled_jobs()
    finally:
        scheduler.release_locks()
    return run_worker(env).stderr


def run_until_nothing_waits(connection: SyncRedis, env: dict[str, str], rounds: int = 5) -> tuple[int, str]:
    """Runs the deferred work each time it falls due, until nothing is scheduled (failing if that never happens);
    returns how many rounds it took and the workers' logs."""
    logs = ""
    for round_number in range(rounds):
        waiting = scheduled(connection)
        if not waiting:
            return round_number, logs
        time.sleep(max(0.0, min(score for _, score in waiting) - time.time()) + 0.2)
        logs += run_due(connection, env)
    raise AssertionError(f"e-mails still scheduled after {rounds} rounds: {scheduled(connection)}")


def payloads(connection: SyncRedis) -> list[str]:
    """Every RQ job's function, arguments and description as stored in Redis (queued, scheduled and finished)."""
    texts = []
    for raw_key in connection.scan_iter("rq:job:*"):
        job_id = raw_key.decode().removeprefix("rq:job:")
        if ":" in job_id:
            continue  # a job's side keys (dependents, results)
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
        texts.append(json.dumps([job.func_name, job.args, job.kwargs, job.description], ensure_ascii=False))
    return texts


def to(mail_sink: MailSink, address: str, subject_start: str = "") -> list[Any]:
    return [message for message in mail_sink.messages()
            if message["X-Envelope-To"] == address and message["Subject"].startswith(subject_start)]


async def proposal(db: asyncpg.Connection, mission_id: int, volunteer_id: int, hours: float = 48) -> None:
    await db.execute(
        "INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at, expires_at)"
        " VALUES ($1, $2, 'proposed', 1, now(), now() + make_interval(secs => $3))", mission_id, volunteer_id,
        hours * 3600,
    )


async def dropped(redis: Redis) -> dict[str, int]:
    return {field.decode(): int(count) for field, count in (await redis.hgetall(DROPPED)).items()}


@pytest.fixture
async def short_link_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    """A web process whose sign-in requests (and links) last 10 seconds."""
    async with AsyncTestClient(app=create_app(dataclasses.replace(settings, signin_link_ttl_seconds=10))) as client:
        yield client


async def test_a_signin_flood_does_not_suppress_a_dispatch_proposal(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await emergency(db)
    [mission_id] = await missions(db, (2,))
    [(volunteer_id, address)] = await add_volunteers(db, 1)
    env = {"SMTP_URL": mail_sink.url, "MAILS_PER_RECIPIENT_PER_HOUR": "2"}

    # Anyone may ask for sign-in links for someone else's address: five requests, twice the budget of that family.
    for _ in range(5):
        assert (await ask_for_link(client, address)).status_code == 200
    run_worker(env)
    assert len(to(mail_sink, address, LINK_SUBJECT)) == 2
    # The other three could not leave within their 15 minutes (the budget frees up in an hour): dropped, counted.
    assert (await dropped(redis)) == {"signin_link:lapsed": 3}
    assert scheduled(rq) == []

    await proposal(db, mission_id, volunteer_id)
    enqueue.send_application_mails(rq, [(mission_id, volunteer_id, "dispatch_proposal", "proposal:flood")])
    run_worker(env)
    [mail] = to(mail_sink, address, PROPOSAL)
    assert "/mobilisation/confirmer?jeton=" in mail.get_content()


async def test_mail_over_budget_is_delivered_later_exactly_once_and_payloads_hold_no_personal_data(
    redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await emergency(db)
    [mission_id] = await missions(db, (2,))
    [(volunteer_id, address)] = await add_volunteers(db, 1, prefix="budget")
    message = "Rendez-vous quai Claude-Bernard à 8 h, apportez des gants."
    enqueue.send_application_mails(rq, [
        (mission_id, volunteer_id, "application_received", "received:budget"),
        (mission_id, volunteer_id, "application_accepted", "accepted:budget"),
        (mission_id, volunteer_id, "application_message", "message:budget", message),
    ])
    env = {"SMTP_URL": mail_sink.url, "MAIL_BUDGET_APPLICATION": "1", "MAIL_BUDGET_WINDOW_SECONDS": "2"}

    run_worker(env)
    assert len(to(mail_sink, address)) == 1
    assert len(scheduled(rq)) == 1  # the two others, deferred to the end of the window in one job
    for text in payloads(rq):
        assert "@" not in text and "Camille" not in text and "Rendez-vous" not in text, text

    rounds, _ = run_until_nothing_waits(rq, env)
    mails = to(mail_sink, address)
    subjects = sorted(mail["Subject"] for mail in mails)
    assert len(mails) == 3 and len(set(subjects)) == 3, subjects
    assert rounds == 2  # one more e-mail per window
    [sent_message] = [mail for mail in mails if mail["Subject"].startswith("Message de ")]
    assert message in sent_message.get_content()
    assert (await dropped(redis)) == {}

    # Running every job again sends nothing twice.
    enqueue.send_application_mails(rq, [(mission_id, volunteer_id, "application_accepted", "accepted:budget")])
    run_worker(env)
    assert len(to(mail_sink, address)) == 3


async def test_deferred_mail_is_rendered_again_when_due(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await emergency(db)
    first_mission, second_mission = await missions(db, (2, 2))
    (leaving, leaving_address), (busy, busy_address) = await add_volunteers(db, 2, prefix="later")
    await proposal(db, first_mission, busy)
    await proposal(db, second_mission, busy)
    env = {"SMTP_URL": mail_sink.url, "MAIL_BUDGET_ACCOUNT": "1", "MAIL_BUDGET_DISPATCH": "1",
           "MAIL_BUDGET_WINDOW_SECONDS": "2"}
    enqueue.send_volunteer_mails(rq, "welcome", [(leaving, "welcome:leaving")])
    enqueue.send_volunteer_mails(rq, "reminder", [(leaving, "reminder:leaving")])
    enqueue.send_application_mails(rq, [
        (first_mission, busy, "dispatch_proposal", "proposal:first"),
        (second_mission, busy, "dispatch_proposal", "proposal:second"),
    ])
    run_worker(env)
    assert len(to(mail_sink, leaving_address)) == len(to(mail_sink, busy_address)) == 1
    assert len(scheduled(rq)) == 2

    assert "Digue 1" in to(mail_sink, busy_address)[0]["Subject"]

    # Before they are due: one person deletes their account, the other declines the proposal still waiting.
    await db.execute("DELETE FROM volunteers WHERE id = $1", leaving)
    await db.execute("UPDATE applications SET status = 'cancelled' WHERE mission_id = $1 AND volunteer_id = $2",
                     second_mission, busy)
    run_until_nothing_waits(rq, env)
    assert len(to(mail_sink, leaving_address)) == len(to(mail_sink, busy_address)) == 1


async def test_signin_link_over_budget_never_arrives_after_it_lapsed(
    short_link_client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    [(_, address)] = await add_volunteers(db, 1, prefix="lapse")
    env = {"SMTP_URL": mail_sink.url, "SIGNIN_LINK_TTL_SECONDS": "10", "MAIL_BUDGET_SIGNIN": "1",
           "MAIL_BUDGET_WINDOW_SECONDS": "3"}
    asked_at = time.time()
    for _ in range(2):
        assert (await ask_for_link(short_link_client, address)).status_code == 200
    run_worker(env)
    assert len(to(mail_sink, address, LINK_SUBJECT)) == 1
    # The second could still leave in time when the window ends: deferred, not dropped...
    [(_, due)] = scheduled(rq)
    assert due < asked_at + 10

    # ...but nobody ran it before its request lapsed (a stopped worker, a long backlog): it never arrives.
    time.sleep(max(0.0, asked_at + 10.5 - time.time()))
    run_due(rq, env)
    assert len(to(mail_sink, address, LINK_SUBJECT)) == 1
    assert (await dropped(redis)) == {"signin:lapsed": 1}
    assert scheduled(rq) == []


async def test_one_refused_recipient_does_not_hold_back_the_batch(
    redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    volunteers = await add_volunteers(db, 5, prefix="lot")
    (_, first), (refused_id, refused), (_, flaky), (_, busy), (_, last) = volunteers
    mail_sink.refusals[refused] = "550 5.1.1 Mailbox does not exist"
    mail_sink.refusals[busy] = "451 4.3.0 Try again later"
    mail_sink.hang_ups.add(flaky)  # the connection drops at this message: the worker reconnects and goes on
    env = {"SMTP_URL": mail_sink.url, "MAIL_RETRY_SECONDS": "1"}
    enqueue.send_volunteer_mails(rq, "welcome", [(volunteer_id, f"welcome:{volunteer_id}")
                                                 for volunteer_id, _ in volunteers])

    run_worker(env)
    assert {address: len(to(mail_sink, address)) for address in (first, refused, flaky, busy, last)} == {
        first: 1, refused: 0, flaky: 1, busy: 0, last: 1
    }
    assert len(scheduled(rq)) == 1  # the refused and the busy one, tried again in a second
    del mail_sink.refusals[busy]  # the busy server recovers; the missing mailbox never appears

    rounds, logs = run_until_nothing_waits(rq, env)  # fails if the refused one is tried again for ever
    assert rounds == 2  # three 5xx refusals in all, then given up
    assert {address: len(to(mail_sink, address)) for address in (first, refused, flaky, busy, last)} == {
        first: 1, refused: 0, flaky: 1, busy: 1, last: 1
    }
    assert (await dropped(redis)) == {"welcome:given_up": 1}
    assert f"volunteer {refused_id}" in logs and "gave up on a welcome e-mail" in logs
    assert "@" not in logs


async def test_mail_goes_to_the_validated_address_and_headers_cannot_be_injected(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    [(volunteer_id, address)] = await add_volunteers(db, 1, prefix="header")
    await db.execute("UPDATE volunteers SET email = $2 WHERE id = $1", volunteer_id,
                     "Header1@Example.org\r\nBcc: victim@elsewhere.example")
    enqueue.send_volunteer_mails(rq, "welcome", [(volunteer_id, "welcome:header")])
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = mail_sink.messages()
    assert mail["To"] == mail["X-Envelope-To"] == address and mail["Bcc"] is None

    with pytest.raises(ValueError):
        build("Renfort <ne-pas-repondre@renfort.example>", "a@example.org\r\nBcc: b@example.org", "Objet", "Corps")
    with pytest.raises(ValueError):
        build("Renfort <ne-pas-repondre@renfort.example>", "a@example.org, b@example.org", "Objet", "Corps")
    folded = build("Renfort <ne-pas-repondre@renfort.example>", "a@example.org", "Digue\r\nBcc: b@example.org", "")
    assert folded["Subject"] == "Digue Bcc: b@example.org" and folded["Bcc"] is None


def test_a_long_french_subject_reads_back_with_every_space() -> None:
    from email import message_from_bytes
    from email import policy as email_policy

    subject = "Votre structure est suspendue — « Les Restos du Cœur du Rhône » : mission d'accueil des familles"
    message = build("Renfort <ne-pas-repondre@renfort.example>", "a@example.org", subject, "Corps é\n" + "mot " * 400)
    raw = message.as_bytes()
    assert message_from_bytes(raw, policy=email_policy.default)["Subject"] == subject
    assert max(len(line) for line in raw.splitlines()) <= 998
