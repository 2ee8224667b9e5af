"""What a signed-in person is shown stays out of shared caches, the sign-in a guard
asks for comes back to the page that asked, a removed manager loses the organisation's private missions at once,
and a file posted where the form sends numbers is a 4xx."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import event

from ops.services import MailSink
from tests.conftest import run_worker
from tests.test_application_journey_browser import MANAGER, TITLE
from tests.test_application_journey_browser import seed as seed_mission
from tests.test_organisations import sign_in
from tests.test_signin import LINK_SUBJECT, confirm, csrf_token, mails, token_in
from tests.test_volunteer_flows import live_emergency

DRAFT = "Préparer les colis de la rentrée"


async def organisation_path(db: asyncpg.Connection, mission_id: int) -> str:
    organisation_id = await db.fetchval("SELECT organisation_id FROM missions WHERE id = $1", mission_id)
    return f"/organisations/{organisation_id}-banque-alimentaire-du-rhone"


async def add_draft(db: asyncpg.Connection, mission_id: int) -> None:
    await db.execute(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) SELECT organisation_id, $2, 'Trier les fournitures.', domain, activities, remote,"
        " start_date, 2, false, 'draft' FROM missions WHERE id = $1", mission_id, DRAFT,
    )


# Private pages -----------------------------------------------------------------------------------------------------


async def test_every_page_a_signed_in_person_sees_is_private_and_varies_on_the_cookie(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    organisation = await organisation_path(db, mission_id)
    pages = ("/missions", organisation, "/inscription", "/connexion")
    for path in pages:  # signed out: nothing personal, nothing changed
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "private" not in response.headers.get("cache-control", ""), path
    await sign_in(client, redis, db, "visiteuse@example.org")  # none of these pages is hers to manage
    for path in pages:
        response = await client.get(path)
        assert response.status_code == 200 and "Se déconnecter" in response.text, path
        assert response.headers["cache-control"] == "private, no-store", path
        assert "cookie" in response.headers["vary"].lower(), path
    # A page that chose its own caching keeps it.
    assert (await client.get("/mon-espace")).headers["cache-control"] == "no-store"


async def test_the_pages_cached_for_everyone_stay_public_for_a_signed_in_person(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await live_emergency(db)
    await sign_in(client, redis, db, MANAGER)
    for path in ("/", "/urgence/covid-19"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "public, max-age=5", path
        assert "cookie" not in response.headers.get("vary", "").lower(), path
        assert "Se déconnecter" not in response.text and "_csrf_token" not in response.text, path


# Back to the guarded page after signing in ------------------------------------------------------------------------


async def test_a_signed_out_manager_lands_on_the_applicants_after_the_emailed_link(
    client: AsyncTestClient, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    mission_id = await seed_mission(db)
    applicants = f"/missions/{mission_id}/candidatures"
    guarded = await client.get(applicants, params={"info": "jeton-secret"}, follow_redirects=False)
    assert guarded.status_code == 303
    location = guarded.headers["location"]
    assert location == f"/connexion?suite=%2Fmissions%2F{mission_id}%2Fcandidatures"  # the path, not its query
    form = await client.get(location)
    assert f'name="suite" value="{applicants}"' in form.text
    sent = await client.post("/connexion", data={"email": MANAGER, "suite": applicants,
                                                 "_csrf_token": csrf_token(form.text)})
    assert sent.status_code == 200, sent.text
    run_worker({"SMTP_URL": mail_sink.url})
    signed_in = await confirm(client, token_in(mails(mail_sink, LINK_SUBJECT)[-1]))
    assert signed_in.status_code == 303 and signed_in.headers["location"] == applicants
    page = await client.get(applicants)
    assert page.status_code == 200 and TITLE in page.text


@pytest.mark.parametrize("method, path", [
    ("GET", "/exports/Zm9vYmFyLXRva2VuLXNlY3JldA"),  # an export's path is its token
    ("GET", "/exports/Zm9vYmFyLXRva2VuLXNlY3JldA/candidatures.csv"),
    ("POST", "/missions/1/candidatures/decision"),  # a form cannot be replayed after the sign-in
])
async def test_the_sign_in_asked_by_a_guard_offers_no_return_where_it_must_not(
    client: AsyncTestClient, method: str, path: str
) -> None:
    if method == "GET":
        response = await client.get(path, follow_redirects=False)
    else:
        token = csrf_token((await client.get("/connexion")).text)
        response = await client.post(path, data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/connexion"


async def test_the_api_still_answers_401_to_a_signed_out_caller(client: AsyncTestClient) -> None:
    response = await client.get("/missions/1/candidatures", headers={"accept": "application/json"},
                                follow_redirects=False)
    assert response.status_code == 401 and "location" not in response.headers


# Roles read again on the organisation page -------------------------------------------------------------------------


async def test_a_removed_manager_no_longer_sees_the_organisations_private_missions(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    await add_draft(db, mission_id)
    path = await organisation_path(db, mission_id)
    user_id = await sign_in(client, redis, db, MANAGER)
    managed = await client.get(path)
    assert 'id="missions-draft"' in managed.text and DRAFT in managed.text
    assert "candidature(s) à traiter" in managed.text

    await db.execute("DELETE FROM organisation_managers WHERE user_id = $1", user_id)  # the session still says manager
    removed = await client.get(path)
    assert removed.status_code == 200 and TITLE in removed.text
    assert 'id="missions-draft"' not in removed.text and DRAFT not in removed.text
    assert "candidature(s) à traiter" not in removed.text
    assert 'href="/mon-espace/structures"' not in removed.text  # the session holds the current roles again


def statements_during(client: AsyncTestClient) -> list[str]:
    """The SQL the app's engine sends from now on (read, not replaced: the database answers as always)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(client.app.state.web.engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_the_public_organisation_page_counts_no_pending_applications(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    path = await organisation_path(db, mission_id)
    seen = statements_during(client)
    public = await client.get(path)
    assert public.status_code == 200 and TITLE in public.text
    reading_applications = [statement for statement in seen if "FROM applications" in statement]
    assert reading_applications == []  # the public list shows titles and states: no application is read

    await sign_in(client, redis, db, MANAGER)
    seen.clear()
    assert "candidature(s) à traiter" in (await client.get(path)).text
    assert len([statement for statement in seen if "FROM applications" in statement]) == 2


# A file where the form sends numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["decision", "message"])
async def test_a_file_posted_as_the_volunteer_field_is_a_4xx(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, action: str
) -> None:
    mission_id = await seed_mission(db)
    await sign_in(client, redis, db, MANAGER)
    listing = f"/missions/{mission_id}/candidatures"
    token = csrf_token((await client.get(listing)).text)
    response = await client.post(
        f"{listing}/{action}", data={"decision": "accepter", "body": "Bonjour", "_csrf_token": token},
        files={"volunteer": ("volunteer.txt", b"1", "text/plain")}, follow_redirects=False,
    )
    assert 400 <= response.status_code < 500, response.text
    assert "mal formée" in response.text


async def test_a_file_posted_as_the_confirmed_refusal_reason_is_a_4xx(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    await sign_in(client, redis, db, MANAGER)
    listing = f"/missions/{mission_id}/candidatures"
    token = csrf_token((await client.get(listing)).text)
    response = await client.post(
        f"{listing}/decision", data={"decision": "refuser", "volunteer": "1", "confirm": "1", "_csrf_token": token},
        files={"reason": ("motif.txt", b"Complet.", "text/plain")}, follow_redirects=False,
    )
    assert 400 <= response.status_code < 500, response.text  # never saved as "motif.txt - text/plain"


async def test_digits_of_another_script_choose_no_applicant(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    await sign_in(client, redis, db, MANAGER)
    listing = f"/missions/{mission_id}/candidatures"
    token = csrf_token((await client.get(listing)).text)
    response = await client.post(f"{listing}/decision", data={"decision": "accepter", "volunteer": "١",
                                                              "_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith("?fait=accepter&nombre=0&ignorees=0")  # nobody was chosen
