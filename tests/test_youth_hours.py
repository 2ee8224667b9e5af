"""The tutor's hours (`/snu/heures?jeton=`): refused until the agreement is fully signed, one row per day within the
offer's dates and not in the future, more than 0 and at most 12 hours, a day declared again replaced; at 84 hours
the placement is completed once (even by two declarations at once) and the certificate is mailed by a real worker
and served by link and to the signed-in young person."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.settings import Settings
from app.youth import links, pdf
from app.youth.links import Purpose
from ops.services import MailSink
from tests.conftest import TEST_ENV, run_worker
from tests.test_organisations import sign_in
from tests.test_signin import csrf_token
from tests.test_youth_accounts import link_in, to
from tests.test_youth_agreements import open_with_orm, placement
from tests.test_youth_cohorts import TODAY, browsers, errors_in, no_cohorts

FIXTURES = (browsers, no_cohorts)
SECRET = TEST_ENV["SECRET_KEY"]
PATH = "/snu/heures"
START = TODAY - timedelta(days=40)  # the offer of `placement` runs from START for 50 days


def token_for(placement_id: int, *, expires_at: float | None = None, purpose: Purpose = Purpose.HOURS) -> str:
    return links.mint(SECRET, purpose, placement_id, int(expires_at or time.time() + 3600))


async def signed_by_all(db: asyncpg.Connection, agreement_id: int) -> None:
    await db.execute("UPDATE youth_agreement_signatures SET signed_at = now(), signed_name = name "
                     "WHERE agreement_id = $1", agreement_id)
    await db.execute("UPDATE youth_agreements SET signed_at = now() WHERE id = $1", agreement_id)


async def declare(client: AsyncTestClient, token: str, day: date | str, amount: str) -> Any:
    page = await client.get(PATH, params={"jeton": token})
    form_token = csrf_token(page.text) if 'name="_csrf_token"' in page.text else \
        csrf_token((await client.get("/connexion")).text)
    value = day.isoformat() if isinstance(day, date) else day
    return await client.post(PATH, data={"jeton": token, "day": value, "hours": amount, "_csrf_token": form_token})


async def total(db: asyncpg.Connection) -> float:
    return float(await db.fetchval("SELECT coalesce(sum(hours), 0) FROM youth_hours"))


async def test_hours_wait_for_every_signature_then_follow_the_rules_and_complete_at_84(
        settings: Settings, client: AsyncTestClient, browsers: Any, redis: Redis, db: asyncpg.Connection,
        mail_sink: MailSink) -> None:
    ids = await placement(db)
    placement_id, agreement_id = await open_with_orm(settings, ids)
    token = token_for(placement_id)
    page = await client.get(PATH, params={"jeton": token})
    assert page.status_code == 200 and 'data-statut="unsigned"' in page.text
    early = await declare(client, token, START, "4")
    assert early.status_code == 422 and "une fois le contrat d&#39;engagement signé" in early.text
    assert await total(db) == 0

    await signed_by_all(db, agreement_id)
    assert 'id="declarer"' in (await client.get(PATH, params={"jeton": token})).text
    refusals = {
        (TODAY + timedelta(days=1), "4"): "un jour à venir",
        (START - timedelta(days=1), "4"): "les dates de la mission",
        (START, "13"): "au plus 12 heures",
        (START, "0"): "au plus 12 heures",
        (START, "-2"): "au plus 12 heures",
        (START, "trois"): "Indiquez un nombre d&#39;heures",
        (START, "NaN"): "Indiquez un nombre d&#39;heures",
        (START, "1,234"): "au centième près",
        ("31/02/2026", "4"): "Indiquez la date",
        ("", "4"): "Indiquez la date",
    }
    for (day, amount), message in refusals.items():
        response = await declare(client, token, day, amount)
        assert response.status_code == 422, (day, amount)
        assert message in " ".join(errors_in(response.text)) or message in response.text, (day, amount)
    for day, amount in ((START, "4\x00"), ("\x00", "4"), (START, "9" * 5000), ("2" * 5000, "4")):
        response = await declare(client, token, day, amount)
        assert 400 <= response.status_code < 500, (repr(day)[:20], repr(amount)[:20], response.status_code)
    assert await total(db) == 0

    saved = await declare(client, token, START, "8")
    assert saved.status_code == 200 and 'data-notice="saved"' in saved.text and '<span id="total">8' in saved.text
    replaced = await declare(client, token, START, "6,5")
    assert '<span id="total">6,5' in replaced.text
    assert await db.fetchval("SELECT count(*) FROM youth_hours") == 1 and await total(db) == 6.5
    for offset in range(1, 7):
        assert (await declare(client, token, START + timedelta(days=offset), "12")).status_code == 200
    assert await total(db) == 78.5
    assert await db.fetchval("SELECT status FROM youth_placements") == "placed"
    assert (await client.get("/snu/attestation", params={"jeton": links.mint(
        SECRET, Purpose.CERTIFICATE, placement_id, int(time.time()) + 3600)})).status_code == 404
    done = await declare(client, token, TODAY, "5,5")
    assert done.status_code == 200 and 'data-notice="completed"' in done.text
    row = await db.fetchrow("SELECT status, completed_at FROM youth_placements")
    assert row["status"] == "completed" and row["completed_at"] is not None
    after = await declare(client, token, TODAY - timedelta(days=1), "3")
    assert after.status_code == 422 and "déjà accomplie" in after.text and await total(db) == 84

    run_worker({"SMTP_URL": mail_sink.url})
    [mail] = to(mail_sink, "martin@example.org")
    assert mail["Subject"].startswith("Attestation de réalisation") and "84 heures" in mail.get_content()
    [copy] = to(mail_sink, "parent.martin@example.org")
    assert "Pour information" in copy.get_content()
    path = link_in(mail, "/snu/attestation")
    certificate = await (await browsers()).get(path)
    assert certificate.status_code == 200 and certificate.content.startswith(b"%PDF")
    assert certificate.headers["content-disposition"].startswith("attachment;")
    fields = {"first_name": "Zoé", "last_name": "Martin", "mission_title": "Épicerie solidaire",
              "organisation_name": "Les Restos du Rhône", "cohort_name": "Cohorte d'automne", "hours": "84",
              "completed_on": TODAY}
    assert certificate.content == pdf.certificate_pdf(**fields)  # type: ignore[arg-type]
    plain = pdf.certificate_pdf(**fields, compress=False)  # type: ignore[arg-type]
    assert "Zoé Martin".encode("latin-1") in plain and b"84 heures" in plain

    young = await browsers()
    await sign_in(young, redis, db, "martin@example.org")
    own = await young.get("/snu/convention")
    assert own.status_code == 200 and "Épicerie solidaire" in own.text and 'id="attestation"' in own.text
    assert (await young.get("/snu/convention/pdf")).content.startswith(b"%PDF")
    mine = await young.get("/snu/attestation")
    assert mine.status_code == 200 and mine.content.startswith(b"%PDF")


async def test_two_declarations_reaching_84_at_once_complete_the_mission_once(
        settings: Settings, browsers: Any, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    ids = await placement(db)
    placement_id, agreement_id = await open_with_orm(settings, ids)
    await signed_by_all(db, agreement_id)
    for offset in range(7):
        await db.execute("INSERT INTO youth_hours (placement_id, day, hours) VALUES ($1, $2, 11)", placement_id,
                         START + timedelta(days=offset))
    token = token_for(placement_id)
    first, second = await browsers(), await browsers()
    pages = [await first.get(PATH, params={"jeton": token}), await second.get(PATH, params={"jeton": token})]
    responses = await asyncio.gather(*(
        browser.post(PATH, data={"jeton": token, "day": (START + timedelta(days=offset)).isoformat(), "hours": "8",
                                 "_csrf_token": csrf_token(page.text)})
        for browser, page, offset in ((first, pages[0], 10), (second, pages[1], 11))))
    statuses = sorted(response.status_code for response in responses)
    assert statuses in ([200, 200], [200, 422]), statuses
    assert sum('data-notice="completed"' in response.text for response in responses) == 1
    assert await db.fetchval("SELECT status FROM youth_placements") == "completed"
    run_worker({"SMTP_URL": mail_sink.url})
    assert len(to(mail_sink, "martin@example.org")) == 1 and len(to(mail_sink, "parent.martin@example.org")) == 1


async def test_forged_foreign_and_expired_hours_links_are_refused(
        settings: Settings, client: AsyncTestClient, db: asyncpg.Connection) -> None:
    ids = await placement(db)
    placement_id, agreement_id = await open_with_orm(settings, ids)
    await signed_by_all(db, agreement_id)
    genuine = token_for(placement_id)
    _, expiry, signature = genuine.split(".")
    for token in (f"{placement_id + 1}.{expiry}.{signature}", token_for(placement_id, purpose=Purpose.CONSENT),
                  token_for(placement_id, purpose=Purpose.CERTIFICATE), "x" * 5000, genuine + "\x00", ""):
        assert (await client.get(PATH, params={"jeton": token})).status_code == 400
        assert (await declare(client, token, START, "4")).status_code == 400
    assert (await client.get("/snu/attestation", params={"jeton": genuine})).status_code == 400
    expired = token_for(placement_id, expires_at=time.time() - 1)
    assert (await client.get(PATH, params={"jeton": expired})).status_code == 410
    assert (await declare(client, expired, START, "4")).status_code == 410
    assert (await client.get(PATH, params={"jeton": token_for(placement_id + 9)})).status_code == 410
    assert await total(db) == 0
