"""SNU agreements: opened for placements with a snapshot and the digest of its PDF (a minor's has four parties, an
adult's three), mailed by a real worker to each party with its own signed link, signed once per party from that link,
dated once when the last party signs (even two at once), then announced to all. Forged, expired and foreign links are
refused; hostile input yields a French 4xx."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.settings import Settings
from app.youth import agreements, links, pdf
from app.youth.links import Purpose
from app.youth.models import YouthPlacement
from ops.services import MailSink
from queues.connection import sync_redis
from tests.conftest import REDIS_URL, TEST_ENV, run_worker
from tests.test_organisations import sign_in
from tests.test_signin import csrf_token
from tests.test_youth_accounts import job_payloads, link_in
from tests.test_youth_allocation_runs import offer, subjects, young
from tests.test_youth_cohorts import TODAY, add_cohort, browsers, no_cohorts

FIXTURES = (browsers, no_cohorts)
SECRET = TEST_ENV["SECRET_KEY"]
PATH = "/snu/convention"
REFERENT = "rita.referente@example.org"
TUTOR = "tina@example.org"


async def placement(db: asyncpg.Connection, *, adult: bool = False, starts: int = -40) -> dict[str, int]:
    """A cohort, a referent of department 69, an offer whose dates run from `starts` days from today for 50 days,
    and a young person (a minor with their guardian's consent, or of age) placed on it with the ORM."""
    cohort_id = await add_cohort(db, name="Cohorte d'automne")
    offer_id = await offer(db, "Épicerie solidaire", tutor=TUTOR)
    await db.execute("UPDATE youth_offers SET start_date = $2, end_date = $3 WHERE id = $1", offer_id,
                     TODAY + timedelta(days=starts), TODAY + timedelta(days=starts + 50))
    referent_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                    REFERENT)
    await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, '69')", referent_id)
    young_id = await young(db, cohort_id, "Zoé", "Martin", years=19 if adult else 17, guardian=not adult)
    return {"cohort": cohort_id, "offer": offer_id, "referent": referent_id, "young": young_id}


async def open_with_orm(settings: Settings, ids: dict[str, int]) -> tuple[int, int]:
    """(placement id, agreement id): the placement made with the ORM and its agreement opened in one transaction."""
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            row = YouthPlacement(young_person_id=ids["young"], offer_id=ids["offer"], rank=1)
            session.add(row)
            await session.flush()
            [agreement_id] = await agreements.open_agreements(session, [row.id],
                                                              referent_user_id=ids["referent"])
            return row.id, agreement_id
    finally:
        await engine.dispose()


def request_signatures(agreement_ids: list[int]) -> None:
    connection = sync_redis(REDIS_URL)
    try:
        agreements.enqueue_signature_requests(connection, agreement_ids)
    finally:
        connection.close()


def token_of(agreement_id: int, party: str, *, expires_at: float | None = None,
             purpose: Purpose = Purpose.AGREEMENT) -> str:
    return links.mint(SECRET, purpose, f"{agreement_id}:{party}", int(expires_at or time.time() + 3600))


async def sign(client: AsyncTestClient, token: str, name: str = "Zoé Martin", accept: str = "oui") -> Any:
    page = await client.get(PATH, params={"jeton": token})
    form_token = csrf_token(page.text) if 'name="_csrf_token"' in page.text else \
        csrf_token((await client.get("/connexion")).text)
    return await client.post(PATH, data={"jeton": token, "signed_name": name, "accept": accept,
                                         "_csrf_token": form_token})


async def test_a_minor_agreement_has_four_parties_and_an_adult_three_with_a_stable_digest(
        settings: Settings, db: asyncpg.Connection) -> None:
    minor = await placement(db)
    placement_id, agreement_id = await open_with_orm(settings, minor)
    rows = await db.fetch("SELECT party, name, email, signed_at FROM youth_agreement_signatures "
                          "WHERE agreement_id = $1 ORDER BY party", agreement_id)
    assert {row["party"]: (row["name"], row["email"]) for row in rows} == {
        "young": ("Zoé Martin", "martin@example.org"),
        "guardian": ("Gaëlle Gardien", "parent.martin@example.org"),
        "organisation": ("Tina Tuteur", TUTOR),
        "referent": (REFERENT, REFERENT),
    }
    assert all(row["signed_at"] is None for row in rows)
    stored = await db.fetchrow("SELECT content, digest, signed_at FROM youth_agreements WHERE id = $1", agreement_id)
    content = json.loads(stored["content"])
    assert content["young"]["first_name"] == "Zoé" and content["mission_title"] == "Épicerie solidaire"
    assert content["organisation"]["name"] == "Les Restos du Rhône" and content["cohort_name"] == "Cohorte d'automne"
    assert content["offer"]["hours"] == 84 and content["guardian"]["email"] == "parent.martin@example.org"
    document = pdf.agreement_pdf(content)
    assert document.startswith(b"%PDF") and document == pdf.agreement_pdf(content)
    assert stored["digest"] == hashlib.sha256(document).hexdigest() and stored["signed_at"] is None
    plain = pdf.agreement_pdf(content, compress=False)
    assert "Zoé".encode("latin-1") in plain and "Martin".encode("latin-1") in plain and b"Tina Tuteur" in plain
    assert b"Contrat d'engagement - Mission d'int" in plain and "en attente de signature".encode("latin-1") in plain
    signed = pdf.agreement_pdf(content, [{"party": "guardian", "signed_name": "Gaëlle Gardien",
                                          "signed_at": "2026-03-04T10:00:00+00:00"}], compress=False)
    assert "signé par Gaëlle Gardien le 04/03/2026".encode("latin-1") in signed

    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            again = await agreements.open_agreements(session, [placement_id, placement_id], referent_user_id=None)
    finally:
        await engine.dispose()
    assert again == [agreement_id]
    assert await db.fetchval("SELECT count(*) FROM youth_agreements") == 1
    assert await db.fetchval("SELECT count(*) FROM youth_agreement_signatures") == 4

    await db.execute("TRUNCATE users, organisations RESTART IDENTITY CASCADE")
    await db.execute("DELETE FROM cohorts")
    adult = await placement(db, adult=True)
    _, adult_agreement = await open_with_orm(settings, adult)
    parties = {row["party"] for row in await db.fetch(
        "SELECT party FROM youth_agreement_signatures WHERE agreement_id = $1", adult_agreement)}
    assert parties == {"young", "organisation", "referent"}


async def test_each_party_signs_from_its_emailed_link_once_and_all_are_told(
        settings: Settings, browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    ids = await placement(db)
    _, agreement_id = await open_with_orm(settings, ids)
    request_signatures([agreement_id])
    payloads = await job_payloads(redis)
    assert payloads and all("zoé" not in p.lower() and "martin" not in p.lower() and "@" not in p
                            for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    addresses = {"young": "martin@example.org", "guardian": "parent.martin@example.org", "organisation": TUTOR}
    requests = {party: subjects(mail_sink, address, "Le contrat d'engagement de Zoé Martin attend")
                for party, address in addresses.items()}
    assert all(len(found) == 1 for found in requests.values()), requests
    # The department's referents sign every agreement from their follow-up page: no e-mail each.
    assert subjects(mail_sink, REFERENT, "Le contrat d'engagement") == []
    requests["referent"] = [None]
    assert "/snu/heures?jeton=" in requests["organisation"][0].get_content()
    assert "/snu/heures?jeton=" not in requests["young"][0].get_content()

    for number, (party, [mail]) in enumerate(requests.items()):
        token = token_of(agreement_id, party) if mail is None else link_in(mail, PATH).split("jeton=", 1)[1]
        path = f"{PATH}?jeton={token}"
        browser = await browsers()
        page = await browser.get(path)
        assert page.status_code == 200 and "Épicerie solidaire" in page.text and "Signer le contrat" in page.text
        document = await browser.get("/snu/convention/pdf", params={"jeton": token})
        assert document.status_code == 200 and document.content.startswith(b"%PDF")
        assert document.headers["content-type"] == "application/pdf"
        assert document.headers["content-disposition"].startswith("attachment;")
        assert document.headers["x-content-type-options"] == "nosniff"
        assert "no-store" in document.headers["cache-control"]
        unaccepted = await browser.post(PATH, data={"jeton": token, "signed_name": "Quelqu'un",
                                                    "_csrf_token": csrf_token(page.text)})
        assert unaccepted.status_code == 422 and "J&#39;ai lu et j&#39;accepte" in unaccepted.text
        done = await browser.post(PATH, data={"jeton": token, "signed_name": f"Signataire {party}", "accept": "oui",
                                              "_csrf_token": csrf_token(page.text)})
        assert done.status_code == 200 and "Merci, votre signature est enregistrée" in done.text
        twice = await sign(browser, token, name="Autre nom")
        assert twice.status_code == 200 and "déjà signée" in twice.text
        signed = await db.fetchval("SELECT count(*) FROM youth_agreement_signatures WHERE signed_at IS NOT NULL")
        assert signed == number + 1
        assert await db.fetchval("SELECT signed_name FROM youth_agreement_signatures WHERE party = $1",
                                 party) == f"Signataire {party}"
        if number < 3:
            assert await db.fetchval("SELECT signed_at FROM youth_agreements") is None
    assert await db.fetchval("SELECT signed_at FROM youth_agreements") is not None

    run_worker({"SMTP_URL": mail_sink.url})
    assert subjects(mail_sink, REFERENT, "Le contrat d'engagement") == []
    for party, address in addresses.items():
        [notice] = subjects(mail_sink, address, "Le contrat d'engagement de Zoé Martin est signé")
        assert ("/snu/heures?jeton=" in notice.get_content()) == (party == "organisation")
    final = await (await browsers()).get("/snu/convention/pdf",
                                         params={"jeton": token_of(agreement_id, "young")})
    stored = await db.fetchrow("SELECT content, digest FROM youth_agreements")
    assert final.status_code == 200 and hashlib.sha256(final.content).hexdigest() != stored["digest"]
    assert hashlib.sha256(pdf.agreement_pdf(json.loads(stored["content"]))).hexdigest() == stored["digest"]


async def test_two_last_signatures_at_once_date_the_agreement_once(
        settings: Settings, browsers: Any, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    ids = await placement(db, adult=True)
    _, agreement_id = await open_with_orm(settings, ids)
    assert (await sign(await browsers(), token_of(agreement_id, "young"))).status_code == 200
    tutor, referent = await browsers(), await browsers()
    pages = [await tutor.get(PATH, params={"jeton": token_of(agreement_id, "organisation")}),
             await referent.get(PATH, params={"jeton": token_of(agreement_id, "referent")})]
    both = await asyncio.gather(*(
        browser.post(PATH, data={"jeton": token_of(agreement_id, party), "signed_name": "Nom Prénom",
                                 "accept": "oui", "_csrf_token": csrf_token(page.text)})
        for browser, party, page in ((tutor, "organisation", pages[0]), (referent, "referent", pages[1]))))
    assert [response.status_code for response in both] == [200, 200]
    assert await db.fetchval("SELECT count(*) FROM youth_agreement_signatures WHERE signed_at IS NULL") == 0
    assert await db.fetchval("SELECT signed_at FROM youth_agreements") is not None
    run_worker({"SMTP_URL": mail_sink.url})
    notices = [message for message in mail_sink.messages() if message["Subject"].endswith("est signé")]
    assert sorted(message["To"] for message in notices) == sorted(["martin@example.org", TUTOR])


async def test_forged_expired_and_foreign_links_are_refused(
        settings: Settings, client: AsyncTestClient, db: asyncpg.Connection) -> None:
    ids = await placement(db, adult=True)
    _, agreement_id = await open_with_orm(settings, ids)
    genuine = token_of(agreement_id, "young")
    subject, expiry, signature = genuine.split(".")
    refused = {
        "another party": f"{agreement_id}:referent.{expiry}.{signature}",
        "another agreement": f"{agreement_id + 1}:young.{expiry}.{signature}",
        "a later expiry": f"{subject}.{int(expiry) + 60}.{signature}",
        "a consent link": token_of(agreement_id, "young", purpose=Purpose.CONSENT),
        "an hours link": links.mint(SECRET, Purpose.HOURS, agreement_id, int(time.time()) + 3600),
        "garbage": "pas-un-jeton",
        "a NUL byte": genuine + "\x00",
        "5,000 characters": "a" * 5000,
        "a party that does not exist": token_of(agreement_id, "stranger"),
    }
    for label, token in refused.items():
        page = await client.get(PATH, params={"jeton": token})
        assert page.status_code == 400, label
        assert "Ce lien n&#39;est pas valide" in page.text, label
        assert (await client.get("/snu/convention/pdf", params={"jeton": token})).status_code == 400, label
    assert (await sign(client, refused["another party"])).status_code == 400
    expired = token_of(agreement_id, "young", expires_at=time.time() - 1)
    page = await client.get(PATH, params={"jeton": expired})
    assert page.status_code == 410 and "Ce lien a expiré" in page.text
    assert (await sign(client, expired)).status_code == 410
    # A genuine link to a party the agreement lacks (an adult has no guardian), and to an agreement now gone.
    assert (await client.get(PATH, params={"jeton": token_of(agreement_id, "guardian")})).status_code == 410
    assert (await client.get(PATH, params={"jeton": token_of(agreement_id + 50, "young")})).status_code == 410
    assert await db.fetchval("SELECT count(*) FROM youth_agreement_signatures WHERE signed_at IS NOT NULL") == 0


async def test_hostile_names_are_refused_in_french_and_never_break_the_pdf(
        settings: Settings, client: AsyncTestClient, db: asyncpg.Connection) -> None:
    ids = await placement(db, adult=True)
    _, agreement_id = await open_with_orm(settings, ids)
    token = token_of(agreement_id, "young")
    for name in ("Zoé\x00Martin", "Z" * 5000, "   "):
        response = await sign(client, token, name=name)
        assert response.status_code in (413, 422), (name[:10], response.status_code)
        if response.status_code == 422:
            assert "field__error" in response.text
    assert await db.fetchval("SELECT count(*) FROM youth_agreement_signatures WHERE signed_at IS NOT NULL") == 0
    content: dict[str, Any] = {"created_at": "2026-01-01T00:00:00+00:00", "cohort_name": "C\x00" * 3000,
                               "young": {"first_name": "Ä" * 5000, "last_name": "Martin",
                                         "birth_date": "2010-01-01", "commune": "\x07Lyon"},
                               "guardian": None, "organisation": {"name": "O" * 5000, "address": "x"},
                               "mission_title": "L’Œuvre « — » \u200b\U0001f600\r\nN",
                               "offer": {"start_date": "bad", "end_date": "2026-02-01", "hours": 84, "places": 1},
                               "tutor": {}, "referent": {}, "parties": ["young", "organisation", "referent"]}
    document = pdf.agreement_pdf(content, [{"party": "young", "signed_name": "\x00" * 10,
                                            "signed_at": "2026-01-02T10:00:00+00:00"}], compress=False)
    assert document.startswith(b"%PDF") and "L'OEuvre « - »".encode("latin-1") in document


async def test_the_referents_view_lists_each_placement_with_its_signatures_and_hours(
        settings: Settings, db: asyncpg.Connection) -> None:
    ids = await placement(db)
    placement_id, agreement_id = await open_with_orm(settings, ids)
    await db.execute("UPDATE youth_agreement_signatures SET signed_at = now(), signed_name = name "
                     "WHERE agreement_id = $1 AND party IN ('young', 'referent')", agreement_id)
    await db.execute("INSERT INTO youth_hours (placement_id, day, hours) VALUES ($1, $2, 3.5)", placement_id,
                     TODAY - timedelta(days=3))
    other_department = await young(db, ids["cohort"], "Paul", "Corse", years=19, department="2A")
    await db.execute("INSERT INTO youth_placements (young_person_id, offer_id) VALUES ($1, $2)", other_department,
                     ids["offer"])
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            rows = await agreements.agreement_statuses(session, cohort_id=ids["cohort"], department_code="69")
            elsewhere = await agreements.agreement_statuses(session, cohort_id=ids["cohort"] + 1,
                                                            department_code="69")
    finally:
        await engine.dispose()
    assert elsewhere == []
    [row] = rows
    assert (row.placement_id, row.agreement_id, row.first_name, row.last_name, row.mission_title) == (
        placement_id, agreement_id, "Zoé", "Martin", "Épicerie solidaire")
    assert row.parties == {"young": True, "guardian": False, "organisation": False, "referent": True}
    assert row.signed_at is None and float(row.hours) == 3.5 and row.status == "placed"
    assert agreements.signature_url("https://renfort.test", SECRET, agreement_id, "guardian", int(time.time()) + 60
                                    ).startswith("https://renfort.test/snu/convention?jeton=")


async def test_the_signed_in_young_person_reads_and_signs_their_own_agreement(
        settings: Settings, client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    assert (await client.get(PATH, follow_redirects=False)).status_code in (302, 303, 401)
    ids = await placement(db, adult=True)
    await sign_in(client, redis, db, "martin@example.org")
    assert (await client.get(PATH)).status_code == 404
    _, agreement_id = await open_with_orm(settings, ids)
    page = await client.get(PATH)
    assert page.status_code == 200 and "Signer le contrat" in page.text and "Épicerie solidaire" in page.text
    assert (await client.get("/snu/convention/pdf")).content.startswith(b"%PDF")
    done = await sign(client, page.text.split('name="jeton" value="', 1)[1].split('"', 1)[0])
    assert done.status_code == 200 and "Merci, votre signature est enregistrée" in done.text
    assert await db.fetchval("SELECT party FROM youth_agreement_signatures WHERE signed_at IS NOT NULL") == "young"
    assert "Signer le contrat" not in (await client.get(PATH)).text
    assert agreement_id
