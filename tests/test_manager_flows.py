"""The managers' flows over HTTP: the state buttons are exactly the transitions the handler accepts, actions that
cannot be undone wait for a confirmation, the applicants page offers only the decisions each status allows, and
error pages lead back within the site only."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.missions import publishing
from app.missions.schemas import STATUS_LABELS
from app.settings import Settings
from tests.conftest import run_worker
from tests.test_applications import apply, close, notice_after, signed_in_volunteers, statuses
from tests.test_missions import create, online_mission, validated_organisation
from tests.test_organisations import post_form, register, sign_in


@pytest.fixture
async def other(settings: Settings) -> Any:
    """A second browser (a moderator, or another organisation's manager)."""
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


def offered(page: str, mission_id: int) -> set[str]:
    """The state actions the mission page offers, as posted forms or confirmation links."""
    return set(re.findall(rf'(?:action|href)="/missions/{mission_id}/statut/([a-z]+)"', page))


async def test_the_page_offers_exactly_the_transitions_the_handler_accepts(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "gestion@example.org")
    mission_id, path = await create(client, organisation_id)
    for status in STATUS_LABELS:
        await db.execute("UPDATE missions SET status = $2 WHERE id = $1", mission_id, status)
        shown = offered((await client.get(path)).text, mission_id)
        assert shown == set(publishing.allowed(status)), status
        for decision in publishing.ACTIONS:
            await db.execute("UPDATE missions SET status = $2 WHERE id = $1", mission_id, status)
            response = await post_form(client, f"/missions/{mission_id}/statut/{decision}", {"confirm": "1"}, path)
            assert response.status_code == 303, (status, decision, response.text)
            changed = await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) != status
            assert changed == (decision in shown), (status, decision)
            if not changed:
                assert response.headers["location"] == f"{path}?refus={decision}"
                notice = (await client.get(response.headers["location"])).text
                assert f"Cette mission est déjà « {STATUS_LABELS[status].lower()} »" in notice


async def test_cancelling_or_finishing_a_mission_waits_for_a_confirmation(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "gestion@example.org")
    mission_id, path = await create(client, organisation_id)
    action = f"/missions/{mission_id}/statut/annuler"
    for asked in (await client.get(action), await post_form(client, action, {}, path)):
        assert asked.status_code == 200 and "Cette action est définitive." in asked.text
        assert f'action="{action}"' in asked.text and 'name="confirm" value="1"' in asked.text
        assert f'href="{path}"' in asked.text and "Revenir à la mission" in asked.text
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "draft"
    assert (await client.post(action, data={"confirm": "1"}, follow_redirects=False)).status_code == 403  # CSRF
    assert (await post_form(client, action, {"confirm": "1"}, path)).status_code == 303
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "cancelled"
    # A confirmation link to an action the status no longer allows leads back to the mission.
    again = await client.get(action, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == f"{path}?refus=annuler"
    # Another organisation's manager gets the 403 page, not a confirmation.
    await sign_in(other, redis, db, "autre@example.org")
    await register(other, name="Secours Populaire Lyon")
    assert (await other.get(f"/missions/{mission_id}/statut/terminer")).status_code == 403


async def test_leaving_an_organisation_is_confirmed_first(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    user_id = await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    second = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ('b@example.org', 'b@example.org')"
                               " RETURNING id")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, second)
    team = f"/organisations/{organisation_id}/gestionnaires"
    asked = await post_form(client, f"{team}/quitter", {}, team)
    assert asked.status_code == 200 and "Voulez-vous vraiment quitter la structure" in asked.text
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE user_id = $1", user_id) == 1
    left = await post_form(client, f"{team}/quitter", {"confirm": "1"}, team)
    assert left.status_code == 303
    assert await db.fetchval("SELECT count(*) FROM organisation_managers WHERE user_id = $1", user_id) == 0


async def test_the_space_links_every_organisation_and_mission_and_the_way_to_a_new_one(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "gestion@example.org")
    mission_id, path = await create(client, organisation_id)
    space = (await client.get("/mon-espace")).text
    for href in (f"/organisations/{organisation_id}-", f"/organisations/{organisation_id}/missions/nouvelle",
                 f"/organisations/{organisation_id}/gestionnaires", path):
        assert f'href="{href}' in space, href
    assert re.search(rf'id="mission-{mission_id}".*?Brouillon', space, re.S)
    showcase = (await client.get(f"/organisations/{organisation_id}-x")).text
    assert 'id="missions-draft"' in showcase and f'href="{path}"' in showcase
    seen_by_moderator = (await other.get(f"/organisations/{organisation_id}-x")).text
    assert path not in seen_by_moderator  # a draft is its managers' business
    await sign_in(other, redis, db, "referente@example.org", referent_of=("69",))
    tools = (await other.get("/mon-espace")).text
    assert 'href="/moderation/missions"' in tools and 'href="/moderation/organisations"' in tools


async def test_the_applicants_page_offers_only_the_decisions_each_status_allows_and_confirms_a_refusal(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Any
) -> None:
    organisation_id = await validated_organisation(client, other, redis, db, "gestion@example.org")
    mission_id = await online_mission(client, other, organisation_id, places="1")
    clients, ids = await signed_in_volunteers(settings, redis, db, 2)
    try:
        assert [await apply(volunteer, mission_id) for volunteer in clients] == ["pending", "waitlisted"]
        run_worker()
        listing = f"/missions/{mission_id}/candidatures"
        await post_form(client, f"{listing}/decision", {"decision": "accepter", "volunteer": [str(ids[0])]}, listing)
        page = (await client.get(listing)).text
        rows = {int(number): row for number, row in re.findall(r'data-volunteer="(\d+)">(.*?)</tr>', page, re.S)}
        buttons = {volunteer: set(re.findall(r'name="decision" value="([a-z]+)"', row))
                   for volunteer, row in rows.items()}
        assert buttons == {ids[0]: {"refuser", "terminer"}, ids[1]: {"refuser"}}
        assert 'data-label="Candidature le"' in page and "Accepter la sélection" not in page

        asked = await post_form(client, f"{listing}/decision", {"decision": "refuser", "volunteer": [str(ids[1])],
                                                                "reason": "Complet."}, listing)
        assert asked.status_code == 200 and "Voulez-vous vraiment refuser 1 candidature(s) ?" in asked.text
        assert 'name="reason" value="Complet."' in asked.text
        assert (await statuses(db, mission_id))[ids[1]] == "waitlisted"
        done = await post_form(client, f"{listing}/decision", {"decision": "refuser", "volunteer": [str(ids[1])],
                                                               "confirm": "1"}, listing)
        assert "1 candidature(s) refusée(s)" in await notice_after(client, done)
    finally:
        await close(clients)


async def test_error_pages_lead_back_within_the_site_only(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    missing = "/missions/999999-x"
    origin = "http://testserver.local"
    within = await client.get(missing, headers={"Referer": f"{origin}/inscription?jeton=secret"})
    assert within.status_code == 404 and 'href="/inscription">Revenir à la page précédente' in within.text
    assert "secret" not in within.text
    assert "S'inscrire comme bénévole" in (await client.get("/nulle-part")).text  # anonymous, on public pages
    for referrer in ("https://ailleurs.example/missions", "//ailleurs.example/x", "javascript:alert(1)",
                     f"{origin}//ailleurs.example/x", f"{origin}/" + "a" * 3000):
        away = await client.get(missing, headers={"Referer": referrer})
        assert away.status_code == 404 and "Revenir à la page précédente" not in away.text, referrer
    await sign_in(client, redis, db, "gestion@example.org")
    signed = await client.get(missing)
    assert 'href="/mon-espace">Retour à mon espace' in signed.text and "S'inscrire comme bénévole" not in signed.text
