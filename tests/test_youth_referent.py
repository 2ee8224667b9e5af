"""The referents' follow-up of the SNU (`/snu/referent`): per cohort and department, offers awaiting validation, young
people without a choice or a place, agreements waiting for signatures, missions under way and completed; reminders
by e-mail (once per day and person, whoever asks), and the CSV export built by a worker for its requester only."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from html import unescape
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.settings import Settings
from app.youth import agreements
from ops.services import MailSink
from tests.conftest import run_worker
from tests.test_organisations import post_form, sign_in
from tests.test_youth_accounts import job_payloads, to
from tests.test_youth_cohorts import MISSIONS_START, TODAY, add_cohort, born, browsers, no_cohorts

FIXTURES = (browsers, no_cohorts)
HOME = "/snu/referent"


async def add_young(db: asyncpg.Connection, cohort_id: int, first_name: str, last_name: str, *,
                    status: str = "ready", years: int = 17, department: str = "69") -> int:
    email = f"{last_name.lower()}@example.org"
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", email)
    young_id: int = await db.fetchval(
        "INSERT INTO young_people (user_id, cohort_id, first_name, last_name, birth_date, department_code, "
        "postal_code, commune_code, status, source) VALUES ($1, $2, $3, $4, $5, $6, '69003', '69123', $7, 'signup') "
        "RETURNING id", user_id, cohort_id, first_name, last_name, born(years), department, status)
    return young_id


async def add_offer(db: asyncpg.Connection, title: str, *, status: str = "validated", department: str = "69") -> int:
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Les Restos du Rhône', 'association', '1 rue', '69001', '69123', 'Aide.', 'validated') RETURNING id")
    mission_id = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, priority, status) VALUES ($1, $2, 'Distribuer des repas.', 'solidarite-insertion', '{}',"
        " false, 10, true, false, 'published') RETURNING id", organisation_id, title)
    offer_id: int = await db.fetchval(
        "INSERT INTO youth_offers (mission_id, department_code, places, start_date, end_date, hours, tutor_name,"
        " tutor_email, source, status) VALUES ($1, $2, 3, $3, $4, 84, 'Tina Tuteur', 'tina@example.org',"
        " 'organisation', $5) RETURNING id", mission_id, department, MISSIONS_START + timedelta(days=10),
        MISSIONS_START + timedelta(days=40), status)
    return offer_id


async def place(settings: Settings, db: asyncpg.Connection, young_id: int, offer_id: int, *, signed: tuple[str, ...],
                unsigned: tuple[str, ...], status: str = "placed", hours: float = 0) -> int:
    placement_id: int = await db.fetchval(
        "INSERT INTO youth_placements (young_person_id, offer_id, rank, status) VALUES ($1, $2, 1, $3) RETURNING id",
        young_id, offer_id, status)
    # The agreement as the platform opens it, then its signatures as the test needs them.
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            [agreement_id] = await agreements.open_agreements(session, [placement_id], referent_user_id=None)
    finally:
        await engine.dispose()
    await db.execute("DELETE FROM youth_agreement_signatures WHERE agreement_id = $1", agreement_id)
    await db.execute("UPDATE youth_agreements SET signed_at = $2 WHERE id = $1", agreement_id,
                     None if unsigned else datetime.now(UTC))
    for party in signed + unsigned:
        await db.execute(
            "INSERT INTO youth_agreement_signatures (agreement_id, party, name, email, signed_at) "
            "VALUES ($1, $2, $3, $4, $5)", agreement_id, party, f"Signataire {party}", f"{party}@example.org",
            datetime.now(UTC) if party in signed else None)
    if hours:
        await db.execute("INSERT INTO youth_hours (placement_id, day, hours) VALUES ($1, $2, $3)", placement_id,
                         MISSIONS_START + timedelta(days=11), hours)
    return placement_id


async def a_department(settings: Settings, db: asyncpg.Connection, *, deadline: date) -> dict[str, int]:
    """One young person at each stage, in cohort « Cohorte test » in the Rhône, and one in another department."""
    cohort_id = await add_cohort(db, deadline=deadline)
    ids = {"cohort": cohort_id}
    ids["awaiting_offer"] = await add_offer(db, "Jardin partagé", status="awaiting_validation")
    await add_offer(db, "Bibliothèque de Bastia", status="awaiting_validation", department="2A")
    offer = await add_offer(db, "Épicerie solidaire")
    ids["consent"] = await add_young(db, cohort_id, "Léa", "Attente", status="awaiting_consent")
    ids["no_choice"] = await add_young(db, cohort_id, "Noé", "Sansvoeu")
    ids["chose"] = await add_young(db, cohort_id, "Inès", "Choisit")
    await db.execute("INSERT INTO youth_choices (young_person_id, rank, offer_id) VALUES ($1, 1, $2)",
                     ids["chose"], offer)
    ids["signing"] = await add_young(db, cohort_id, "Sam", "Signe")
    await place(settings, db, ids["signing"], offer, signed=("young", "organisation"),
                unsigned=("guardian", "referent"))
    ids["under_way"] = await add_young(db, cohort_id, "Yanis", "Encours", years=19)
    await place(settings, db, ids["under_way"], offer, signed=("young", "organisation", "referent"), unsigned=(),
                hours=7.5)
    ids["completed"] = await add_young(db, cohort_id, "=Zoé", "Fini", years=19)
    await place(settings, db, ids["completed"], offer, signed=("young", "organisation", "referent"), unsigned=(),
                status="completed", hours=12)
    ids["elsewhere"] = await add_young(db, cohort_id, "Paul", "Corse", department="2A")
    return ids


def section(html: str, section_id: str) -> str:
    """The rows of one section's table."""
    match = re.search(rf'<table class="table" id="{section_id}">(.*?)</table>', html, re.S)
    return match.group(1) if match else ""


def count(html: str, section_id: str) -> int:
    match = re.search(rf'id="{section_id}-nombre">(\d+)<', html)
    assert match, section_id
    return int(match.group(1))


async def test_a_referent_sees_each_stage_of_their_departments_cohort(
        settings: Settings, browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(settings, db, deadline=TODAY - timedelta(days=1))
    referent = await browsers()
    await sign_in(referent, redis, db, "ref69@example.org", referent_of=("69",))
    page = await referent.get(HOME, params={"cohorte": str(ids["cohort"]), "departement": "69"})
    assert page.status_code == 200
    html = page.text
    assert count(html, "offres") == 1 and "Jardin partagé" in section(html, "offres")
    assert "Bibliothèque de Bastia" not in html  # another department's offer
    without_choice = section(html, "sans-voeu")
    assert count(html, "sans-voeu") == 2 and "Léa Attente" in without_choice and "Noé Sansvoeu" in without_choice
    assert "Consentement du représentant légal attendu" in without_choice
    assert count(html, "sans-affectation") == 1 and "Inès Choisit" in section(html, "sans-affectation")
    signing = section(html, "signatures")
    assert count(html, "signatures") == 1 and "Sam Signe" in signing
    assert "le représentant légal, le ou la référent·e" in signing and "la structure" not in signing
    assert count(html, "en-cours") == 1 and "7,50 h" in section(html, "en-cours")
    assert count(html, "terminees") == 1 and "=Zoé Fini" in section(html, "terminees")
    assert "Paul Corse" not in html  # another department's young person
    assert "1er vœu : 3" in html and "(passée)" in html
    # The referent signs the agreements waiting for them from here.
    link = re.search(r'href="(/snu/convention\?jeton=[^"]+)"[^>]*>Lire et signer<', signing)
    assert link, signing
    agreement = await referent.get(unescape(link.group(1)))
    assert agreement.status_code == 200 and "Signer le contrat" in agreement.text and "Sam" in agreement.text

    # Before the deadline nobody is « without a place » yet.
    await db.execute("UPDATE cohort_department_deadlines SET choose_by = $1", TODAY)
    html = (await referent.get(HOME, params={"cohorte": str(ids["cohort"]), "departement": "69"})).text
    assert 'id="sans-affectation-nombre"' not in html and "(passée)" not in html

    # Another department, an unknown cohort, hostile values: a French page, never a 500 nor someone else's data.
    corsica = await referent.get(HOME, params={"cohorte": str(ids["cohort"]), "departement": "2A"})
    assert corsica.status_code == 404 and "pas référent·e de ce département" in corsica.text
    for params in ({"cohorte": "9" * 30, "departement": "69"}, {"cohorte": "\x00", "departement": "6\x009"},
                   {"cohorte": "x" * 5000, "departement": "69" * 2500}):
        response = await referent.get(HOME, params=params)
        assert response.status_code in (200, 404), params
        assert "Paul Corse" not in response.text

    national = await browsers()
    await sign_in(national, redis, db, "nat@example.org", referent_of=(None,))
    html = (await national.get(HOME, params={"cohorte": str(ids["cohort"]), "departement": "2A"})).text
    assert "Paul Corse" in section(html, "sans-voeu") and "Bibliothèque de Bastia" in section(html, "offres")

    plain = await browsers()
    await sign_in(plain, redis, db, "plain@example.org")
    assert (await plain.get(HOME)).status_code == 403


async def test_reminders_reach_young_people_without_a_choice_and_unsigned_parties_once_a_day(
        settings: Settings, browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    ids = await a_department(settings, db, deadline=TODAY + timedelta(days=3))
    referent = await browsers()
    await sign_in(referent, redis, db, "ref69@example.org", referent_of=("69",))
    form = {"cohorte": str(ids["cohort"]), "departement": "69"}
    sent = await post_form(referent, f"{HOME}/relances", form, HOME)
    assert sent.status_code == 303 and "fait=relances" in sent.headers["location"]
    payloads = await job_payloads(redis)
    assert payloads and all("sansvoeu" not in p.lower() and "@" not in p for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    [choice] = to(mail_sink, "sansvoeu@example.org")
    assert "avant le" in choice["Subject"]
    assert f"{TODAY + timedelta(days=3):%d/%m/%Y}" in choice.get_content() and "/snu/missions" in choice.get_content()
    assert to(mail_sink, "attente@example.org") == [] and to(mail_sink, "choisit@example.org") == []
    [guardian] = to(mail_sink, "guardian@example.org")
    assert "Sam Signe" in guardian["Subject"] and "/snu/convention?jeton=" in guardian.get_content()
    assert to(mail_sink, "young@example.org") == []  # signed already
    assert to(mail_sink, "referent@example.org") == []  # referents sign from the follow-up page
    stamped = await db.fetchval("SELECT party FROM youth_agreement_signatures WHERE reminded_at IS NOT NULL")
    assert stamped == "guardian"

    # Asked again the same day, twice at once: nobody is written to twice.
    before = len(list(mail_sink.messages()))
    for _ in range(2):
        assert (await post_form(referent, f"{HOME}/relances", form, HOME)).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(list(mail_sink.messages())) == before

    # A day later the unsigned parties are reminded again.
    await db.execute("UPDATE youth_agreement_signatures SET reminded_at = reminded_at - interval '25 hours' "
                     "WHERE reminded_at IS NOT NULL")
    assert (await post_form(referent, f"{HOME}/relances", form, HOME)).status_code == 303
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(to(mail_sink, "guardian@example.org")) == 2

    other = await browsers()
    await sign_in(other, redis, db, "ref13@example.org", referent_of=("13",))
    refused = await post_form(other, f"{HOME}/relances", form, HOME)
    assert refused.status_code == 404


async def test_the_csv_export_is_built_by_a_worker_for_its_requester_only(
        settings: Settings, browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(settings, db, deadline=TODAY - timedelta(days=1))
    referent = await browsers()
    await sign_in(referent, redis, db, "ref69@example.org", referent_of=("69",))
    asked = await post_form(referent, f"{HOME}/exports", {"cohorte": str(ids["cohort"]), "departement": "69"}, HOME)
    assert asked.status_code == 303
    page_path = asked.headers["location"]
    waiting = await referent.get(page_path)
    assert waiting.status_code == 200 and "Le fichier est en préparation" in waiting.text
    run_worker()
    ready = await referent.get(page_path)
    assert "Votre fichier est prêt" in ready.text
    download = re.search(r'href="(/snu/referent/exports/[^"]+/jeunes\.csv)"', ready.text)
    assert download
    response = await referent.get(download.group(1))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert 'filename="snu-Cohorte-test-69.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:5] == ["Prénom", "Nom", "Statut", "Vœux", "Étape"]
    by_name = {row[1]: row for row in rows[1:]}
    assert set(by_name) == {"Attente", "Sansvoeu", "Choisit", "Signe", "Encours", "Fini"}
    assert by_name["Choisit"][4] == "Vœux faits, sans affectation"
    assert by_name["Signe"][4] == "Convention à signer" and "le représentant légal" in by_name["Signe"][9]
    assert by_name["Encours"][10] == "7,50" and by_name["Fini"][4] == "Mission terminée"
    assert by_name["Fini"][0] == "'=Zoé"  # never a formula in a spreadsheet

    # Another referent, even of the same department, gets nothing from the link; the applicants' export path neither.
    other = await browsers()
    await sign_in(other, redis, db, "ref69b@example.org", referent_of=("69",))
    assert (await other.get(download.group(1))).status_code == 404
    token = page_path.rsplit("/", 1)[1]
    assert (await referent.get(f"/exports/{token}/candidatures.csv")).status_code in (403, 404)
    # Its referent scope removed, the requester loses it too.
    await db.execute("DELETE FROM referent_scopes WHERE user_id = (SELECT id FROM users WHERE email = $1)",
                     "ref69@example.org")
    assert (await referent.get(download.group(1))).status_code in (403, 404)


async def test_a_form_without_its_csrf_token_or_for_an_unknown_cohort_does_nothing(
        settings: Settings, browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    ids = await a_department(settings, db, deadline=TODAY)
    referent: AsyncTestClient = await browsers()
    await sign_in(referent, redis, db, "ref69@example.org", referent_of=("69",))
    no_token = await referent.post(f"{HOME}/relances", data={"cohorte": str(ids["cohort"]), "departement": "69"})
    assert no_token.status_code == 403
    unknown = await post_form(referent, f"{HOME}/exports", {"cohorte": "9" * 40, "departement": "69\x00"}, HOME)
    assert unknown.status_code == 404
    assert await job_payloads(redis) == []
