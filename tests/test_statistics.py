"""The public statistics `/statistiques`: the refresh job counts the seeded data exactly (by Paris month, cumulated,
by department per 1,000 inhabitants of the real population), the page shows them with its charts and map from Redis
alone — no SQL on a visit — and, with no figures stored yet, says they are being computed and asks for one refresh."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.base import make_engine, unit_of_work
from app.formats import decimal, integer, when
from app.settings import get_settings
from app.statistics import cache, charts, figures
from app.statistics.schemas import Month, Statistics
from queues.connection import job_queue
from queues.statistics import refresh_statistics
from queues.worker import schedule_statistics_refresh
from tests.conftest import REDIS_URL, run_worker
from tests.test_coordination import add_volunteers
from tests.test_missions import insert_missions

LYON, MENDE = "69123", "48095"  # Rhône: many people; Lozère: fewer than 10 of them
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REFRESH_JOB = "queues.statistics.refresh_statistics"


async def organisation(db: asyncpg.Connection, commune_code: str, status: str = "validated",
                       created_at: datetime = NOW) -> int:
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status,"
        " created_at) SELECT 'Entraide', 'association', 'Rue', postal_codes[1], code, 'Aide.', $2, $3"
        " FROM communes WHERE code = $1 RETURNING id", commune_code, status, created_at,
    )
    return organisation_id


async def apply_all(db: asyncpg.Connection, mission_id: int, volunteer_ids: list[int], applied_at: datetime) -> None:
    await db.executemany(
        "INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
        " VALUES ($1, $2, 'pending', 1, $3)", [(mission_id, volunteer, applied_at) for volunteer in volunteer_ids],
    )


async def population(db: asyncpg.Connection, department: str) -> int:
    total: int = await db.fetchval("SELECT sum(population) FROM communes WHERE department_code = $1", department)
    return total


async def seed(db: asyncpg.Connection) -> dict[str, Any]:
    """Volunteers in several months (one at a Paris month's edge), missions, applications and organisations."""
    lyon = await add_volunteers(db, None, LYON, datetime(2026, 11, 15, 9, tzinfo=UTC), 12)
    # 23:30 UTC on 31 October is 00:30 on 1 November in Paris: a November sign-up.
    lyon += await add_volunteers(db, None, LYON, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 3)
    await add_volunteers(db, None, MENDE, datetime(2026, 3, 10, 10, tzinfo=UTC), 5)
    await add_volunteers(db, None, MENDE, datetime(2023, 1, 10, 10, tzinfo=UTC), 2)  # before the 24 months
    hidden = await add_volunteers(db, None, LYON, datetime(2026, 11, 20, tzinfo=UTC), 1)
    await db.execute("UPDATE volunteers SET unconfirmed = true WHERE id = $1", hidden[0])
    validated = await organisation(db, LYON, created_at=datetime(2025, 6, 1, 10, tzinfo=UTC))
    await organisation(db, MENDE, status="awaiting_validation")
    await insert_missions(db, validated, LYON, 3)
    missions = [row["id"] for row in await db.fetch("SELECT id FROM missions ORDER BY id")]
    await db.execute("UPDATE missions SET created_at = $1", datetime(2026, 9, 2, 8, tzinfo=UTC))
    await db.execute("UPDATE missions SET status = 'draft' WHERE id = $1", missions[2])  # never published
    await db.execute(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, status, created_at) VALUES ($1, 'À distance', 'Une mission de test assez longue.',"
        " 'solidarite-insertion', '{}', true, 3, false, 'finished', $2)", validated, datetime(2026, 9, 3, tzinfo=UTC),
    )
    await apply_all(db, missions[0], lyon, datetime(2026, 11, 16, 9, tzinfo=UTC))
    return {"lyon_volunteers": lyon, "missions": missions}


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    engine = make_engine(get_settings().database_url, pool_size=1)
    yield engine
    await engine.dispose()


async def computed(engine: AsyncEngine, now: datetime = NOW) -> Statistics:
    async with unit_of_work(engine) as session:
        return await figures.compute(session, now=now)


def by_month(document: Statistics, key: str) -> dict[str, Month]:
    [series] = [s for s in document.series if s.key == key]
    return {month.month: month for month in series.months}


def rows_of(html: str, department: str) -> str:
    match = re.search(rf'<tr data-department="{department}">(.*?)</tr>', html, re.S)
    assert match, department
    return match.group(1)


def cell(row: str, figure: str) -> str:
    match = re.search(rf'data-figure="{figure}">([^<]*)<', row)
    assert match, figure
    return match.group(1)


async def refreshed() -> str:
    """The job itself, as a worker runs it (it owns its event loop, so off this one)."""
    return await asyncio.to_thread(refresh_statistics)


def queued_refreshes() -> int:
    connection = SyncRedis.from_url(REDIS_URL)
    try:
        return sum(1 for job in job_queue(connection).get_jobs() if job.func_name == REFRESH_JOB)
    finally:
        connection.close()


# The figures ------------------------------------------------------------------------------------------------------


async def test_volunteers_are_counted_by_paris_month_and_cumulated_from_the_first_sign_up(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    await seed(db)
    document = await computed(engine)
    months = by_month(document, "volunteers")
    keys = list(months)
    assert (keys[0], keys[-1], len(keys)) == ("2025-01", "2026-12", figures.MONTHS)
    assert months["2026-11"].label == "novembre 2026"
    assert {key: m.new for key, m in months.items() if m.new} == {"2026-03": 5, "2026-11": 15}
    # The two 2023 sign-ups start the total; the unconfirmed one counts nowhere.
    assert months["2025-01"].cumulative == 2 and months["2026-02"].cumulative == 2
    assert months["2026-03"].cumulative == 7 and months["2026-10"].cumulative == 7
    assert months["2026-11"].cumulative == 22 and months["2026-12"].cumulative == 22
    [volunteers] = [s for s in document.series if s.key == "volunteers"]
    assert volunteers.total == 22


async def test_missions_applications_and_organisations_count_only_what_was_published_or_validated(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    await seed(db)
    document = await computed(engine)
    assert {k: m.new for k, m in by_month(document, "missions").items() if m.new} == {"2026-09": 3}  # 2 + remote
    assert {k: m.new for k, m in by_month(document, "applications").items() if m.new} == {"2026-11": 15}
    assert {k: m.new for k, m in by_month(document, "organisations").items() if m.new} == {"2025-06": 1}
    rhone = next(row for row in document.departments if row.code == "69")
    assert (rhone.missions, rhone.applications, rhone.organisations) == (2, 15, 1)  # the remote mission: nowhere
    lozere = next(row for row in document.departments if row.code == "48")
    assert (lozere.missions, lozere.applications, lozere.organisations) == (0, 0, 0)


async def test_departments_are_per_thousand_of_their_real_population_and_small_counts_get_no_rate(
    db: asyncpg.Connection, engine: AsyncEngine
) -> None:
    await seed(db)
    document = await computed(engine)
    rows = {row.code: row for row in document.departments}
    assert len(rows) >= 101
    rhone_population, lozere_population = await population(db, "69"), await population(db, "48")
    assert rows["69"].population == rhone_population and rows["48"].population == lozere_population
    assert rows["69"].volunteers == 15
    assert rows["69"].volunteers_per_thousand == round(15 * 1000 / rhone_population, 2)
    assert rows["69"].applications_per_thousand == round(15 * 1000 / rhone_population, 2)
    assert rows["69"].missions_per_thousand == round(2 * 1000 / rhone_population, 2)
    # 7 Lozère volunteers: fewer than 10 people, so no rate that would give the count away.
    assert rows["48"].volunteers == 7 and rows["48"].volunteers_per_thousand is None
    assert rows["48"].missions_per_thousand == 0.0  # not people: a rate, even of nothing
    mapped = {area.code: area for area in document.volunteers_map.areas}
    assert mapped["69"].text == decimal(round(15 * 1000 / rhone_population, 2), 2)
    assert mapped["48"].level == "none" and mapped["48"].text == ""


# The page ---------------------------------------------------------------------------------------------------------


async def test_the_page_shows_the_stored_figures_with_charts_a_map_and_tables(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis
) -> None:
    await seed(db)
    computed_at = await refreshed()
    assert await redis.ttl(cache.KEYS.document) > 86_400  # kept long past its refresh period
    response = await client.get("/statistiques")
    assert response.status_code == 200
    html = response.text
    moment = datetime.fromisoformat(computed_at)
    assert re.search(r"Chiffres du \d\d/\d\d/\d{4} à \d\d:\d\d", html)
    assert f"Chiffres du {when(moment, 'date')} à {when(moment, 'time')}" in html
    assert "en cours de calcul" not in html
    # Eight charts (four measures, new and cumulative), each a picture with its words, and its table.
    assert html.count('role="img"') == 8 and html.count('width="100%"') >= 8
    assert html.count("<title id=") == 8 and 'viewBox="0 0 400 240"' in html
    assert '<table data-series="volunteers">' in html and '<tr data-month="2026-11">' in html
    assert re.search(r'<tr data-month="2026-11"><th scope="row">novembre 2026</th><td data-label="Nouveaux">15</td>'
                     r'<td data-label="Total en fin de mois">22</td>', html)
    # The map of France, and the department table with its rates.
    assert 'id="carte-benevoles"' in html and html.count("use href=") >= 101
    rhone = rows_of(html, "69")
    assert cell(rhone, "volunteers") == "15"
    assert cell(rhone, "volunteers_per_thousand") == decimal(round(15 * 1000 / await population(db, "69"), 2), 2)
    lozere = rows_of(html, "48")
    assert cell(lozere, "volunteers") == "moins de 10" and cell(lozere, "volunteers_per_thousand") == "non publié"
    assert cell(lozere, "applications") == "moins de 10"
    assert cell(lozere, "missions") == "0" and cell(lozere, "missions_per_thousand") == "0,00"
    assert f"{integer(22)}</span>" in html  # the volunteers' total


async def test_a_visit_runs_no_sql_even_when_the_figures_are_missing(
    client: AsyncTestClient, db: asyncpg.Connection
) -> None:
    statements: list[str] = []

    def counted(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine: AsyncEngine = client.app.state.web.engine
    event.listen(engine.sync_engine, "before_cursor_execute", counted)
    try:
        await client.get("/missions", params={"postal_code": "69001"})
        assert statements, "the counter sees the statements of a page that queries"
        statements.clear()
        assert (await client.get("/statistiques")).status_code == 200
        await seed(db)
        await refreshed()
        assert "Chiffres du" in (await client.get("/statistiques")).text
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", counted)
    assert statements == []


async def test_missing_figures_say_they_are_being_computed_and_ask_for_one_refresh_a_minute(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis
) -> None:
    await seed(db)
    for _ in range(3):
        response = await client.get("/statistiques")
        assert response.status_code == 200
        assert "Les statistiques sont en cours de calcul" in response.text
        assert response.headers["cache-control"] == "no-store"
        assert 'role="img"' not in response.text and "data-department" not in response.text  # no figures at all
    assert queued_refreshes() == 1
    assert 0 < await redis.ttl(cache.KEYS.requested) <= cache.REQUEST_LOCK_SECONDS
    await asyncio.to_thread(run_worker)
    html = (await client.get("/statistiques")).text
    assert "en cours de calcul" not in html and cell(rows_of(html, "69"), "volunteers") == "15"


async def test_figures_left_by_another_version_are_refreshed_like_missing_ones(
    client: AsyncTestClient, redis: Redis
) -> None:
    await redis.set(cache.KEYS.document, b'{"computed_at": 3}')
    response = await client.get("/statistiques")
    assert response.status_code == 200 and "en cours de calcul" in response.text
    assert queued_refreshes() == 1


async def test_the_stored_document_is_one_msgspec_value_that_reads_back_whole(
    db: asyncpg.Connection, redis: Redis
) -> None:
    await seed(db)
    await refreshed()
    raw = await redis.get(cache.KEYS.document)
    document = msgspec.json.decode(raw, type=Statistics)
    assert [s.key for s in document.series] == [m.key for m in figures.MEASURES]
    assert await cache.read(redis) == document


async def test_the_workers_schedule_the_refresh_once_per_period_however_many_tick() -> None:
    connection = SyncRedis.from_url(REDIS_URL)
    try:
        assert schedule_statistics_refresh(connection) is True
        assert schedule_statistics_refresh(connection) is False
        assert 0 < int(connection.ttl(cache.KEYS.scheduled)) <= cache.REFRESH_SECONDS
    finally:
        connection.close()
    assert queued_refreshes() == 1


# The charts -------------------------------------------------------------------------------------------------------


def test_chart_scales_are_round_and_reach_the_largest_month() -> None:
    assert [charts.nice_step(n) for n in (0, 3, 4, 5, 9, 41, 100, 101, 1234)] == [1, 1, 1, 2, 5, 20, 50, 50, 500]


def test_a_bar_chart_draws_each_month_and_says_what_it_shows() -> None:
    months = [Month(month=f"2026-{n:02d}", label=f"{figures.MONTH_NAMES[n - 1]} 2026", new=n, cumulative=n * 2)
              for n in range(1, 13)]
    bar = charts.monthly(months, kind="bar", title="Nouveaux bénévoles inscrits par mois", unit="bénévoles")
    assert len(bar.marks) == 12 and bar.marks[-1].text == "décembre 2026 : 12"
    tallest = bar.marks[-1]
    assert tallest.y >= bar.top and tallest.y + tallest.height == pytest.approx(bar.baseline, abs=0.2)
    assert bar.ticks[-1].label == "20" and bar.ticks[0].y == bar.baseline
    assert [label.month for label in bar.labels] == ["déc.", "juin"]
    assert bar.description.startswith("Nouveaux bénévoles inscrits par mois, de janvier 2026 à décembre 2026 : "
                                      "78 bénévoles en tout, au plus 12 (décembre 2026)")
    line = charts.monthly(months, kind="line", title="Bénévoles inscrits au total", unit="bénévoles")
    assert line.points.count(",") == 12 and "24 fin décembre 2026" in line.description
