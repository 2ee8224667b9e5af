"""Moderation that holds: an online mission whose content changes goes back to the referents, a decision answers the
version the referent read, a suspension is recorded and costs the organisation its trust, nobody moderates their own
work (missions or templates), revoked roles stop previewing offline missions, attaching a mission to an emergency
keeps a priority its department set, and a manager cannot close a mission to the minors it already took."""

from __future__ import annotations

import itertools
import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.test_applications import add_volunteers
from tests.test_emergencies import act as emergency_act
from tests.test_emergencies import create as create_emergency
from tests.test_emergencies import organisation_in
from tests.test_mission_moderation import TEMPLATE, Browser, add_emergency, browser, status_of
from tests.test_missions import (
    act,
    create,
    found,
    mission,
    moderate,
    online_mission,
    read_version,
    validated_organisation,
)
from tests.test_organisations import post_form, sign_in
from tests.test_web_hardening import statements

FIXTURES = (browser,)  # pytest finds fixtures by name in the module: the tests take it as a parameter
CHANGED = "La mission a été modifiée depuis que vous l'avez ouverte : relisez-la."
PARIS_TODAY = datetime.now(ZoneInfo("Europe/Paris")).date()
NUMBERS = itertools.count(1)


def unescaped(response: Any) -> str:
    return str(response.text).replace("&#39;", "'")


async def edit(client: AsyncTestClient, mission_id: int, **overrides: Any) -> Any:
    path = f"/missions/{mission_id}/modifier"
    return await post_form(client, path, mission(**overrides), path)


async def trust(db: asyncpg.Connection, organisation_id: int, validations: int = 3) -> None:
    for _ in range(validations):
        await db.execute("INSERT INTO mission_moderations (organisation_id, decision) VALUES ($1, 'validate')",
                         organisation_id)


async def validate_again(moderator: AsyncTestClient, db: asyncpg.Connection, mission_id: int) -> None:
    """A referent's validation, forgotten at once: the organisation does not become trusted along the test."""
    assert (await moderate(moderator, mission_id, "valider")).status_code == 303
    await db.execute("DELETE FROM mission_moderations WHERE mission_id = $1", mission_id)


async def db_version(db: asyncpg.Connection, mission_id: int) -> str:
    """The version as the queue would show it: microseconds since the epoch of the mission's last change."""
    return str(await db.fetchval("SELECT (extract(epoch FROM updated_at) * 1000000)::bigint FROM missions "
                                 "WHERE id = $1", mission_id))


# An edit of an online mission ------------------------------------------------------------------------------------


async def test_an_edit_that_changes_an_online_missions_content_sends_it_back_to_the_referents(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    mission_id = await online_mission(client, admin, organisation_id)

    # Places and dates are the manager's: the mission stays online.
    later = (date.today() + timedelta(days=45)).isoformat()
    assert (await edit(client, mission_id, places="20", end_date=later)).status_code == 303
    assert await status_of(db, mission_id) == "published"

    changes: list[dict[str, str]] = [
        {"title": "Distribution alimentaire du dimanche"},
        {"description": "Accueillir les familles, distribuer les colis et ranger la salle à Lyon."},
        {"domain": "sport-pour-tous"},
        {"activities": "accueil-information, logistique"},
        {"prerequisites": "Savoir porter des cartons."},
        {"schedule": "Tous les samedis matin"},
        {"open_to_minors": "1"},
        {"address_line_1": "5 rue Racine", "postal_code_1": "69100"},
    ]
    for change in changes:
        response = await edit(client, mission_id, **change)
        assert response.status_code == 303, change
        assert response.headers["location"].endswith("?info=relecture"), change
        assert await status_of(db, mission_id) == "awaiting_validation", change
        assert (await found(client, postal_code="69001"))["total"] == 0, change  # offline at once
        page = unescaped(await client.get(response.headers["location"]))
        assert "elle n'est plus en ligne et attend à nouveau la validation" in page
        await validate_again(admin, db, mission_id)
        assert await status_of(db, mission_id) == "published"
        response = await edit(client, mission_id, **{**change, "places": "21"})  # the same content again
        assert response.status_code == 303 and "info=" not in response.headers["location"]
        assert await status_of(db, mission_id) == "published"
        await edit(client, mission_id)  # back to the original content (sent back once more), then validated
        await validate_again(admin, db, mission_id)

    # A full mission too.
    assert (await act(client, mission_id, "completer")).status_code == 303
    assert (await edit(client, mission_id, title="Une mission toute nouvelle")).status_code == 303
    assert await status_of(db, mission_id) == "awaiting_validation"
    await validate_again(admin, db, mission_id)

    # A trusted organisation's edits stay online, and the search shows them at once.
    await trust(db, organisation_id)
    assert (await edit(client, mission_id, title="Maraude du soir à Lyon")).status_code == 303
    assert await status_of(db, mission_id) == "published"
    assert [item["title"] for item in (await found(client, postal_code="69001"))["items"]] == [
        "Maraude du soir à Lyon"]


async def test_a_mission_from_a_validated_template_keeps_publishing_at_once_through_its_edits(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    template_id = await db.fetchval(
        "INSERT INTO mission_templates (title, description, domain, activities, open_to_minors, status) "
        "VALUES ($1, $2, $3, '{accueil-information}', true, 'validated') RETURNING id",
        TEMPLATE["title"], TEMPLATE["description"], TEMPLATE["domain"])
    mission_id, _ = await create(client, organisation_id, modele=str(template_id))
    await act(client, mission_id, "publier")
    assert await status_of(db, mission_id) == "published"
    assert (await edit(client, mission_id, schedule="Le samedi", postal_code_1="69100",
                       address_line_1="5 rue Racine")).status_code == 303
    assert await status_of(db, mission_id) == "published"
    await db.execute("UPDATE mission_templates SET status = 'archived'")  # no longer a validated text
    assert (await edit(client, mission_id, schedule="Le dimanche")).status_code == 303
    assert await status_of(db, mission_id) == "awaiting_validation"


# Decisions on what was read --------------------------------------------------------------------------------------


async def test_a_decision_on_a_mission_changed_since_it_was_opened_is_refused(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, rhone = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    mission_id, _ = await create(client, organisation_id)
    await act(client, mission_id, "publier")

    for decision, reason in (("valider", ""), ("refuser", "Précisez les horaires.")):
        opened = read_version((await rhone.get("/moderation/missions")).text, mission_id, decision)
        assert opened == await db_version(db, mission_id)
        await edit(client, mission_id, description=f"Une autre description, écrite avant la décision ({decision}).")
        path = f"/moderation/missions/{mission_id}/{decision}"
        stale = await post_form(rhone, path, {"version": opened, "reason": reason})
        assert stale.status_code == 409 and CHANGED in unescaped(stale)
        assert (await post_form(rhone, path, {"reason": reason})).status_code == 409  # no version: nothing read
        assert await status_of(db, mission_id) == "awaiting_validation"
    assert await db.fetchval("SELECT count(*) FROM mission_moderations") == 0
    assert (await moderate(rhone, mission_id, "valider")).status_code == 303  # read again

    # Reinstating puts a text back online: the one the referent read.
    assert (await moderate(rhone, mission_id, "suspendre", "Signalements.")).status_code == 303
    opened = read_version((await rhone.get("/moderation/missions")).text, mission_id, "retablir")
    await edit(client, mission_id, title="Un titre changé pendant la suspension")
    stale = await post_form(rhone, f"/moderation/missions/{mission_id}/retablir", {"version": opened})
    assert stale.status_code == 409 and await status_of(db, mission_id) == "suspended"
    assert (await moderate(rhone, mission_id, "retablir")).status_code == 303


# Suspensions -----------------------------------------------------------------------------------------------------


async def test_a_suspension_is_recorded_costs_the_trust_and_cannot_be_dodged_by_a_copy(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, rhone = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    referent_id = await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    await trust(db, organisation_id)
    suspended, _ = await create(client, organisation_id)
    await act(client, suspended, "publier")
    assert await status_of(db, suspended) == "published"  # trusted: online at once

    assert (await moderate(rhone, suspended, "suspendre", "Annonce trompeuse.")).status_code == 303
    row = await db.fetchrow("SELECT mission_id, decision, reason, decided_by FROM mission_moderations "
                            "WHERE decision <> 'validate'")
    assert dict(row) == {"mission_id": suspended, "decision": "suspend", "reason": "Annonce trompeuse.",
                         "decided_by": referent_id}
    next_one, _ = await create(client, organisation_id, title="Mission suivante")
    await act(client, next_one, "publier")
    assert await status_of(db, next_one) == "awaiting_validation"  # no longer trusted

    copy = await post_form(client, f"/missions/{suspended}/dupliquer", {})
    assert copy.status_code == 409 and "Cette mission est suspendue par la modération" in unescaped(copy)
    assert await db.fetchval("SELECT count(*) FROM missions") == 2
    # A copy of anything else is a draft that goes through the publishing rule again.
    copied = await post_form(client, f"/missions/{next_one}/dupliquer", {})
    copy_id = int(re.findall(r"/missions/(\d+)/modifier", copied.headers["location"])[0])
    await edit(client, copy_id)
    await act(client, copy_id, "publier")
    assert await status_of(db, copy_id) == "awaiting_validation"


async def test_the_queue_names_a_missions_emergency_by_its_title(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await add_emergency(db, "crue-du-rhone", "Crue du Rhône — juin", ["69"])
    waiting, _ = await create(client, organisation_id, emergency_slug="crue-du-rhone")
    await act(client, waiting, "publier")
    queue = unescaped(await admin.get("/moderation/missions"))
    assert "Urgence liée : Crue du Rhône — juin" in queue and "crue-du-rhone" not in queue


# Nobody moderates their own work ---------------------------------------------------------------------------------


async def test_a_referent_or_an_admin_does_not_decide_on_the_missions_of_an_organisation_they_manage(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    waiting, _ = await create(client, organisation_id)
    await act(client, waiting, "publier")
    online = await online_mission(client, admin, organisation_id, title="Mission déjà en ligne")
    await sign_in(client, redis, db, "lyon@example.org", referent_of=("69",))  # the manager becomes referent

    queue = unescaped(await client.get("/moderation/missions"))
    assert "Vous gérez la structure qui propose cette mission" in queue
    assert read_version(queue, waiting, "valider") is None  # no buttons
    own = await post_form(client, f"/moderation/missions/{waiting}/valider",
                          {"version": await db_version(db, waiting)})
    assert own.status_code == 403 and "une autre personne de la modération doit en décider" in unescaped(own)
    assert (await post_form(client, f"/moderation/missions/{online}/suspendre", {"reason": "Non."})
            ).status_code == 403
    page = unescaped(await client.get(f"/missions/{online}-x", follow_redirects=True))
    assert "sa modération revient à une autre personne" in page and "Suspendre la mission" not in page
    assert await status_of(db, waiting) == "awaiting_validation" and await status_of(db, online) == "published"

    # An admin who manages the organisation leaves it to another moderator.
    admin_id = await db.fetchval("SELECT id FROM users WHERE email = 'admin@example.org'")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, admin_id)
    refused = await post_form(admin, f"/moderation/missions/{waiting}/valider",
                              {"version": await db_version(db, waiting)})
    assert refused.status_code == 403 and await status_of(db, waiting) == "awaiting_validation"
    assert await db.fetchval("SELECT count(*) FROM mission_moderations WHERE mission_id = $1", waiting) == 0


async def test_templates_are_validated_by_admins_and_national_referents_never_by_who_wrote_them(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, other_admin, national = await browser(), await browser(), await browser()
    await sign_in(client, redis, db, "coord.rhone@example.org", departments=("69",))
    await sign_in(admin, redis, db, "admin@example.org", admin=True)
    await sign_in(other_admin, redis, db, "admin2@example.org", admin=True)
    await sign_in(national, redis, db, "referent.national@example.org", referent_of=(None,))
    listing = "/modeles-missions"
    assert (await post_form(client, f"{listing}/nouveau", TEMPLATE, f"{listing}/nouveau")).status_code == 303
    by_coordinator = await db.fetchval("SELECT id FROM mission_templates")
    assert (await post_form(admin, f"{listing}/nouveau", {**TEMPLATE, "title": "Maraude hivernale de l'admin"},
                            f"{listing}/nouveau")).status_code == 303
    by_admin = await db.fetchval("SELECT id FROM mission_templates WHERE id <> $1", by_coordinator)

    # A coordinator writes, and does not validate.
    assert f"/modeles-missions/{by_coordinator}/valider" not in (await client.get(listing)).text
    refused = await post_form(client, f"{listing}/{by_coordinator}/valider", {}, listing)
    assert refused.status_code == 403 and "pas le valider" in unescaped(refused)
    # Nor does the admin who wrote it.
    assert f"/modeles-missions/{by_admin}/valider" not in (await admin.get(listing)).text
    own = await post_form(admin, f"{listing}/{by_admin}/valider", {}, listing)
    assert own.status_code == 403 and "une autre personne" in unescaped(own)
    assert await db.fetchval("SELECT count(*) FROM mission_templates WHERE status = 'validated'") == 0

    # A national referent reads and validates, and writes none.
    page = await national.get(listing)
    assert page.status_code == 200 and f"/modeles-missions/{by_admin}/valider" in page.text
    assert "/modeles-missions/nouveau" not in page.text
    assert (await national.get(f"{listing}/nouveau")).status_code == 403
    assert (await post_form(national, f"{listing}/{by_admin}/valider", {}, listing)).status_code == 303
    assert (await post_form(other_admin, f"{listing}/{by_coordinator}/valider", {}, listing)).status_code == 303

    # Whoever changes a text last is one of its authors too.
    edit_path = f"{listing}/{by_coordinator}/modifier"
    assert (await post_form(admin, edit_path, {**TEMPLATE, "activities": "logistique"}, edit_path)).status_code == 303
    assert (await post_form(admin, f"{listing}/{by_coordinator}/valider", {}, listing)).status_code == 403
    assert (await post_form(national, f"{listing}/{by_coordinator}/valider", {}, listing)).status_code == 303
    assert await db.fetchval("SELECT count(*) FROM mission_templates WHERE status = 'validated'") == 2


# Roles read again ------------------------------------------------------------------------------------------------


def role_queries(sent: list[str]) -> int:
    return sum("referent_scopes" in statement for statement in sent)


async def test_a_revoked_role_stops_previewing_offline_missions_at_the_next_request(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, rhone, visitor, anonymous = await browser(), await browser(), await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    waiting, path = await create(client, organisation_id)
    await act(client, waiting, "publier")
    online = await online_mission(client, admin, organisation_id, title="Mission en ligne")
    await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    await sign_in(visitor, redis, db, "benevole@example.org")

    for person in (client, rhone, admin):
        with statements(person) as sent:
            assert (await person.get(path)).status_code == 200
        assert role_queries(sent) == 1  # their roles, as PostgreSQL holds them now
    for person in (visitor, anonymous):
        with statements(person) as sent:
            assert (await person.get(path)).status_code == 404
            assert (await person.get(f"/missions/{online}-x", follow_redirects=True)).status_code == 200
        assert role_queries(sent) == 0  # the public path asks nobody's roles

    await db.execute("DELETE FROM organisation_managers WHERE organisation_id = $1", organisation_id)
    await db.execute("DELETE FROM referent_scopes")
    await db.execute("UPDATE users SET is_admin = false")
    for person in (client, rhone, admin):
        assert (await person.get(path)).status_code == 404
        page = await person.get(f"/missions/{online}-x", follow_redirects=True)
        assert page.status_code == 200 and "Gérer la mission" not in page.text and "Rendre prioritaire" not in page.text


# Emergencies -----------------------------------------------------------------------------------------------------


async def test_attaching_a_mission_to_an_emergency_keeps_a_priority_set_by_its_department(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    await create_emergency(client)
    await emergency_act(client, "inondations-aude", "mettre-en-ligne")
    organisation_id = await organisation_in(db, "13055")

    async def mission_in(*communes: str) -> int:
        mission_id: int = await db.fetchval(
            "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date,"
            " places, open_to_minors, priority, status) VALUES ($1, 'Nettoyage', 'Une mission de test assez longue.',"
            " 'solidarite-insertion', '{}', false, current_date, 5, false, true, 'published') RETURNING id",
            organisation_id)
        for commune in communes:
            await db.execute(
                "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude,"
                " longitude) SELECT $1, 'Rue', postal_codes[1], code, latitude, longitude FROM communes"
                " WHERE code = $2", mission_id, commune)
        return mission_id

    attach = "/coordination/urgences/inondations-aude/missions"
    # Its department is Bouches-du-Rhône (its first address), where its referent made it priority.
    elsewhere = await mission_in("13055", "11069")
    attached = await post_form(client, attach, {"mission": str(elsewhere)}, "/coordination/urgences/inondations-aude")
    assert "rattach" in attached.headers["location"]
    row = await db.fetchrow("SELECT emergency_slug, priority FROM missions WHERE id = $1", elsewhere)
    assert dict(row) == {"emergency_slug": "inondations-aude", "priority": True}
    # In the coordinator's own department, the flag is theirs to set either way.
    in_aude = await mission_in("11069")
    await post_form(client, attach, {"mission": str(in_aude)}, "/coordination/urgences/inondations-aude")
    assert await db.fetchval("SELECT priority FROM missions WHERE id = $1", in_aude) is False


# Minors ----------------------------------------------------------------------------------------------------------


def born(years: int, days: int = 0) -> date:
    """Someone `years` old today in Paris, shifted by `days` (later: younger)."""
    try:
        birthday = PARIS_TODAY.replace(year=PARIS_TODAY.year - years)
    except ValueError:
        birthday = date(PARIS_TODAY.year - years, 3, 1)
    return birthday + timedelta(days=days)


async def applicant(db: asyncpg.Connection, mission_id: int, birth_date: date, status: str) -> int:
    [(volunteer_id, _)] = await add_volunteers(db, 1, f"c{next(NUMBERS)}-")
    await db.execute("UPDATE volunteers SET birth_date = $1 WHERE id = $2", birth_date, volunteer_id)
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at)"
                     " VALUES ($1, $2, $3, 1, now())", mission_id, volunteer_id, status)
    return volunteer_id


async def test_a_manager_cannot_close_a_mission_to_the_minors_it_already_took(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await trust(db, organisation_id)  # its edits stay online: only the minors rule is at stake
    start = PARIS_TODAY.isoformat()
    open_one = await online_mission(client, admin, organisation_id, open_to_minors="1", start_date=start)
    for status in ("pending", "waitlisted", "proposed", "accepted"):
        await applicant(db, open_one, born(16), status)
    await applicant(db, open_one, born(17), "declined")  # closed: does not count
    await applicant(db, open_one, born(30), "pending")

    refused = await edit(client, open_one, start_date=start)  # the box unticked
    assert refused.status_code == 422
    assert (f"4 candidatures en cours viennent de personnes qui n'auront pas 18 ans le "
            f"{PARIS_TODAY.strftime('%d/%m/%Y')}") in unescaped(refused)
    assert "Refusez d'abord ces candidatures depuis la page des candidatures" in unescaped(refused)
    assert await db.fetchval("SELECT open_to_minors FROM missions WHERE id = $1", open_one) is True
    await db.execute("UPDATE applications SET status = 'declined' WHERE mission_id = $1 AND status <> 'pending'",
                     open_one)
    one_left = await edit(client, open_one, start_date=start)
    assert "1 candidature en cours vient d'une personne qui n'aura pas 18 ans" in unescaped(one_left)
    await db.execute("UPDATE applications SET status = 'declined' WHERE mission_id = $1", open_one)
    assert (await edit(client, open_one, start_date=start)).status_code == 303
    assert await db.fetchval("SELECT open_to_minors FROM missions WHERE id = $1", open_one) is False

    # Closed to minors, starting in 60 days: someone 18 in 30 days applied; the start cannot move before that.
    in_60, in_10, in_40 = (PARIS_TODAY + timedelta(days=days) for days in (60, 10, 40))
    dates = {"end_date": (in_60 + timedelta(days=7)).isoformat()}
    closed = await online_mission(client, admin, organisation_id, start_date=in_60.isoformat(), **dates,
                                  title="Mission pour les majeurs")
    await applicant(db, closed, born(18, days=30), "accepted")
    earlier = await edit(client, closed, start_date=in_10.isoformat(), **dates)
    assert earlier.status_code == 422
    assert f"1 candidature en cours vient d'une personne qui n'aura pas 18 ans le {in_10.strftime('%d/%m/%Y')}" in (
        unescaped(earlier))
    assert await db.fetchval("SELECT start_date FROM missions WHERE id = $1", closed) == in_60
    assert (await edit(client, closed, start_date=in_40.isoformat(), **dates)).status_code == 303
    assert await db.fetchval("SELECT start_date FROM missions WHERE id = $1", closed) == in_40


async def test_a_minor_still_in_the_drains_backlog_counts_too(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection, settings: Any
) -> None:
    """The minor's application is in Redis only (no drain has run): closing the mission to minors is still refused."""
    from app.applications import service as applications
    from app.applications.capacity import Places
    from app.db.base import make_engine
    from app.volunteers import age

    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await trust(db, organisation_id)
    start = PARIS_TODAY.isoformat()
    mission_id = await online_mission(client, admin, organisation_id, open_to_minors="1", start_date=start)
    [(minor, _)] = await add_volunteers(db, 1, "backlog-")
    await db.execute("UPDATE volunteers SET birth_date = $1 WHERE id = $2", born(16), minor)
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        outcome = await applications.apply(Places(redis), engine, mission_id, minor, "",
                                           adult_on=age.adult_on(born(16)))
    finally:
        await engine.dispose()
    assert outcome.outcome == "pending"
    assert await db.fetchval("SELECT count(*) FROM applications") == 0  # not drained

    refused = await edit(client, mission_id, start_date=start)  # the box unticked
    assert refused.status_code == 422 and "1 candidature en cours vient d'une personne" in unescaped(refused)
    assert await db.fetchval("SELECT open_to_minors FROM missions WHERE id = $1", mission_id) is True
