"""A minor's guardian consents or refuses through a signed, single-purpose, expiring link; the answer is recorded
once (name, time) and moves the young person to `ready` or `consent_refused`; `can_choose` lets only `ready` through.
Tampered, foreign and expired links are refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import tokens
from app.youth import links
from app.youth.links import Purpose
from app.youth.models import YoungPerson, YouthStatus
from app.youth.service import can_choose
from ops.services import MailSink
from tests.conftest import TEST_ENV, run_worker
from tests.test_signin import csrf_token
from tests.test_youth_accounts import confirm, job_payloads, link_in, person, sign_up, to
from tests.test_youth_cohorts import add_cohort, born, browsers, errors_in, no_cohorts

FIXTURES = (browsers, no_cohorts)  # pytest finds fixtures by name in the module: the tests take them as parameters
SECRET = TEST_ENV["SECRET_KEY"]
PATH = "/snu/consentement"


async def add_minor(db: asyncpg.Connection, *, expires_in: float = 86_400) -> tuple[int, int]:
    """A minor awaiting consent, and their consent request: (young person id, consent id)."""
    cohort_id = await add_cohort(db)
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ('jo@example.org', "
                                "'jo@example.org') RETURNING id")
    young_id = await db.fetchval(
        "INSERT INTO young_people (user_id, cohort_id, first_name, last_name, birth_date, department_code, "
        "postal_code, commune_code, status, source) VALUES ($1, $2, 'Jo', 'Durand', $3, '69', '69003', '69123', "
        "'awaiting_consent', 'signup') RETURNING id", user_id, cohort_id, born(16))
    consent_id = await db.fetchval(
        "INSERT INTO guardian_consents (young_person_id, guardian_name, guardian_email, expires_at) "
        "VALUES ($1, 'Marc Durand', 'marc@example.org', $2) RETURNING id", young_id,
        datetime.now(UTC) + timedelta(seconds=expires_in))
    return young_id, consent_id


def token_for(consent_id: int, *, expires_at: float | None = None, purpose: Purpose = Purpose.CONSENT) -> str:
    return links.mint(SECRET, purpose, consent_id, int(expires_at or time.time() + 3600))


async def answer(client: AsyncTestClient, token: str, **fields: str) -> Any:
    """Posts an answer, the CSRF token taken from the sign-in page: the consent page may have no form to give."""
    form_token = csrf_token((await client.get("/connexion")).text)
    return await client.post(PATH, data={"jeton": token, "_csrf_token": form_token, **fields})


async def status_of(db: asyncpg.Connection, young_id: int) -> str:
    return str(await db.fetchval("SELECT status FROM young_people WHERE id = $1", young_id))


async def test_a_minor_signs_up_and_the_guardian_consents_through_the_emailed_link(
        browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    cohort_id = await add_cohort(db, name="Séjour d'avril")
    young = await browsers()
    form = person(cohort_id, email="jo@example.org", first_name="Jo", last_name="Durand",
                  birth_date=born(16).isoformat(), guardian_name="Marc Durand", guardian_email="marc@example.org")
    without = await sign_up(young, {k: v for k, v in form.items() if not k.startswith("guardian")})
    assert without.status_code == 422
    assert 'id="guardian_name-error"' in without.text and 'id="guardian_email-error"' in without.text
    assert (await sign_up(young, form)).status_code == 200
    run_worker({"SMTP_URL": mail_sink.url})
    assert (await confirm(young, link_in(to(mail_sink, "jo@example.org")[0], "/snu/inscription/confirmer"))
            ).status_code == 303
    young_id = await db.fetchval("SELECT id FROM young_people")
    assert await status_of(db, young_id) == YouthStatus.AWAITING_CONSENT
    assert 'data-statut="awaiting_consent"' in (await young.get("/snu")).text
    payloads = await job_payloads(redis)
    assert all("marc" not in p.lower() and "durand" not in p.lower() for p in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = to(mail_sink, "marc@example.org")
    assert "Jo Durand" in mail["Subject"] and "84 heures" in mail.get_content()
    path = link_in(mail, PATH)

    guardian = await browsers()
    page = await guardian.get(path)
    assert page.status_code == 200
    assert "Ce à quoi vous consentez" in page.text and "Séjour d&#39;avril" in page.text and "84 heures" in page.text
    token = path.split("jeton=", 1)[1]
    before = datetime.now(UTC)
    done = await guardian.post(PATH, data={"jeton": token, "signed_name": "Marc Durand", "decision": "given",
                                           "_csrf_token": csrf_token(page.text)})
    assert done.status_code == 200 and "Merci, votre réponse est enregistrée" in done.text
    row = await db.fetchrow("SELECT decision, decided_at, signed_name FROM guardian_consents")
    assert row["decision"] == "given" and row["signed_name"] == "Marc Durand"
    assert before - timedelta(seconds=5) <= row["decided_at"] <= datetime.now(UTC) + timedelta(seconds=5)
    assert await status_of(db, young_id) == YouthStatus.READY
    assert 'data-statut="ready"' in (await young.get("/snu")).text


async def test_an_answer_is_recorded_once_and_the_other_button_changes_nothing(
        client: AsyncTestClient, db: asyncpg.Connection) -> None:
    young_id, consent_id = await add_minor(db)
    token = token_for(consent_id)
    refused = await answer(client, token, signed_name="Marc Durand", decision="refused")
    assert refused.status_code == 200 and "Vous avez refusé" in refused.text
    assert await status_of(db, young_id) == YouthStatus.CONSENT_REFUSED
    again = await answer(client, token, signed_name="Marc Durand", decision="given")
    assert "Votre réponse était déjà enregistrée" in again.text and "Vous avez refusé" in again.text
    assert await db.fetchval("SELECT decision FROM guardian_consents") == "refused"
    assert await status_of(db, young_id) == YouthStatus.CONSENT_REFUSED


async def test_an_answer_needs_a_name_and_a_choice(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    young_id, consent_id = await add_minor(db)
    response = await answer(client, token_for(consent_id), signed_name=" ", decision="peut-être")
    assert response.status_code == 422
    messages = " ".join(errors_in(response.text))
    assert "Indiquez votre prénom et votre nom" in messages and "Choisissez votre réponse" in messages
    assert await db.fetchval("SELECT decision FROM guardian_consents") is None
    assert await status_of(db, young_id) == YouthStatus.AWAITING_CONSENT


async def test_tampered_and_foreign_links_are_refused(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    young_id, consent_id = await add_minor(db)
    other_id = consent_id + 1
    genuine = token_for(consent_id)
    subject, expiry, signature = genuine.split(".")
    forged = {
        "another id": f"{other_id}.{expiry}.{signature}",
        "a later expiry": f"{subject}.{int(expiry) + 86_400}.{signature}",
        "a changed signature": f"{subject}.{expiry}.{signature[:-2]}AA",
        "an invitation's link": token_for(consent_id, purpose=Purpose.INVITATION),
        "a sign-up's link": token_for(consent_id, purpose=Purpose.SIGNUP),
        "a sign-in link": tokens.mint(SECRET, str(consent_id), int(expiry)),
        "garbage": "n'importe quoi",
        "nothing": "",
    }
    for name, token in forged.items():
        page = await client.get(PATH, params={"jeton": token})
        assert page.status_code == 400, name
        assert "Ce lien n&#39;est pas valide" in page.text, name
        posted = await answer(client, token, signed_name="X Y", decision="given")
        assert posted.status_code == 400, name
    assert await db.fetchval("SELECT decision FROM guardian_consents") is None
    assert await status_of(db, young_id) == YouthStatus.AWAITING_CONSENT


async def test_expired_links_are_refused(client: AsyncTestClient, db: asyncpg.Connection) -> None:
    young_id, consent_id = await add_minor(db)
    stale = token_for(consent_id, expires_at=time.time() - 1)
    assert (await client.get(PATH, params={"jeton": stale})).status_code == 410
    assert (await answer(client, stale, signed_name="Marc Durand", decision="given")).status_code == 410
    # A link still within its own expiry, for a request PostgreSQL says has lapsed, is refused too.
    await db.execute("UPDATE guardian_consents SET expires_at = now() - interval '1 second'")
    lapsed = token_for(consent_id)
    page = await client.get(PATH, params={"jeton": lapsed})
    assert page.status_code == 410 and "la demande d&#39;accord n&#39;est plus valable" in page.text
    assert (await answer(client, lapsed, signed_name="Marc Durand", decision="given")).status_code == 410
    assert await db.fetchval("SELECT decision FROM guardian_consents") is None
    assert await status_of(db, young_id) == YouthStatus.AWAITING_CONSENT


@pytest.mark.parametrize(("status", "allowed"), [
    (YouthStatus.READY, True), (YouthStatus.AWAITING_CONSENT, False), (YouthStatus.CONSENT_REFUSED, False),
])
def test_only_a_ready_young_person_may_choose(status: YouthStatus, allowed: bool) -> None:
    assert can_choose(YoungPerson(status=status.value)) is allowed


async def test_can_choose_follows_the_guardian_answer(client: AsyncTestClient, db: asyncpg.Connection,
                                                      settings: Any) -> None:
    from sqlalchemy import select

    from app.db.base import make_engine, unit_of_work

    young_id, consent_id = await add_minor(db)
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async def choosable() -> bool:
            async with unit_of_work(engine) as session:
                young = await session.scalar(select(YoungPerson).where(YoungPerson.id == young_id))
                assert young is not None
                return can_choose(young)

        assert await choosable() is False
        await answer(client, token_for(consent_id), signed_name="Marc Durand", decision="given")
        assert await choosable() is True
    finally:
        await engine.dispose()


async def test_every_youth_form_refuses_a_post_without_its_csrf_token(client: AsyncTestClient) -> None:
    await client.get("/snu/inscription")  # the CSRF cookie is set: only the form's token is missing
    for path in ("/snu/inscription", "/snu/inscription/confirmer", "/snu/invitation", "/snu/consentement",
                 "/snu/referent/invitations", "/administration/snu/sejours/nouvelle"):
        response = await client.post(path, data={"jeton": "1.2.3", "cohort_id": "1"}, follow_redirects=False)
        assert response.status_code == 403, path
