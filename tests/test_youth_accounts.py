"""Young people's accounts: signing up into an open cohort (confirmed by e-mail), a referent's invitation, the SNU's
age limits on the cohort's mission start, one account per person shared with the volunteers' platform, no answer
that tells whether an address is registered, and job payloads that carry ids and keys only."""

from __future__ import annotations

import re
import time
import zlib
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from ops.services import MailSink
from tests.conftest import run_worker
from tests.test_organisations import post_form, sign_in
from tests.test_signin import csrf_token
from tests.test_youth_cohorts import MISSIONS_START, add_cohort, born, browsers, errors_in, no_cohorts

FIXTURES = (browsers, no_cohorts)  # pytest finds fixtures by name in the module: the tests take them as parameters
CONFIRM_SUBJECT = "Confirmez votre inscription au SNU sur Renfort"
KNOWN_SUBJECT = "Votre espace jeune SNU existe déjà sur Renfort"
INVITATION_SUBJECT = "Invitation à rejoindre le SNU sur Renfort"


def person(cohort_id: int, **overrides: Any) -> dict[str, Any]:
    form = {"cohort_id": str(cohort_id), "first_name": "Lina", "last_name": "Benali", "email": "lina@example.org",
            "birth_date": born(19).isoformat(), "postal_code": "69003", "commune_code": "69123"}
    return {**form, **overrides}


def link_in(message: Any, path: str) -> str:
    match = re.search(rf"https?://[^/\s]+({re.escape(path)}\?jeton=\S+)", message.get_content())
    assert match, f"no {path} link in the e-mail"
    return match[1]


def to(mail_sink: MailSink, address: str) -> list[Any]:
    return [message for message in mail_sink.messages() if message["To"] == address]


async def job_payloads(redis: Redis) -> list[str]:
    """Every queued RQ job's payload (function, arguments), as stored in Redis."""
    payloads = []
    async for key in redis.scan_iter(match="rq:job:*"):
        if (await redis.type(key)) != b"hash":
            continue
        data = await redis.hget(key, "data")
        if isinstance(data, bytes) and data:
            payloads.append(zlib.decompress(data).decode())
    return payloads


async def sign_up(client: AsyncTestClient, form: dict[str, Any]) -> Any:
    token = csrf_token((await client.get("/connexion")).text)  # any form's token: the form may list no cohort
    return await client.post("/snu/inscription", data={**form, "_csrf_token": token}, follow_redirects=False)


async def confirm(client: AsyncTestClient, path: str) -> Any:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    token = path.split("jeton=", 1)[1]
    return await client.post("/snu/inscription/confirmer", data={"jeton": token, "_csrf_token": csrf_token(page.text)},
                             follow_redirects=False)


async def test_an_adult_signs_up_into_an_open_cohort_confirms_by_email_and_lands_ready(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    cohort_id = await add_cohort(db, deadline=MISSIONS_START + timedelta(days=30))
    response = await sign_up(client, person(cohort_id))
    assert response.status_code == 200 and "Vérifiez votre boîte e-mail" in response.text
    assert await db.fetchval("SELECT count(*) FROM users") == 0  # nothing before the address is confirmed
    payloads = await job_payloads(redis)
    assert payloads and all("lina" not in p.lower() and "benali" not in p.lower() and born(19).isoformat() not in p
                            for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = to(mail_sink, "lina@example.org")
    assert mail["Subject"] == CONFIRM_SUBJECT
    path = link_in(mail, "/snu/inscription/confirmer")

    response = await confirm(client, path)
    assert response.status_code == 303 and response.headers["location"] == "/snu"
    row = await db.fetchrow("SELECT y.*, u.email_normalized FROM young_people y JOIN users u ON u.id = y.user_id")
    assert (row["status"], row["source"], row["department_code"], row["commune_code"]) == (
        "ready", "signup", "69", "69123")
    assert row["email_normalized"] == "lina@example.org" and row["birth_date"] == born(19)
    assert await db.fetchval("SELECT count(*) FROM guardian_consents") == 0  # of age: no guardian asked
    home = await client.get("/snu")
    assert home.status_code == 200
    assert "Bonjour Lina" in home.text and 'data-statut="ready"' in home.text
    assert f"{MISSIONS_START + timedelta(days=30):%d/%m/%Y}" in home.text  # the department's choice deadline

    # The link served once: a second click finds nothing.
    again = await client.get(path)
    assert again.status_code == 410


async def test_a_closed_cohort_takes_no_sign_up(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    cohort_id = await add_cohort(db, open_for_signup=False)
    assert f'value="{cohort_id}"' not in (await client.get("/snu/inscription")).text
    response = await sign_up(client, person(cohort_id))
    assert response.status_code == 422 and "Choisissez une cohorte ouverte aux inscriptions." in response.text


async def test_age_limits_count_on_the_cohort_mission_start(client: AsyncTestClient, redis: Redis,
                                                            db: asyncpg.Connection) -> None:
    cohort_id = await add_cohort(db)
    when = f"{MISSIONS_START:%d/%m/%Y}"
    too_young = await sign_up(client, person(cohort_id, birth_date=born(15, days=1).isoformat()))
    assert too_young.status_code == 422
    assert f"Il faut avoir au moins 15 ans le {when}" in " ".join(errors_in(too_young.text))
    too_old = await sign_up(client, person(cohort_id, birth_date=born(26).isoformat()))
    assert too_old.status_code == 422
    assert f"ouvertes jusqu'à 25 ans : vous aurez plus de 25 ans le {when}" in " ".join(errors_in(too_old.text))
    # 15 on the day missions start, a minor today: accepted, with a guardian.
    fifteen = person(cohort_id, email="a@example.org", birth_date=born(15).isoformat(), guardian_name="Samia Benali",
                     guardian_email="samia@example.org")
    assert (await sign_up(client, fifteen)).status_code == 200
    twenty_five = person(cohort_id, email="b@example.org", birth_date=born(26, days=1).isoformat())
    assert (await sign_up(client, twenty_five)).status_code == 200
    assert len(await job_payloads(redis)) == 2


async def test_signing_up_never_tells_whether_an_address_is_registered(
        browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    cohort_id = await add_cohort(db)
    first = await browsers()
    await sign_up(first, person(cohort_id))
    run_worker({"SMTP_URL": mail_sink.url})
    assert (await confirm(first, link_in(to(mail_sink, "lina@example.org")[0], "/snu/inscription/confirmer"))
            ).status_code == 303

    known, unknown = await browsers(), await browsers()
    answers = [await sign_up(known, person(cohort_id)),
               await sign_up(unknown, person(cohort_id, email="new@example.org"))]
    assert [answer.status_code for answer in answers] == [200, 200]
    assert answers[0].text == answers[1].text
    run_worker({"SMTP_URL": mail_sink.url})
    # The e-mail tells the rest: the registered address is reminded to sign in, and gets no link.
    reminder = [m for m in to(mail_sink, "lina@example.org") if m["Subject"] == KNOWN_SUBJECT]
    assert len(reminder) == 1 and "/snu/inscription/confirmer" not in reminder[0].get_content()
    assert [m["Subject"] for m in to(mail_sink, "new@example.org")] == [CONFIRM_SUBJECT]
    assert await db.fetchval("SELECT count(*) FROM young_people") == 1


async def test_a_volunteer_joins_the_snu_with_the_same_account(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    cohort_id = await add_cohort(db)
    user_id = await sign_in(client, redis, db, "lina@example.org")  # the person's account, from the platform
    await client.post("/deconnexion", data={"_csrf_token": csrf_token((await client.get("/mon-espace")).text)})
    await sign_up(client, person(cohort_id))
    run_worker({"SMTP_URL": mail_sink.url})
    response = await confirm(client, link_in(to(mail_sink, "lina@example.org")[0], "/snu/inscription/confirmer"))
    # An address that had an account signs in as usual: the days-long link never stands in for that.
    assert response.status_code == 200 and "Se connecter" in response.text
    assert await db.fetchval("SELECT count(*) FROM users") == 1
    assert await db.fetchval("SELECT user_id FROM young_people") == user_id


async def test_a_referent_invites_a_young_person_of_their_department(
        browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    cohort_id = await add_cohort(db, open_for_signup=False)
    referent = await browsers()
    await sign_in(referent, redis, db, "ref69@example.org", referent_of=("69",))
    invitation = {"cohort_id": str(cohort_id), "department_code": "69", "first_name": "Noah", "last_name": "Petit",
                  "email": "noah@example.org"}
    page = "/snu/referent/invitations"
    refused = await post_form(referent, page, {**invitation, "department_code": "13"}, page)
    assert refused.status_code == 422 and "Vous n'êtes pas référent·e de ce département" in " ".join(
        errors_in(refused.text))
    sent = await post_form(referent, page, invitation, page)
    assert sent.status_code == 200 and "Invitation enregistrée" in sent.text
    payloads = await job_payloads(redis)
    assert payloads and all("noah" not in p.lower() and "petit" not in p.lower() for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = to(mail_sink, "noah@example.org")
    assert mail["Subject"] == INVITATION_SUBJECT and "Cohorte test" in mail.get_content()
    path = link_in(mail, "/snu/invitation")

    young = await browsers()
    form = await young.get(path)
    assert form.status_code == 200 and 'value="Noah"' in form.text and 'name="email"' not in form.text
    token = path.split("jeton=", 1)[1]
    details = {"jeton": token, "first_name": "Noah", "last_name": "Petit", "birth_date": born(16).isoformat(),
               "postal_code": "69003", "commune_code": "69123"}
    missing = await young.post("/snu/invitation", data={**details, "_csrf_token": csrf_token(form.text)})
    assert missing.status_code == 422
    assert "indiquez le prénom et le nom de votre représentant·e" in " ".join(errors_in(missing.text))
    same = await young.post("/snu/invitation", data={**details, "guardian_name": "Eva Petit",
                                                     "guardian_email": "NOAH@example.org",
                                                     "_csrf_token": csrf_token(form.text)})
    assert "doit être différente de la vôtre" in " ".join(errors_in(same.text))
    accepted = await young.post("/snu/invitation", data={**details, "guardian_name": "Eva Petit",
                                                         "guardian_email": "eva@example.org",
                                                         "_csrf_token": csrf_token(form.text)},
                                follow_redirects=False)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/snu"
    row = await db.fetchrow("SELECT status, source, first_name FROM young_people")
    assert tuple(row) == ("awaiting_consent", "invitation", "Noah")
    home = await young.get("/snu")
    assert 'data-statut="awaiting_consent"' in home.text and "Eva Petit" in home.text
    # The invitation served once.
    assert (await young.get(path)).status_code == 410
    # The guardian is asked, through a job that names the consent request only.
    payloads = await job_payloads(redis)
    assert all("eva" not in p.lower() and "petit" not in p.lower() for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    [asked] = to(mail_sink, "eva@example.org")
    assert "/snu/consentement?jeton=" in asked.get_content() and "Noah Petit" in asked.get_content()


async def test_only_referents_invite(browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    await add_cohort(db)
    volunteer = await browsers()
    await sign_in(volunteer, redis, db, "someone@example.org")
    assert (await volunteer.get("/snu/referent/invitations")).status_code == 403


async def test_a_young_person_without_a_record_is_pointed_to_the_sign_up(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    response = await client.get("/snu", follow_redirects=False)
    assert response.status_code in (302, 303) and "/connexion" in response.headers["location"]
    await sign_in(client, redis, db, "someone@example.org")
    home = await client.get("/snu")
    assert home.status_code == 200 and 'id="sans-espace"' in home.text


async def test_invitation_and_sign_up_links_refuse_tampering_and_expiry(
        client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    from app.youth import links
    from app.youth.links import Purpose
    from tests.conftest import TEST_ENV

    secret, later = TEST_ENV["SECRET_KEY"], int(time.time()) + 3600
    cohort_id = await add_cohort(db)
    invitation_id = await db.fetchval(
        "INSERT INTO youth_invitations (cohort_id, department_code, email, email_normalized, first_name, last_name, "
        "expires_at) VALUES ($1, '69', 'noah@example.org', 'noah@example.org', 'Noah', 'Petit', "
        "now() + interval '1 day') RETURNING id", cohort_id)
    genuine = links.mint(secret, Purpose.INVITATION, invitation_id, later)
    assert (await client.get("/snu/invitation", params={"jeton": genuine})).status_code == 200
    subject, expiry, signature = genuine.split(".")
    for token in (f"{invitation_id + 1}.{expiry}.{signature}", f"{subject}.{later + 60}.{signature}",
                  links.mint(secret, Purpose.CONSENT, invitation_id, later), ""):
        assert (await client.get("/snu/invitation", params={"jeton": token})).status_code == 400, token
    stale = links.mint(secret, Purpose.INVITATION, invitation_id, int(time.time()) - 1)
    assert (await client.get("/snu/invitation", params={"jeton": stale})).status_code == 410
    await db.execute("UPDATE youth_invitations SET expires_at = now() - interval '1 second'")
    assert (await client.get("/snu/invitation", params={"jeton": genuine})).status_code == 410

    await sign_up(client, person(cohort_id))
    [key] = [k.decode().rsplit(":", 1)[1] async for k in redis.scan_iter(match="renfort:youth:signup:*")]
    signup = links.mint(secret, Purpose.SIGNUP, key, later)
    assert (await client.get("/snu/inscription/confirmer", params={"jeton": signup})).status_code == 200
    for token in (links.mint(secret, Purpose.SIGNUP, "another-key", later), signup[:-3] + "AAA",
                  links.mint(secret, Purpose.INVITATION, key, later)):
        status = (await client.get("/snu/inscription/confirmer", params={"jeton": token})).status_code
        assert status in (400, 410) and (status == 410) == token.startswith("another-key"), token
    assert (await client.get("/snu/inscription/confirmer",
                             params={"jeton": links.mint(secret, Purpose.SIGNUP, key, int(time.time()) - 1)})
            ).status_code == 410
    assert await db.fetchval("SELECT count(*) FROM young_people") == 0


def test_an_invited_address_typed_in_capitals_is_still_not_a_guardian_address() -> None:
    from app.geo.index import CommuneChoice, PostcodeIndex
    from app.youth.models import Cohort
    from app.youth.validation import YouthInvalid, validate_youth

    index = PostcodeIndex({"69003": [CommuneChoice("69123", "Lyon")]})
    cohort = Cohort(name="Cohorte test", missions_start=MISSIONS_START)
    details = {"first_name": "Noah", "last_name": "Petit", "birth_date": born(16).isoformat(),
               "postal_code": "69003", "commune_code": "69123", "guardian_name": "Eva Petit",
               "guardian_email": "noah.petit@example.org"}
    try:
        validate_youth(details, index, cohort, MISSIONS_START - timedelta(days=120), email="Noah.Petit@Example.org")
    except YouthInvalid as invalid:
        assert "doit être différente de la vôtre" in invalid.errors.get("guardian_email", "")
    else:
        raise AssertionError("the guardian's address was the invited one")
    valid = validate_youth({**details, "guardian_email": "eva@example.org"}, index, cohort,
                           MISSIONS_START - timedelta(days=120), email="Noah.Petit@Example.org")
    assert valid.guardian_email == "eva@example.org"


def test_a_guardian_name_carrying_a_link_is_refused_before_any_e_mail_is_sent_to_the_guardian() -> None:
    from app.geo.index import CommuneChoice, PostcodeIndex
    from app.youth.models import Cohort
    from app.youth.validation import YouthInvalid, validate_youth

    index = PostcodeIndex({"69003": [CommuneChoice("69123", "Lyon")]})
    cohort = Cohort(name="Cohorte test", missions_start=MISSIONS_START)
    details = {"first_name": "Noah", "last_name": "Petit", "birth_date": born(16).isoformat(), "email": "n@example.org",
               "postal_code": "69003", "commune_code": "69123", "guardian_email": "eva@example.org"}
    today = MISSIONS_START - timedelta(days=120)
    for hostile in ("Gagnez 500 € sur https://arnaque.example", "Eva <b>Petit</b>", "Eva Petit 06 12 34 56 78"):
        try:
            validate_youth({**details, "guardian_name": hostile}, index, cohort, today)
        except YouthInvalid as invalid:
            assert "uniquement des lettres" in invalid.errors.get("guardian_name", ""), hostile
        else:
            raise AssertionError(hostile)
    assert validate_youth({**details, "guardian_name": "Ève O'Brien-Petit"}, index, cohort, today).guardian_name
