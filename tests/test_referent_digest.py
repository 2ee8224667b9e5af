"""The referents' daily digest through a real worker, PostgreSQL and a mail sink: each referent gets what awaits
moderation in their scope only (a department, a region's departments, the whole country), oldest first; the
admins get the departments no referent covers; nothing waiting, no e-mail; once a day however often it runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import asyncpg
import pytest
from redis import Redis as SyncRedis

from ops.services import MailSink
from queues import enqueue
from queues.connection import job_queue, sync_redis
from queues.worker import daily_lock, schedule_referent_digests
from tests.conftest import REDIS_URL, run_worker
from tests.test_mail_delivery import payloads, run_until_nothing_waits, scheduled, to
from tests.test_manager_notifications import PARIS, paris

SUBJECT = "À modérer : "
POSTCODES = {"69123": "69001", "38185": "38000", "13055": "13001", "75056": "75001", "01053": "01000"}


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


async def user(db: asyncpg.Connection, email: str, *, admin: bool = False, department: str | None = None,
               region: str | None = None, national: bool = False) -> int:
    user_id = int(await db.fetchval("INSERT INTO users (email, email_normalized, is_admin) VALUES ($1, $1, $2)"
                                    " RETURNING id", email, admin))
    if department or region or national:
        await db.execute("INSERT INTO referent_scopes (user_id, department_code, region_code) VALUES ($1, $2, $3)",
                         user_id, department, region)
    return user_id


async def organisation(db: asyncpg.Connection, name: str, commune_code: str, *, status: str = "awaiting_validation",
                       days_ago: int = 0) -> int:
    return int(await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status,"
        " status_changed_at) VALUES ($1, 'association', '1 rue', $2, $3, 'Aide.', $4,"
        " now() - make_interval(days => $5)) RETURNING id",
        name, POSTCODES[commune_code], commune_code, status, days_ago,
    ))


async def awaiting_mission(db: asyncpg.Connection, organisation_id: int, title: str, commune_code: str | None,
                           days_ago: int = 0) -> int:
    """A mission a manager published, awaiting validation (at `commune_code`, or remote)."""
    mission_id = int(await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places, open_to_minors,"
        " status, status_changed_at) VALUES ($1, $2, 'Aider.', 'solidarite-insertion', '{}', $3, 5, false,"
        " 'awaiting_validation', now() - make_interval(days => $4)) RETURNING id",
        organisation_id, title, commune_code is None, days_ago,
    ))
    if commune_code:
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " SELECT $1, 'Rue', $2, code, latitude, longitude FROM communes WHERE code = $3",
            mission_id, POSTCODES[commune_code], commune_code,
        )
    return mission_id


def day_words(days_ago: int) -> str:
    return f"{datetime.now(PARIS) - timedelta(days=days_ago):%d/%m/%Y}"


def lines(message: object) -> list[str]:
    return message.get_content().splitlines()  # type: ignore[attr-defined]


async def test_each_referent_gets_once_a_day_what_waits_in_their_scope_only_oldest_first(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await user(db, "rhone@example.org", department="69")
    await user(db, "auvergne-rhone-alpes@example.org", region="84")
    await user(db, "paris@example.org", department="75")  # nothing waits in Paris
    await user(db, "admin@example.org", admin=True)
    await user(db, "simple@example.org")
    await organisation(db, "Jeunes de Lyon", "69123", days_ago=1)
    await organisation(db, "Anciens de Lyon", "69123", days_ago=5)
    await organisation(db, "Marins de Marseille", "13055", days_ago=2)  # no referent for 13: the admins'
    await organisation(db, "Déjà validée", "69123", status="validated")
    lyon = await organisation(db, "Secours lyonnais", "69123", status="validated")
    await awaiting_mission(db, lyon, "Maraude à Grenoble", "38185", days_ago=3)  # moderated where it happens
    await awaiting_mission(db, lyon, "Écoute à distance", None, days_ago=4)  # remote: the organisation's
    env = {"SMTP_URL": mail_sink.url}

    for _ in range(2):  # the second run of the day sends nothing more
        enqueue.send_referent_digests(rq)
        run_worker(env)

    [rhone] = to(mail_sink, "rhone@example.org")
    assert rhone["Subject"] == "À modérer : 2 structure(s) et 1 mission(s) en attente"
    text = lines(rhone)
    organisations = [line for line in text if line.startswith("- ") and "«" not in line]
    assert organisations == [f"- Anciens de Lyon (69), depuis le {day_words(5)}",  # oldest first
                             f"- Jeunes de Lyon (69), depuis le {day_words(1)}"]
    assert any(line.startswith("- « Écoute à distance », proposée par Secours lyonnais (69)") for line in text)
    assert not any("Grenoble" in line or "Marins" in line for line in text)
    assert "/moderation/organisations" in rhone.get_content() and "/moderation/missions" in rhone.get_content()

    [region] = to(mail_sink, "auvergne-rhone-alpes@example.org")
    assert region["Subject"] == "À modérer : 2 structure(s) et 2 mission(s) en attente"
    missions = [line for line in lines(region) if line.startswith("- « ")]
    assert [line.split(" »")[0] for line in missions] == ["- « Écoute à distance", "- « Maraude à Grenoble"]

    [admin] = to(mail_sink, "admin@example.org")
    assert admin["Subject"] == "À modérer : 1 structure(s) en attente"
    assert "Marins de Marseille (13)" in admin.get_content() and "Lyon" not in admin.get_content()
    assert to(mail_sink, "paris@example.org") == [] and to(mail_sink, "simple@example.org") == []
    for text_payload in payloads(rq):
        assert "@" not in text_payload, text_payload


async def test_with_a_national_referent_the_admins_get_nothing_and_nothing_waiting_sends_nothing(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await user(db, "national@example.org", national=True)
    await user(db, "admin@example.org", admin=True)
    env = {"SMTP_URL": mail_sink.url}
    enqueue.send_referent_digests(rq)
    run_worker(env)
    assert mail_sink.messages() == []

    await organisation(db, "Marins de Marseille", "13055")
    enqueue.send_referent_digests(rq, day="2026-12-02")
    run_worker(env)
    assert len(to(mail_sink, "national@example.org", SUBJECT)) == 1
    assert to(mail_sink, "admin@example.org") == []


async def test_a_digest_over_budget_waits_and_leaves_once(
    db: asyncpg.Connection, mail_sink: MailSink, rq: SyncRedis
) -> None:
    await user(db, "rhone@example.org", department="69")
    await organisation(db, "Jeunes de Lyon", "69123")
    env = {"SMTP_URL": mail_sink.url, "MAIL_BUDGET_ACCOUNT": "1", "MAIL_BUDGET_WINDOW_SECONDS": "2"}
    for day in ("2026-12-02", "2026-12-03"):  # two days' digests, one budget
        enqueue.send_referent_digests(rq, day=day)
    run_worker(env)
    assert len(to(mail_sink, "rhone@example.org")) == 1 and len(scheduled(rq)) == 1
    run_until_nothing_waits(rq, env)
    assert len(to(mail_sink, "rhone@example.org")) == 2


async def test_the_digest_is_scheduled_once_a_day_from_eight_paris_time(rq: SyncRedis) -> None:
    day = date(2026, 12, 3)
    assert schedule_referent_digests(rq, now=paris(day, 7)) is False
    assert schedule_referent_digests(rq, now=paris(day, 9)) is True
    assert schedule_referent_digests(rq, now=paris(day, 23)) is False
    assert rq.ttl(daily_lock("referent-digest", "2026-12-03")) > 86_400
    assert job_queue(rq).count == 1
