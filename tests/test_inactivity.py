"""Inactive accounts through a real worker, PostgreSQL and a mail sink: warned 30 and 7 days before, each warning
once; any activity starts the period again; then anonymised — the rows kept (applications, audit), the personal
data gone, the sessions ended, a queued copy of the sign-up stopped; the last manager's organisation suspended and
its referents told; the sweep run twice changes nothing more and sends nothing more, and logs no address.

Time passes by moving a person's timestamps back (`elapse`): the worker runs on the real clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.privacy import download
from app.privacy.inactivity import SUSPENSION_REASON, Person, Sweep, anonymise, still_inactive
from app.text_rules import TextRefused
from app.volunteers.validation import parse_email
from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.worker import daily_lock, schedule_inactivity_sweep
from tests.conftest import DATABASE_URL, REDIS_URL, TEST_ENV, run_worker
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
    await db.execute("UPDATE volunteers SET phone = '0612345678', skills = '{permis B}', commune_code = '69266',"
                     " emergency_slug = 'crue-rhone' WHERE id = $1", volunteer_id)
    organisation_id = await organisation(db, "Secours lyonnais", "69123", status="validated")
    mission_id = await awaiting_mission(db, organisation_id, "Maraude du soir", "69123")
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, message, applied_at)"
                     " VALUES ($1, $2, 'done', 1, 'Je viens avec ma sœur Lina.', now())", mission_id, volunteer_id)
    user_id = await sign_in(client, redis, db, EMAIL)
    people = {"volunteers": (volunteer_id,), "users": (user_id,)}
    token, _ = await download.open_request(redis, user_id)  # a data-download file under way

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
    assert row["email"] == row["email_normalized"]
    assert re.fullmatch(rf"anonyme-v{volunteer_id}-[0-9a-f]{{16}}@anonyme\.invalid", row["email"])
    assert row["phone"] is None and row["skills"] == [] and row["birth_date"] == date(1990, 1, 1)
    assert row["postal_code"] == "69000" and row["anonymised_at"] is not None
    # Villeurbanne becomes the department's most populous commune, the same for everyone of the Rhône.
    assert row["commune_code"] == await db.fetchval(
        "SELECT code FROM communes WHERE department_code = '69' ORDER BY population DESC, code LIMIT 1") != "69266"
    assert row["receipt"] != f"r-{EMAIL}" and len(row["receipt"]) == 32 and row["emergency_slug"] is None
    # What stays names nobody alone: the domains and the availability.
    assert row["domains"] == ["solidarite-insertion"] and row["availability"] == "weekends"
    assert await download.find_any(redis, token) is None and await download.current(redis, user_id) is None
    assert await redis.keys(f"{download.PREFIX}*") == []
    assert not row["mail_applications"] and not row["mail_emergencies"]
    application = await db.fetchrow("SELECT status, message FROM applications WHERE volunteer_id = $1", volunteer_id)
    assert application["status"] == "done" and application["message"] is None  # kept, without the words
    account = await db.fetchrow("SELECT email, email_normalized, anonymised_at FROM users WHERE id = $1", user_id)
    assert account["email"] == account["email_normalized"]
    assert re.fullmatch(rf"anonyme-u{user_id}-[0-9a-f]{{16}}@anonyme\.invalid", account["email"])
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


async def due(db: asyncpg.Connection, volunteer_id: int) -> None:
    """Long inactive and warned twice, long enough ago: the next sweep anonymises the volunteer."""
    await elapse(db, 200, volunteers=(volunteer_id,))
    await db.execute("UPDATE volunteers SET inactivity_warned_30_at = now() - interval '40 days',"
                     " inactivity_warned_7_at = now() - interval '10 days' WHERE id = $1", volunteer_id)


def test_the_sign_up_refuses_the_domain_of_the_placeholders() -> None:
    for address in ("anonyme-v1@anonyme.invalid", "Ana@ANONYME.invalid", "anonyme-u7-00ff@anonyme.invalid"):
        with pytest.raises(TextRefused) as refused:
            parse_email(address)
        assert refused.value.message == "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."
    assert parse_email("ana@example.org") == ("ana@example.org", "ana@example.org")
    assert parse_email("run.1@rehearsal.invalid")[1] == "run.1@rehearsal.invalid"  # the rehearsals' people


async def test_an_address_squatting_a_placeholder_blocks_nobody_and_a_failure_stops_no_one_else(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis, env: dict[str, str]
) -> None:
    first, second, third = [await add_volunteer(db, f"{name}.squat@example.org") for name in ("ana", "bea", "chloe")]
    # Written straight to the table (the sign-up refuses them): the placeholders the old scheme would have used.
    for row_id in (first, second, third):
        await add_volunteer(db, f"anonyme-v{row_id}@anonyme.invalid")
    for volunteer_id in (first, second, third):
        await due(db, volunteer_id)
    # The second one's anonymisation is refused by the database.
    await db.execute(f"ALTER TABLE volunteers ADD CONSTRAINT refuse_one CHECK (id <> {second} OR anonymised_at IS NULL)"
                     " NOT VALID")
    try:
        logs = sweep(rq, env, times=1)
    finally:
        await db.execute("ALTER TABLE volunteers DROP CONSTRAINT refuse_one")
    anonymised = dict((row["id"], row["anonymised_at"] is not None) for row in await db.fetch(
        "SELECT id, anonymised_at FROM volunteers WHERE id = ANY($1::bigint[])", [first, second, third]))
    assert anonymised == {first: True, second: False, third: True}
    assert "2 anonymised" in logs and "1 failed" in logs and f"failed for v{second}: IntegrityError" in logs
    assert "@example.org" not in logs and "squat" not in logs  # not a hex job id's "bea" by chance

    logs = sweep(rq, env, times=1)  # the next run takes up the one left
    assert await db.fetchval("SELECT anonymised_at FROM volunteers WHERE id = $1", second) is not None
    assert "1 anonymised" in logs and "0 failed" in logs


async def test_someone_back_since_the_batch_was_read_is_not_anonymised(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    volunteer_id = await add_volunteer(db, EMAIL)
    user_id = await sign_in(client, redis, db, EMAIL)
    await elapse(db, 200, volunteers=(volunteer_id,), users=(user_id,))
    activity = await db.fetchval(
        "SELECT greatest(v.accepted_at, v.saved_at, v.last_activity_at, u.created_at, u.last_sign_in_at)"
        " FROM volunteers v JOIN users u ON u.email_normalized = v.email_normalized WHERE v.id = $1", volunteer_id)
    person = Person(volunteer_id, user_id, activity, None, None)  # as the batch read it
    now = datetime.now(UTC)
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            assert await still_inactive(session, person)
        # Signs in again (or applies) between the batch's read and the anonymisation.
        await db.execute("UPDATE users SET last_sign_in_at = now() WHERE id = $1", user_id)
        async with unit_of_work(engine) as session:
            assert not await still_inactive(session, person)
            swept = Sweep()
            await anonymise(session, person, now=now, secret=TEST_ENV["SECRET_KEY"], sweep=swept)
        assert swept.counts["came_back"] == 1 and swept.counts["anonymised"] == 0
        await db.execute("UPDATE users SET last_sign_in_at = $2 WHERE id = $1", user_id, activity - timedelta(days=1))
        await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                         " VALUES ($1, $2, 'pending', 1, now())",
                         await awaiting_mission(db, await organisation(db, "Secours lyonnais", "69123",
                                                                       status="validated"), "Maraude", "69123"),
                         volunteer_id)
        async with unit_of_work(engine) as session:
            assert not await still_inactive(session, person)  # an application counts too
    finally:
        await engine.dispose()
    row = await db.fetchrow("SELECT first_name, anonymised_at FROM volunteers WHERE id = $1", volunteer_id)
    assert row["first_name"] == "Ana" and row["anonymised_at"] is None
