"""What a volunteer goes through around applying, over HTTP: the sign-in that lands back where it was asked from
(and nowhere else), one account of an application before and after the worker saves it, a cancellation that asks
first, and the emergency a sign-up comes from, named by its title on the form and in the e-mails."""

from __future__ import annotations

import html
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import return_path, tokens
from app.accounts.schemas import SignInRequest
from ops.services import MailSink
from queues import enqueue
from tests.conftest import TEST_ENV, run_worker
from tests.factories import signup
from tests.test_application_journey_browser import TITLE, VOLUNTEER
from tests.test_application_journey_browser import seed as seed_mission
from tests.test_organisations import post_form, sign_in
from tests.test_signin import LINK_SUBJECT, confirm, csrf_token, mails, token_in

COVID = "Covid-19 : renfort des centres de vaccination"


async def live_emergency(db: asyncpg.Connection, slug: str = "covid-19", title: str = COVID,
                         status: str = "live") -> None:
    await db.execute(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status)"
        " VALUES ($1, $2, 'La situation.', 'Les besoins.', '{}', '{}', $3)", slug, title, status,
    )


def text(response: Any) -> str:
    """The page as a reader sees it (Jinja escapes apostrophes in the values it prints)."""
    return html.unescape(response.text)


# Back where one was after signing in ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "//evil.example/x", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "/\t/evil.example",
    "/\n/evil.example", "missions/1", "", "/é", "/" + "a" * 600, None, 42,
])
def test_only_a_same_site_path_is_a_return_path(raw: object) -> None:
    assert return_path.safe(raw) == ""
    assert return_path.after_sign_in(raw) == "/mon-espace"


def test_a_mission_path_with_its_query_is_kept() -> None:
    path = "/missions/12-collecte?onglet=1#candidater"
    assert return_path.after_sign_in(path) == path


async def ask_for_link_from(client: AsyncTestClient, email: str, suite: str) -> None:
    page = await client.get("/connexion", params={"suite": suite})
    assert page.status_code == 200
    # The form carries what the page accepted; a hostile value posted directly is checked again.
    response = await client.post("/connexion", data={"email": email, "suite": suite,
                                                     "_csrf_token": csrf_token(page.text)})
    assert response.status_code == 200, response.text


async def test_the_link_lands_back_on_the_mission_and_hostile_paths_land_on_the_space(
    settings: object, db: asyncpg.Connection, redis: Redis, mail_sink: MailSink
) -> None:
    from app.main import create_app

    attempts = {"/missions/7-collecte": "/missions/7-collecte", "//evil.example": "/mon-espace",
                "/\\evil.example": "/mon-espace", "https://evil.example": "/mon-espace",
                "/%0a/evil": "/%0a/evil"}  # percent-encoded: a path on this site, harmless
    emails = [f"retour{number}@example.org" for number in range(len(attempts))]
    for email in emails:
        await db.execute("INSERT INTO users (email, email_normalized) VALUES ($1, $1)", email)
    async with AsyncTestClient(app=create_app(settings)) as asking:  # type: ignore[arg-type]
        for email, suite in zip(emails, attempts, strict=True):
            await ask_for_link_from(asking, email, suite)
    # The path waits with the request in Redis; the job payload holds only the request's key.
    kept = [msgspec.json.decode(await redis.get(key) or b"", type=SignInRequest)
            async for key in redis.scan_iter(tokens.request_key("*"))]
    assert sorted(record.after for record in kept) == sorted(["/missions/7-collecte", "/%0a/evil", "", "", ""])
    run_worker({"SMTP_URL": mail_sink.url})
    links = {message["To"]: token_in(message) for message in mails(mail_sink, LINK_SUBJECT)}
    for email, expected in zip(emails, attempts.values(), strict=True):
        async with AsyncTestClient(app=create_app(settings)) as person:  # type: ignore[arg-type]
            response = await confirm(person, links[email])
            assert response.status_code == 303 and response.headers["location"] == expected, email


async def test_the_mission_page_offers_a_sign_in_that_comes_back(client: AsyncTestClient,
                                                                 db: asyncpg.Connection) -> None:
    mission_id = await seed_mission(db)
    page = await client.get(f"/missions/{mission_id}-x", follow_redirects=True)
    path = str(page.url.path)
    assert f'href="/connexion?suite={path}"' in page.text and "Se connecter pour candidater" in page.text
    assert "Je candidate" not in page.text
    form = await client.get("/connexion", params={"suite": path})
    assert f'name="suite" value="{path}"' in form.text
    hostile = await client.get("/connexion", params={"suite": "//evil.example"})
    assert 'name="suite"' not in hostile.text


# One account of an application -----------------------------------------------------------------------------------


async def test_an_application_reads_the_same_on_both_pages_before_and_after_the_worker(
    client: AsyncTestClient, db: asyncpg.Connection, redis: Redis
) -> None:
    mission_id = await seed_mission(db)
    await sign_in(client, redis, db, VOLUNTEER)
    mission_page = (await client.get(f"/missions/{mission_id}-x", follow_redirects=True))
    mission_path = str(mission_page.url.path)
    assert "Je candidate" in mission_page.text

    applied = await post_form(client, f"/missions/{mission_id}/candidater", {"message": "Le samedi"}, mission_path)
    assert applied.status_code == 303
    mine = await client.get(applied.headers["location"])
    assert "Votre candidature est envoyée" in mine.text
    assert "Envoyée, en cours d'enregistrement" in text(mine) and TITLE in mine.text
    assert "pas encore candidaté" not in mine.text and 'id="aucune"' not in mine.text
    mission_page = await client.get(mission_path)
    assert "Vous avez candidaté" in mission_page.text and "Envoyée, en cours d'enregistrement" in text(mission_page)
    assert "Je candidate" not in mission_page.text
    assert mission_page.headers["cache-control"] == "no-store"  # it names the person's own application

    again = await post_form(client, f"/missions/{mission_id}/candidater", {}, mission_path)
    assert again.headers["location"].endswith("resultat=exists")
    run_worker()
    assert await db.fetchval("SELECT count(*) FROM applications WHERE mission_id = $1", mission_id) == 1

    mine = await client.get("/mon-espace/candidatures")
    assert mine.text.count("En attente de réponse") == 1 and "en cours d'enregistrement" not in text(mine)
    mission_page = await client.get(mission_path)
    assert "Vous avez candidaté" in mission_page.text and "En attente de réponse" in mission_page.text
    assert "Je candidate" not in mission_page.text


async def test_cancelling_asks_for_confirmation_first(client: AsyncTestClient, db: asyncpg.Connection,
                                                      redis: Redis) -> None:
    mission_id = await seed_mission(db)
    await sign_in(client, redis, db, VOLUNTEER)
    await post_form(client, f"/missions/{mission_id}/candidater", {})
    mine = await client.get("/mon-espace/candidatures")
    assert f'href="/mon-espace/candidatures/{mission_id}/annuler"' in mine.text

    unconfirmed = await post_form(client, f"/mon-espace/candidatures/{mission_id}/annuler", {})
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == f"/mon-espace/candidatures/{mission_id}/annuler"
    assert (await redis.hget(f"renfort:applications:m{mission_id}:status", "1")) == b"pending"  # nothing changed

    asking = await client.get(unconfirmed.headers["location"])
    assert asking.status_code == 200 and TITLE in asking.text
    assert 'class="button button--danger"' in asking.text and 'name="confirm"' in asking.text
    done = await post_form(client, f"/mon-espace/candidatures/{mission_id}/annuler", {"confirm": "1"})
    assert done.headers["location"].endswith("resultat=cancelled")
    # Cancelled, there is nothing left to cancel: the confirmation page says so rather than asking again.
    gone = await client.get(f"/mon-espace/candidatures/{mission_id}/annuler", follow_redirects=False)
    assert gone.headers["location"].endswith("resultat=inchange")
    assert (await client.get("/mon-espace/candidatures/999999/annuler", follow_redirects=False)).status_code == 303
    assert (await client.get(f"/mon-espace/candidatures/{mission_id}/effacer")).status_code == 404


# The emergency of a sign-up ---------------------------------------------------------------------------------------


async def test_the_signup_form_names_the_emergency_by_its_title(client: AsyncTestClient,
                                                                db: asyncpg.Connection) -> None:
    await live_emergency(db)
    await live_emergency(db, "crue-rhone", "Crue du Rhône", status="closed")
    await live_emergency(db, "brouillon-secret", "Brouillon", status="draft")
    page = await client.get("/inscription", params={"urgence": "covid-19"})
    assert page.status_code == 200
    assert f"Vous vous inscrivez pour l'urgence « {COVID} »" in page.text
    assert 'name="emergency" value="covid-19"' in page.text

    closed = await client.get("/inscription", params={"urgence": "crue-rhone"})
    assert closed.status_code == 200 and "L'urgence « Crue du Rhône » est close" in closed.text
    assert 'name="emergency" value=""' in closed.text
    for unknown in ("inconnue", "brouillon-secret", "<script>alert(1)</script>", "x" * 5000, "../../etc"):
        response = await client.get("/inscription", params={"urgence": unknown})
        assert response.status_code == 200, unknown
        assert "Nous ne trouvons pas l'urgence" in response.text and "Brouillon" not in response.text
        assert 'name="emergency" value=""' in response.text
    plain = await client.get("/inscription")
    assert "urgence" not in plain.text.split("<form", 1)[0].split("<h1>", 1)[1]


async def test_a_failed_emergency_signup_still_names_the_emergency(client: AsyncTestClient,
                                                                   db: asyncpg.Connection) -> None:
    await live_emergency(db)
    page = await client.get("/inscription", params={"urgence": "covid-19"})
    response = await client.post("/inscription", data={"emergency": "covid-19", "first_name": "Ana",
                                                       "_csrf_token": csrf_token(page.text)})
    assert response.status_code == 422
    assert f"l'urgence « {COVID} »" in response.text and 'name="emergency" value="covid-19"' in response.text


async def test_the_emails_name_the_emergency_by_its_title(client: AsyncTestClient, db: asyncpg.Connection,
                                                          mail_sink: MailSink) -> None:
    await live_emergency(db)
    assert (await client.post("/api/v1/volunteers", json=signup(email="ana.urgence@example.org"))).status_code == 202
    run_worker({"SMTP_URL": mail_sink.url})
    [welcome] = [m for m in mail_sink.messages() if m["To"] == "ana.urgence@example.org"]
    assert f"l'urgence « {COVID} »" in welcome.get_content() and "« covid-19 »" not in welcome.get_content()

    held = await db.fetchval(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at, emergency_slug, unconfirmed)"
        " VALUES ('r-held', 'held@example.org', 'held@example.org', 'Léa', 'Morel', DATE '1990-01-01', '69003',"
        " '69123', '{}', 'weekends', '{}', now(), now(), 'covid-19', true) RETURNING id"
    )
    unknown = await db.fetchval(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at, emergency_slug)"
        " VALUES ('r-gone', 'gone@example.org', 'gone@example.org', 'Léo', 'Morel', DATE '1990-01-01', '69003',"
        " '69123', '{}', 'weekends', '{}', now(), now(), 'effacee') RETURNING id"
    )
    rq = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.send_volunteer_mails(rq, "confirm_email", [(held, "welcome:held")])
    enqueue.send_volunteer_mails(rq, "welcome", [(unknown, "welcome:gone")])
    rq.close()
    run_worker({"SMTP_URL": mail_sink.url})
    by_address = {message["To"]: message.get_content() for message in mail_sink.messages()}
    assert f"l'urgence « {COVID} »" in by_address["held@example.org"]
    assert "urgence" not in by_address["gone@example.org"]  # an emergency we cannot name is not named at all
