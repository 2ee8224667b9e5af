"""Inactive accounts through a real worker, PostgreSQL and a mail sink: warned 30 and 7 days before, each warning
once; any activity starts the period again; then anonymised — the rows kept (applications, audit), the personal
data gone, the sessions ended, a queued copy of the sign-up stopped; the last manager's organisation suspended and
its referents told; the sweep run twice changes nothing more and sends nothing more, and logs no address.

Time passes by moving a person's timestamps back (`elapse`): the worker runs on the real clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.privacy.inactivity import SUSPENSION_REASON
from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.worker import daily_lock, schedule_inactivity_sweep
from tests.conftest import REDIS_URL, run_worker
from tests.test_account_deletion import add_volunteer
from tests.test_mail_delivery import payloads, to
from tests.test_manager_notifications import paris
from tests.test_organisations import sign_in
from tests.test_referent_digest import awaiting_mission, organisation, user

EMAIL = "ana.inactive@example.org"
ACTIVE = "zoe.active@example.org"
FIRST = "Vos données Renfort seront anonymisées dans 30 jours"
LAST = "Dans 7 jours, vos données Renfort seront anonymisées"


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


@pytest.fixture
def env(mail_sink: MailSink) -> dict[str, str]:
    return {"SMTP_URL": mail_sink.url, "INACTIVITY_DAYS": "100", "LOG_LEVEL": "INFO"}


async def elapse(db: asyncpg.Connection, days: int, *, volunteers: tuple[int, ...] = (),
                 users: tuple[int, ...] = ()) -> None:
    """As if `days` had passed for these people since their last activity and their warnings."""
    await db.execute(
        "UPDATE volunteers SET accepted_at = accepted_at - make_interval(days => $2),"
        " saved_at = saved_at - make_interval(days => $2), consent_at = consent_at - make_interval(days => $2),"
        " last_activity_at = last_activity_at - make_interval(days => $2),"
        " inactivity_warned_30_at = inactivity_warned_30_at - make_interval(days => $2),"
        " inactivity_warned_7_at = inactivity_warned_7_at - make_interval(days => $2)"
        " WHERE id = ANY($1::bigint[])", list(volunteers), days)
    await db.execute(
        "UPDATE applications SET applied_at = applied_at - make_interval(days => $2),"
        " updated_at = updated_at - make_interval(days => $2) WHERE volunteer_id = ANY($1::bigint[])",
        list(volunteers), days)
    await db.execute(
        "UPDATE users SET created_at = created_at - make_interval(days => $2),"
        " last_sign_in_at = last_sign_in_at - make_interval(days => $2),"
        " inactivity_warned_30_at = inactivity_warned_30_at - make_interval(days => $2),"
        " inactivity_warned_7_at = inactivity_warned_7_at - make_interval(days => $2)"
        " WHERE id = ANY($1::bigint[])", list(users), days)


def sweep(rq: SyncRedis, env: dict[str, str], times: int = 2) -> str:
    """The daily job, run `times` (the second finds nothing more to do); returns the workers' logs."""
    logs = ""
    for _ in range(times):
        enqueue.sweep_inactivity(rq)
        result = run_worker(env)
        logs += result.stdout + result.stderr
    return logs


async def test_warned_at_30_and_7_days_once_each_then_anonymised_keeping_the_rows(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis,
    env: dict[str, str]
) -> None:
    volunteer_id, active_id = await add_volunteer(db, EMAIL), await add_volunteer(db, ACTIVE)
    await db.execute("UPDATE volunteers SET phone = '0612345678', skills = '{permis B}' WHERE id = $1", volunteer_id)
    organisation_id = await organisation(db, "Secours lyonnais", "69123", status="validated")
    mission_id = await awaiting_mission(db, organisation_id, "Maraude du soir", "69123")
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, message, applied_at)"
                     " VALUES ($1, $2, 'done', 1, 'Je viens avec ma sœur Lina.', now())", mission_id, volunteer_id)
    user_id = await sign_in(client, redis, db, EMAIL)
    people = {"volunteers": (volunteer_id,), "users": (user_id,)}

    await elapse(db, 69, **people)
    logs = sweep(rq, env)
    assert mail_sink.messages() == []  # 31 days before the end: nothing yet
    await elapse(db, 2, **people)  # 29 days before the end
    logs += sweep(rq, env)
    [first] = to(mail_sink, EMAIL)
    assert first["Subject"] == FIRST
    assert "/connexion" in first.get_content() and "/mon-espace/donnees" in first.get_content()
    assert to(mail_sink, ACTIVE) == []

    await elapse(db, 23, **people)  # 7 days before the (30 days after the first warning) end
    logs += sweep(rq, env)
    assert [message["Subject"] for message in to(mail_sink, EMAIL)] == [FIRST, LAST]
    assert await db.fetchval("SELECT anonymised_at FROM volunteers WHERE id = $1", volunteer_id) is None

    await elapse(db, 7, **people)
    logs += sweep(rq, env)
    assert len(to(mail_sink, EMAIL)) == 2  # no e-mail for the anonymisation itself, none twice
    row = await db.fetchrow("SELECT * FROM volunteers WHERE id = $1", volunteer_id)
    assert row["first_name"] == row["last_name"] == "Anonyme"
    assert row["email"] == row["email_normalized"] == f"anonyme-v{volunteer_id}@anonyme.invalid"
    assert row["phone"] is None and row["skills"] == [] and row["birth_date"] == date(1990, 1, 1)
    assert row["postal_code"] == "69000" and row["anonymised_at"] is not None
    assert not row["mail_applications"] and not row["mail_emergencies"]
    application = await db.fetchrow("SELECT status, message FROM applications WHERE volunteer_id = $1", volunteer_id)
    assert application["status"] == "done" and application["message"] is None  # kept, without the words
    account = await db.fetchrow("SELECT email, email_normalized, anonymised_at FROM users WHERE id = $1", user_id)
    assert account["email"] == account["email_normalized"] == f"anonyme-u{user_id}@anonyme.invalid"
    assert await db.fetchval("SELECT count(*) FROM erasures") == 1  # a queued copy of the sign-up stays out
    assert await db.fetchval("SELECT count(*) FROM volunteers WHERE email_normalized = $1", EMAIL) == 0
    assert await db.fetchval("SELECT count(*) FROM users WHERE email_normalized = $1", EMAIL) == 0
    active = await db.fetchrow("SELECT first_name, anonymised_at FROM volunteers WHERE id = $1", active_id)
    assert active["first_name"] == "Ana" and active["anonymised_at"] is None
    # Signed out everywhere.
    gone = await client.get("/mon-espace", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/connexion")

    assert "inactivity sweep" in logs and "1 anonymised" in logs
    assert EMAIL not in logs and "@example.org" not in logs and "Lina" not in logs
    for payload in payloads(rq):
        assert "@" not in payload, payload


async def test_activity_after_a_warning_starts_the_period_again(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis, env: dict[str, str]
) -> None:
    volunteer_id = await add_volunteer(db, EMAIL)
    await elapse(db, 71, volunteers=(volunteer_id,))
    sweep(rq, env, times=1)
    assert [message["Subject"] for message in to(mail_sink, EMAIL)] == [FIRST]

    # The volunteer edits their profile: a new period of 100 days starts, the warning is moot.
    await db.execute("UPDATE volunteers SET last_activity_at = now() WHERE id = $1", volunteer_id)
    await elapse(db, 40, volunteers=(volunteer_id,))  # long past the first warning's end, not past the new one
    sweep(rq, env)
    assert len(to(mail_sink, EMAIL)) == 1
    assert await db.fetchval("SELECT anonymised_at FROM volunteers WHERE id = $1", volunteer_id) is None

    await elapse(db, 31, volunteers=(volunteer_id,))  # 71 days into the new period: warned again, once
    sweep(rq, env)
    assert [message["Subject"] for message in to(mail_sink, EMAIL)] == [FIRST, FIRST]

    # An application counts as activity too.
    organisation_id = await organisation(db, "Secours lyonnais", "69123", status="validated")
    mission_id = await awaiting_mission(db, organisation_id, "Maraude du soir", "69123")
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                     " VALUES ($1, $2, 'pending', 1, now())", mission_id, volunteer_id)
    await db.execute("UPDATE volunteers SET inactivity_warned_30_at = inactivity_warned_30_at - interval '40 days'"
                     " WHERE id = $1", volunteer_id)
    sweep(rq, env)
    assert len(to(mail_sink, EMAIL)) == 2


async def test_anonymising_the_last_manager_suspends_the_organisation_and_tells_its_referents(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis, env: dict[str, str]
) -> None:
    manager = await user(db, "gestion.inactive@example.org")
    colleague = await user(db, "collegue@example.org")
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, '69')", manager)
    referent = await user(db, "referent.rhone@example.org", department="69")
    await user(db, "referent.isere@example.org", department="38")
    alone = await organisation(db, "Secours lyonnais", "69123", status="validated")
    shared = await organisation(db, "Banque alimentaire", "69123", status="validated")
    await db.executemany("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                         [(alone, manager), (shared, manager), (shared, colleague)])
    await db.execute("INSERT INTO role_changes (actor_user_id, actor_label, subject_user_id, action, role, scope)"
                     " VALUES ($1, 'gestion.inactive@example.org', $2, 'grant', 'referent', 'departements:69')",
                     manager, referent)

    for days in (71, 23, 7):
        await elapse(db, days, users=(manager,))
        logs = sweep(rq, env)
    assert [message["Subject"] for message in to(mail_sink, "gestion.inactive@example.org")] == [FIRST, LAST]
    status = dict((row["id"], (row["status"], row["status_reason"])) for row in await db.fetch(
        "SELECT id, status, status_reason FROM organisations"))
    assert status == {alone: ("suspended", SUSPENSION_REASON), shared: ("validated", None)}
    [told] = to(mail_sink, "referent.rhone@example.org")
    assert told["Subject"] == "Structure suspendue faute de gestionnaire : Secours lyonnais"
    assert "/moderation/organisations" in told.get_content()
    assert to(mail_sink, "referent.isere@example.org") == [] and to(mail_sink, "collegue@example.org") == []
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE user_id = $1", manager) == 0
    assert await db.fetchval("SELECT count(*) FROM coordinator_scopes WHERE user_id = $1", manager) == 0
    # The audit keeps its rows: the revocation is written, the address the person left as an actor goes.
    audit = await db.fetch("SELECT actor_label, action, role, scope FROM role_changes ORDER BY id")
    assert [tuple(row) for row in audit] == [("Anonyme", "grant", "referent", "departements:69"),
                                             ("anonymisation pour inactivité", "revoke", "coordinator",
                                              "departements:69")]
    for line in logs.splitlines():
        assert "gestion.inactive" not in line, line
    assert logs.count("1 organisations_suspended") == 1  # the second run: nothing more


async def test_the_sweep_is_scheduled_once_a_day_from_eight_paris_time(rq: SyncRedis) -> None:
    day = date(2026, 12, 3)
    assert schedule_inactivity_sweep(rq, now=paris(day, 7)) is False
    assert schedule_inactivity_sweep(rq, now=paris(day, 9)) is True
    assert schedule_inactivity_sweep(rq, now=paris(day, 22)) is False
    assert rq.ttl(daily_lock("inactivity", "2026-12-03")) > 86_400
    assert job_queue(rq).count == 1
