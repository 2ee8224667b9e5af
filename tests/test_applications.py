"""Applications: capacity that is never oversold across web processes, the wait-list and its promotions, the
managers' decisions (one by one and in bulk), messages and CSV export, role checks, and what the volunteer sees."""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from ops.services import MailSink
from tests.conftest import TEST_ENV, run_worker
from tests.servers import running_web_server
from tests.test_missions import online_mission, validated_organisation
from tests.test_organisations import post_form, sign_in

HOLDING = ("pending", "accepted", "done", "proposed")


async def add_volunteers(db: asyncpg.Connection, count: int, prefix: str = "benevole") -> list[tuple[int, str]]:
    """Volunteer rows as the sign-up drain writes them (the sign-up path has its own tests): (id, e-mail)."""
    rows = await db.fetch(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at)"
        " SELECT 'r-' || $1 || '-' || n, $1 || n || '@example.org', $1 || n || '@example.org', 'Camille',"
        " 'Nom' || n, DATE '1990-01-01', '69001', '69123', '{solidarite-insertion}', 'weekends', '{}', now(), now()"
        " FROM generate_series(1, $2) AS n RETURNING id, email",
        prefix, count,
    )
    return [(row["id"], row["email"]) for row in rows]


async def notice_after(client: AsyncTestClient, response: Any) -> str:
    """The notice of the page a redirect leads to: its address carries a code, never the sentence."""
    assert response.status_code == 303, response.text
    assert "?fait=" in response.headers["location"]
    page = await client.get(response.headers["location"])
    return html.unescape(page.text.split('id="info"')[1].split("</div>")[0]) if 'id="info"' in page.text else ""


def outcome_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert "resultat" in query, response.headers["location"]
    return query["resultat"][0]


async def apply(client: AsyncTestClient | httpx.AsyncClient, mission_id: int, message: str = "") -> str:
    response = await post_form(client, f"/missions/{mission_id}/candidater", {"message": message})  # type: ignore[arg-type]
    return outcome_of(response)


async def statuses(db: asyncpg.Connection, mission_id: int) -> dict[int, str]:
    rows = await db.fetch("SELECT volunteer_id, status FROM applications WHERE mission_id = $1", mission_id)
    return {row["volunteer_id"]: row["status"] for row in rows}


@pytest.fixture
async def mission_of(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Any) -> Any:
    """A factory of online missions of a validated organisation managed by `client`'s signed-in person (an admin
    validates each one)."""
    from app.main import create_app

    async with AsyncTestClient(app=create_app(settings)) as moderator:
        organisation_id = await validated_organisation(client, moderator, redis, db, "gestion@example.org")

        async def make(**overrides: Any) -> int:
            return await online_mission(client, moderator, organisation_id, **overrides)

        make.organisation_id = organisation_id  # type: ignore[attr-defined]
        yield make


@pytest.fixture
async def volunteer(settings: Any) -> Any:
    """Another browser for a volunteer, on its own app (another web process, as far as state goes)."""
    from app.main import create_app

    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


# The last-places rush ------------------------------------------------------------------------------------------


async def session_cookies(base_url: str, redis: Redis, emails: list[str]) -> list[str]:
    """Signs each address in through the real link confirmation on a real server; returns the session cookies."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', (await http.get("/connexion")).text)
        assert csrf
        cookie = http.cookies["csrftoken"]

        async def one(email: str) -> str:
            token_id = tokens.new_id()
            link = LinkRecord(email=email, email_normalized=email)
            await redis.set(tokens.link_key(token_id), msgspec.json.encode(link), ex=600)
            token = tokens.mint(TEST_ENV["SECRET_KEY"], token_id, int(time.time()) + 600)
            # A client of its own: a shared cookie jar would send one person's session with the next sign-in.
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as alone:
                response = await alone.post("/connexion/lien", data={"jeton": token, "_csrf_token": csrf[1]},
                                            headers={"Cookie": f"csrftoken={cookie}"})
            assert response.status_code == 303, response.text
            return response.cookies["renfort_session"]

        sessions = []
        for start in range(0, len(emails), 50):
            sessions.extend(await asyncio.gather(*[one(email) for email in emails[start:start + 50]]))
        return [f"renfort_session={session}; csrftoken={cookie}|{csrf[1]}" for session in sessions]


async def test_500_applicants_for_the_last_50_places_across_two_web_processes(
    mission_of: Any, redis: Redis, db: asyncpg.Connection, tmp_path: Path
) -> None:
    mission_id = await mission_of(places="60")
    early = await add_volunteers(db, 10, "tot")
    rush = await add_volunteers(db, 500, "ruee")
    with running_web_server(tmp_path / "web-a.log") as web_a, running_web_server(tmp_path / "web-b.log") as web_b:
        # Ten places go first, so exactly 50 are left when the rush starts.
        for cookie in await session_cookies(web_a.base_url, redis, [email for _, email in early]):
            assert await post_raw(web_a.base_url, mission_id, cookie) == "pending"
        cookies = await session_cookies(web_b.base_url, redis, [email for _, email in rush])
        servers = [web_a.base_url, web_b.base_url]
        outcomes = await asyncio.gather(*[
            post_raw(servers[number % 2], mission_id, cookie) for number, cookie in enumerate(cookies)
        ])
        assert outcomes.count("pending") == 50
        assert outcomes.count("waitlisted") == 450
        # Clicking again changes nothing.
        assert {await post_raw(web_a.base_url, mission_id, cookie) for cookie in cookies[:20]} == {"exists"}
    run_worker()
    saved = await statuses(db, mission_id)
    assert len(saved) == 510
    assert sum(status == "pending" for status in saved.values()) == 60
    assert sum(status == "waitlisted" for status in saved.values()) == 450
    assert await redis.llen("renfort:applications:pending") == 0


async def post_raw(base_url: str, mission_id: int, cookie: str) -> str:
    cookies, csrf = cookie.split("|")
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        response = await http.post(f"/missions/{mission_id}/candidater", data={"_csrf_token": csrf},
                                   headers={"Cookie": cookies})
    return outcome_of(response)


# Wait-list, cancellation, decisions ----------------------------------------------------------------------------


async def signed_in_volunteers(settings: Any, redis: Redis, db: asyncpg.Connection, count: int
                               ) -> tuple[list[AsyncTestClient], list[int]]:
    from app.main import create_app

    people = await add_volunteers(db, count)
    clients = []
    for _, email in people:
        client = AsyncTestClient(app=create_app(settings))
        await client.__aenter__()
        await sign_in(client, redis, db, email)
        clients.append(client)
    return clients, [volunteer_id for volunteer_id, _ in people]


async def close(clients: list[AsyncTestClient]) -> None:
    for client in clients:
        await client.__aexit__(None, None, None)


async def test_a_cancellation_promotes_the_first_wait_listed_who_is_told_by_email(
    mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    mission_id = await mission_of(places="2")
    clients, ids = await signed_in_volunteers(settings, redis, db, 4)
    try:
        assert [await apply(client, mission_id, "Dispo le samedi") for client in clients] == [
            "pending", "pending", "waitlisted", "waitlisted"
        ]
        response = await post_form(clients[0], f"/mon-espace/candidatures/{mission_id}/annuler", {"confirm": "1"},
                                   "/mon-espace")
        assert outcome_of(response) == "cancelled"
        run_worker({"SMTP_URL": mail_sink.url})
        assert await statuses(db, mission_id) == {
            ids[0]: "cancelled", ids[1]: "pending", ids[2]: "pending", ids[3]: "waitlisted"
        }
        subjects = {(message["To"], message["Subject"]) for message in mail_sink.messages()}
        assert ("benevole3@example.org", "Une place s'est libérée pour « Distribution alimentaire du samedi »") \
            in subjects
        assert ("benevole4@example.org", "Vous êtes sur liste d'attente pour « Distribution alimentaire du samedi »") \
            in subjects
        page = await clients[2].get("/mon-espace/candidatures")
        assert "En attente de réponse" in page.text and "Distribution alimentaire du samedi" in page.text
        # Cancelled, one may apply again: at the back of the line.
        assert await apply(clients[0], mission_id) == "waitlisted"
    finally:
        await close(clients)


async def test_managers_accept_and_decline_in_bulk_and_a_decline_frees_the_place(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink
) -> None:
    mission_id = await mission_of(places="2")
    clients, ids = await signed_in_volunteers(settings, redis, db, 3)
    try:
        for volunteer in clients:
            await apply(volunteer, mission_id)
        run_worker()
        page = await client.get(f"/missions/{mission_id}/candidatures")
        assert page.status_code == 200 and page.text.count('type="checkbox" name="volunteer"') == 6  # and messages
        path = f"/missions/{mission_id}/candidatures/decision"
        listing = f"/missions/{mission_id}/candidatures"
        response = await post_form(client, path, {"decision": "accepter", "volunteer": [str(ids[0]), str(ids[2])]},
                                   listing)
        assert "1 candidature(s) acceptée(s), 1 ignorée(s)" in await notice_after(client, response)
        response = await post_form(client, path, {"decision": "refuser", "volunteer": [str(ids[1])], "confirm": "1",
                                                  "reason": "Mission réservée aux titulaires du permis B."}, listing)
        assert response.status_code == 303
        # The decline freed a place: the wait-listed volunteer moves up, and the page shows it at once.
        page = await client.get(listing)
        assert page.text.count("Acceptée") >= 1 and "Refusée" in page.text
        run_worker({"SMTP_URL": mail_sink.url})
        assert await statuses(db, mission_id) == {ids[0]: "accepted", ids[1]: "declined", ids[2]: "pending"}
        declined = [m for m in mail_sink.messages() if m["To"] == "benevole2@example.org"
                    and m["Subject"].startswith("Votre candidature à")]
        assert any("permis B" in message.get_content() for message in declined)
        assert any(m["Subject"].endswith("est acceptée") for m in mail_sink.messages()
                   if m["To"] == "benevole1@example.org")
        # A declined volunteer cannot apply again.
        assert await apply(clients[1], mission_id) == "declined"
    finally:
        await close(clients)


async def test_raising_the_places_promotes_the_wait_list(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    from tests.test_missions import mission

    mission_id = await mission_of(places="1")
    clients, ids = await signed_in_volunteers(settings, redis, db, 3)
    try:
        assert [await apply(volunteer, mission_id) for volunteer in clients] == ["pending", "waitlisted", "waitlisted"]
        edit = f"/missions/{mission_id}/modifier"
        assert (await post_form(client, edit, mission(places="2"), edit)).status_code == 303
        # The next apply (or any page that reads the places) brings Redis up to date and promotes the first in line.
        page = await clients[0].get(f"/missions/{mission_id}-x")
        assert "0 place(s) restante(s)" in page.text or "Toutes les places sont prises" in page.text
        run_worker()
        assert await statuses(db, mission_id) == {ids[0]: "pending", ids[1]: "pending", ids[2]: "waitlisted"}
    finally:
        await close(clients)


async def test_state_is_rebuilt_from_postgresql_when_redis_lost_it(
    mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    mission_id = await mission_of(places="1")
    clients, _ = await signed_in_volunteers(settings, redis, db, 3)
    try:
        assert await apply(clients[0], mission_id) == "pending"
        assert await apply(clients[1], mission_id) == "waitlisted"
        run_worker()
        for key in await redis.keys("renfort:applications:*"):
            await redis.delete(key)
        assert await apply(clients[0], mission_id) == "exists"
        assert await apply(clients[2], mission_id) == "waitlisted"  # the one place is still taken
    finally:
        await close(clients)


# Roles ---------------------------------------------------------------------------------------------------------


async def test_a_manager_cannot_see_or_decide_on_another_organisations_applicants(
    mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection, volunteer: AsyncTestClient
) -> None:
    mission_id = await mission_of()
    clients, ids = await signed_in_volunteers(settings, redis, db, 1)
    try:
        await apply(clients[0], mission_id)
        await sign_in(volunteer, redis, db, "autre.gestion@example.org")
        assert (await volunteer.get(f"/missions/{mission_id}/candidatures")).status_code == 403
        response = await post_form(volunteer, f"/missions/{mission_id}/candidatures/decision",
                                   {"decision": "accepter", "volunteer": str(ids[0])})
        assert response.status_code == 403
        # A volunteer sees only their own applications, and cannot open the managers' list either.
        assert (await clients[0].get(f"/missions/{mission_id}/candidatures")).status_code == 403
        assert "Distribution alimentaire" not in (await volunteer.get("/mon-espace/candidatures")).text
    finally:
        await close(clients)


async def test_applying_needs_a_volunteer_sign_up_and_a_signed_in_session(
    mission_of: Any, redis: Redis, db: asyncpg.Connection, volunteer: AsyncTestClient
) -> None:
    mission_id = await mission_of()
    anonymous = await volunteer.post(f"/missions/{mission_id}/candidater", data={}, follow_redirects=False)
    assert anonymous.status_code in (303, 403)  # no session: sign-in page (or CSRF refusal), never a place
    await sign_in(volunteer, redis, db, "pas.inscrit@example.org")
    assert await apply(volunteer, mission_id) == "benevole"
    for action, form in (("annuler", {"confirm": "1"}), ("confirmer", {})):
        response = await post_form(volunteer, f"/mon-espace/candidatures/{mission_id}/{action}", form)
        assert outcome_of(response) == "benevole"
    page = await volunteer.get("/mon-espace/candidatures?resultat=benevole")
    assert "inscrivez-vous d'abord comme bénévole" in page.text
    assert await redis.llen("renfort:applications:pending") == 0
    # Signed up since (the sign-up drained while the session was open): the same session may now apply.
    await db.execute(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-late', $1, $1, 'Lou',"
        " 'Tardif', DATE '1990-01-01', '69001', '69123', '{}', 'weekends', '{}', now(), now())",
        "pas.inscrit@example.org",
    )
    assert await apply(volunteer, mission_id) == "pending"


async def test_an_offline_mission_takes_no_application(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    from tests.test_missions import act

    mission_id = await mission_of()
    clients, _ = await signed_in_volunteers(settings, redis, db, 1)
    try:
        assert (await act(client, mission_id, "completer")).status_code == 303
        assert await apply(clients[0], mission_id) == "closed"
    finally:
        await close(clients)


# Export --------------------------------------------------------------------------------------------------------


async def test_managers_export_applicants_as_csv_built_by_a_worker(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    volunteer: AsyncTestClient
) -> None:
    mission_id = await mission_of()
    clients, _ = await signed_in_volunteers(settings, redis, db, 2)
    try:
        await apply(clients[0], mission_id, "=HYPERLINK(\"x\")")
        await apply(clients[1], mission_id)
        run_worker()
        listing = f"/missions/{mission_id}/candidatures"
        response = await post_form(client, f"/missions/{mission_id}/candidatures/export", {}, listing)
        location = response.headers["location"]
        assert "en préparation" in (await client.get(location)).text
        run_worker()
        assert "Télécharger" in (await client.get(location)).text
        download = await client.get(location + "/candidatures.csv")
        assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
        lines = download.content.decode("utf-8-sig").splitlines()
        assert lines[0].startswith("Prénom;Nom;E-mail")
        assert len(lines) == 3 and "benevole1@example.org" in download.text
        assert "'=HYPERLINK" in download.text  # never a live formula
        # Only tokens of the export's shape are looked up (the CSV's own key is not an export).
        assert (await client.get(location + ":csv")).status_code == 404
        # The link is the requester's only.
        await sign_in(volunteer, redis, db, "curieux@example.org")
        assert (await volunteer.get(location + "/candidatures.csv")).status_code == 404
        # A manager whose role was revoked downloads nothing more, even from the link they kept.
        await db.execute("DELETE FROM organisation_managers")
        assert (await client.get(location + "/candidatures.csv")).status_code == 403
    finally:
        await close(clients)


async def test_over_its_bound_the_application_queue_answers_503_with_retry_after(
    mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    import dataclasses

    from app.main import create_app

    mission_id = await mission_of()
    (volunteer_id, email), = await add_volunteers(db, 1)
    async with AsyncTestClient(app=create_app(dataclasses.replace(settings, application_backlog_limit=0))) as full:
        await sign_in(full, redis, db, email)
        response = await post_form(full, f"/missions/{mission_id}/candidater", {})
        assert response.status_code == 503 and response.headers["retry-after"] == "30"
        assert "Réessayez dans quelques instants" in response.text
    assert await redis.hget(f"renfort:applications:m{mission_id}:status", str(volunteer_id)) is None


async def test_an_id_past_bigint_in_a_path_is_a_french_400_not_a_server_error(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    (_, email), = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    huge = "9" * 23
    for path in (f"/missions/{huge}/candidater", f"/missions/{huge}/candidatures/decision",
                 f"/mon-espace/candidatures/{huge}/annuler", f"/missions/{huge}/statut/publier"):
        response = await post_form(client, path, {"decision": "accepter"})
        assert response.status_code == 400 and "La requête est mal formée." in response.text, path
    assert (await client.get(f"/missions/{huge}/candidatures")).status_code == 400


async def test_a_change_to_one_mission_makes_only_that_mission_read_postgresql_again(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    from app.applications.capacity import Places
    from tests.test_missions import mission

    first, second = await mission_of(places="1"), await mission_of(places="1")
    clients, _ = await signed_in_volunteers(settings, redis, db, 1)
    try:
        assert await apply(clients[0], first) == "pending" and await apply(clients[0], second) == "pending"
        places = Places(redis)
        assert await places.taken(first) == 1 and await places.taken(second) == 1
        edit = f"/missions/{first}/modifier"
        assert (await post_form(client, edit, mission(places="3"), edit)).status_code == 303
        assert await places.taken(first) is None  # read again at its next use
        assert await places.taken(second) == 1  # untouched: still served from Redis alone
        # A seed that read PostgreSQL before the change is refused rather than written over the new state.
        assert await places.seed(first, capacity=1, state="1", epoch="0", highest_version=0, saved=[]) is False
        assert await places.taken(first) is None
    finally:
        await close(clients)


async def test_managers_write_to_the_ticked_applicants_once_even_when_clicking_twice(
    client: AsyncTestClient, mission_of: Any, settings: Any, redis: Redis, db: asyncpg.Connection,
    mail_sink: MailSink
) -> None:
    mission_id = await mission_of()
    clients, ids = await signed_in_volunteers(settings, redis, db, 3)
    try:
        for volunteer in clients:
            await apply(volunteer, mission_id)
        run_worker()
        listing = f"/missions/{mission_id}/candidatures"
        page = (await client.get(listing)).text
        sending = re.search(r'name="envoi" value="([^"]+)"', page)
        assert sending
        form = {"volunteer": [str(ids[0]), str(ids[2])], "body": "Rendez-vous samedi à 9 h devant la mairie.",
                "envoi": sending[1]}
        first = await post_form(client, f"{listing}/message", form, listing)
        assert "Message envoyé à 2 personne(s)." in await notice_after(client, first)
        again = await post_form(client, f"{listing}/message", form, listing)
        assert "déjà parti" in await notice_after(client, again)
        empty = await post_form(client, f"{listing}/message", {**form, "body": " "}, listing)
        assert "Écrivez un message" in await notice_after(client, empty)
        crafted = (await client.get(f"{listing}?info=Appelez+le+0800&fait=Appelez+le+0800&nombre=1")).text
        assert "Appelez" not in crafted and 'id="info"' not in crafted  # codes only, never text from the address
        run_worker({"SMTP_URL": mail_sink.url})
        received = [m for m in mail_sink.messages() if m["Subject"].startswith("Message de ")]
        assert sorted(m["To"] for m in received) == ["benevole1@example.org", "benevole3@example.org"]
        assert all("Rendez-vous samedi à 9 h" in m.get_content() for m in received)
    finally:
        await close(clients)
