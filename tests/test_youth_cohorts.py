"""SNU cohorts: administrators and national coordinators create and edit them (French validation, CSRF), with a
choice deadline per department; nobody else may. Also the helpers the other youth tests share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from html import unescape
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from app.volunteers import age
from tests.test_organisations import post_form, sign_in
from tests.test_signin import csrf_token

ADMIN = "/administration/snu/sejours"
TODAY = age.today()
MISSIONS_START = TODAY + timedelta(days=120)


def born(years: int, *, days: int = 0, on: date = MISSIONS_START) -> date:
    """The birth date of someone `years` old on `on`, shifted by `days` (later: younger)."""
    try:
        birthday = on.replace(year=on.year - years)
    except ValueError:
        birthday = date(on.year - years, 3, 1)
    return birthday + timedelta(days=days)


def cohort_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "name": "Séjour de printemps",
        "stay_start": (MISSIONS_START - timedelta(days=20)).isoformat(),
        "stay_end": (MISSIONS_START - timedelta(days=8)).isoformat(),
        "missions_start": MISSIONS_START.isoformat(),
        "missions_end": (MISSIONS_START + timedelta(days=200)).isoformat(),
        "deadlines": f"69 : {(MISSIONS_START + timedelta(days=30)):%d/%m/%Y}\n2A {MISSIONS_START + timedelta(days=40)}",
    }
    return {**form, **overrides}


@pytest.fixture(autouse=True)
async def no_cohorts(clean_state: None, db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE cohorts RESTART IDENTITY CASCADE")


async def add_cohort(db: asyncpg.Connection, *, name: str = "Cohorte test", open_for_signup: bool = True,
                     missions_start: date = MISSIONS_START, deadline: date | None = None) -> int:
    cohort_id: int = await db.fetchval(
        "INSERT INTO cohorts (name, stay_start, stay_end, missions_start, missions_end, open_for_signup) "
        "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", name, missions_start - timedelta(days=20),
        missions_start - timedelta(days=8), missions_start, missions_start + timedelta(days=200), open_for_signup)
    if deadline is not None:
        await db.execute("INSERT INTO cohort_department_deadlines VALUES ($1, '69', $2)", cohort_id, deadline)
    return cohort_id


@pytest.fixture
async def browsers(settings: Settings) -> AsyncIterator[Any]:
    """Each call opens one more browser (its own cookies) on its own app."""
    opened: list[AsyncTestClient] = []

    async def browser() -> AsyncTestClient:
        client = AsyncTestClient(app=create_app(settings))
        await client.__aenter__()
        opened.append(client)
        return client

    yield browser
    for client in opened:
        await client.__aexit__(None, None, None)


def errors_in(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", unescape(text)).strip()
            for text in re.findall(r'class="field__error">([^<]+)<', html)]


async def test_an_admin_creates_and_edits_a_cohort_with_its_department_deadlines(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    response = await post_form(client, f"{ADMIN}/nouvelle", cohort_form(open_for_signup="1"), f"{ADMIN}/nouvelle")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{ADMIN}?fait=enregistree"
    row = await db.fetchrow("SELECT * FROM cohorts")
    assert row["name"] == "Séjour de printemps" and row["open_for_signup"] is True
    assert row["missions_start"] == MISSIONS_START
    deadlines = dict(await db.fetch("SELECT department_code, choose_by FROM cohort_department_deadlines"))
    assert deadlines == {"69": MISSIONS_START + timedelta(days=30), "2A": MISSIONS_START + timedelta(days=40)}
    listing = await client.get(ADMIN)
    assert "Cohorte enregistrée." in (await client.get(f"{ADMIN}?fait=enregistree")).text
    assert "Séjour de printemps" in listing.text and "Ouvertes" in listing.text

    # Editing replaces the fields and the deadlines; the form shows them as saved.
    edit = await client.get(f"{ADMIN}/{row['id']}")
    assert edit.status_code == 200 and "69 : " in edit.text and 'value="Séjour de printemps"' in edit.text
    changed = cohort_form(name="Séjour de printemps 2", deadlines=f"13 : {MISSIONS_START:%d/%m/%Y}")
    response = await post_form(client, f"{ADMIN}/{row['id']}", changed, f"{ADMIN}/{row['id']}")
    assert response.status_code == 303, response.text
    assert await db.fetchval("SELECT name || open_for_signup::text FROM cohorts") == "Séjour de printemps 2false"
    assert dict(await db.fetch("SELECT department_code, choose_by FROM cohort_department_deadlines")) == {
        "13": MISSIONS_START}
    assert (await client.get(f"{ADMIN}/999999")).status_code == 404


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"name": ""}, "name", "Indiquez le nom de la cohorte"),
    ({"stay_end": (MISSIONS_START - timedelta(days=30)).isoformat()}, "stay_end",
     "La fin du séjour de cohésion ne peut pas précéder son début."),
    ({"missions_end": (MISSIONS_START - timedelta(days=1)).isoformat()}, "missions_end",
     "La fin de la période des missions ne peut pas précéder son début."),
    ({"missions_start": (MISSIONS_START - timedelta(days=10)).isoformat()}, "missions_start",
     "Les missions commencent après le séjour de cohésion"),
    ({"stay_start": "31/02/2027"}, "stay_start", "n'est pas une date valide"),
    ({"missions_start": ""}, "missions_start", "Indiquez la date"),
    ({"deadlines": "69 demain"}, "deadlines", "Ligne 1 : écrivez le numéro du département puis la date"),
    ({"deadlines": f"69 {MISSIONS_START}\n69 {MISSIONS_START}"}, "deadlines", "Le département 69 figure deux fois"),
    ({"deadlines": f"69 {MISSIONS_START + timedelta(days=400)}"}, "deadlines", "tombe après la fin de la période"),
    ({"deadlines": f"999 {MISSIONS_START}"}, "deadlines", "Département(s) inconnu(s) : 999"),
])
async def test_a_cohort_with_wrong_dates_or_deadlines_is_refused_with_a_french_message(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, overrides: dict[str, str], field: str,
        message: str) -> None:
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    response = await post_form(client, f"{ADMIN}/nouvelle", cohort_form(**overrides), f"{ADMIN}/nouvelle")
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert any(message in text for text in errors_in(response.text)), errors_in(response.text)
    assert await db.fetchval("SELECT count(*) FROM cohorts") == 0


async def test_two_cohorts_cannot_share_a_name(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await add_cohort(db, name="Séjour de printemps")
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    response = await post_form(client, f"{ADMIN}/nouvelle", cohort_form(name="séjour de PRINTEMPS"),
                               f"{ADMIN}/nouvelle")
    assert response.status_code == 422 and "Une autre cohorte porte déjà ce nom" in response.text


async def test_only_admins_and_national_coordinators_manage_cohorts(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    nobody = await browsers()
    response = await nobody.get(ADMIN, follow_redirects=False)
    assert response.status_code in (302, 303) and "/connexion" in response.headers["location"]

    departmental: list[tuple[str, tuple[str | None, ...], tuple[str | None, ...]]] = [
        ("dep@example.org", ("69",), ()), ("ref@example.org", (), ("69",)), ("plain@example.org", (), ())]
    for email, departments, referent_of in departmental:
        browser = await browsers()
        await sign_in(browser, redis, db, email, departments=departments, referent_of=referent_of)
        assert (await browser.get(ADMIN)).status_code == 403, email
        token = csrf_token((await browser.get("/mon-espace")).text)
        response = await browser.post(f"{ADMIN}/nouvelle", data={**cohort_form(), "_csrf_token": token})
        assert response.status_code == 403, email

    national = await browsers()
    await sign_in(national, redis, db, "nat@example.org", departments=(None,))
    assert (await national.get(ADMIN)).status_code == 200
    response = await post_form(national, f"{ADMIN}/nouvelle", cohort_form(), f"{ADMIN}/nouvelle")
    assert response.status_code == 303
    assert await db.fetchval("SELECT count(*) FROM cohorts") == 1


async def test_a_cohort_form_without_its_csrf_token_is_refused(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    response = await client.post(f"{ADMIN}/nouvelle", data=cohort_form())
    assert response.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM cohorts") == 0


async def test_two_identical_cohorts_submitted_at_once_make_one_and_a_french_refusal(
        settings: Settings, db: asyncpg.Connection) -> None:
    import asyncio

    from app.db.base import make_engine, unit_of_work
    from app.youth import cohorts
    from app.youth.validation import YouthInvalid, validate_cohort

    valid = validate_cohort(cohort_form(deadlines=""))
    engine = make_engine(settings.database_url, pool_size=0)
    other = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        # The other submission has inserted the same name and not committed yet: this one's check sees nothing.
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "INSERT INTO cohorts (name, stay_start, stay_end, missions_start, missions_end) "
            "VALUES ($1, $2, $3, $4, $5)",
            valid.name, valid.stay_start, valid.stay_end, valid.missions_start, valid.missions_end)

        async def save() -> int:
            async with unit_of_work(engine) as session:
                return await cohorts.save_cohort(session, valid)

        task = asyncio.create_task(save())
        await asyncio.sleep(0.5)  # the insert waits on the other transaction's row
        await transaction.commit()
        with pytest.raises(YouthInvalid) as refused:
            await task
        assert refused.value.errors == {"name": "Une autre cohorte porte déjà ce nom : choisissez-en un autre."}
        assert await db.fetchval("SELECT count(*) FROM cohorts") == 1
    finally:
        await other.close()
        await engine.dispose()


async def test_a_cohort_id_past_64_bits_in_the_address_is_a_404_not_a_500(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "admin@example.org", admin=True)
    huge = f"{ADMIN}/{2**64}"
    assert (await client.get(huge)).status_code == 404
    response = await post_form(client, huge, cohort_form(), f"{ADMIN}/nouvelle")
    assert response.status_code == 404 and "Cette cohorte n'existe pas ou plus." in unescape(response.text)
