"""Missions under control: referents validate, refuse or suspend them in their own departments (oldest first),
trusted organisations and validated templates publish at once, a template's text cannot be changed, missions are
copied, only live emergencies of the mission's scope can be chosen, priority belongs to the coordination and the
referents, and managers are e-mailed every decision."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from ops.services import MailSink
from queues.connection import job_queue
from queues.missions import finish_past_missions
from tests.conftest import REDIS_URL, run_worker
from tests.test_missions import act, create, found, mission, moderate, online_mission, validated_organisation
from tests.test_organisations import post_form, sign_in

NEXT_MONTH = (date.today() + timedelta(days=30)).isoformat()
TEMPLATE = {
    "title": "Collecte nationale des banques alimentaires",
    "description": "Accueillir les donateurs à l'entrée du magasin et trier les denrées collectées.",
    "domain": "solidarite-insertion",
    "activities": "distribution, logistique",
    "open_to_minors": "1",
    "prerequisites": "",
}

Browser = Callable[[], Any]


@pytest.fixture
async def browser(settings: Settings) -> AsyncIterator[Browser]:
    """Opens more browsers (other people, each on its own app), all closed at the end of the test."""
    async with AsyncExitStack() as stack:
        async def open_one() -> AsyncTestClient:
            return await stack.enter_async_context(AsyncTestClient(app=create_app(settings)))

        yield open_one


async def status_of(db: asyncpg.Connection, mission_id: int) -> str:
    status: str = await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id)
    return status


async def add_emergency(db: asyncpg.Connection, slug: str, title: str, departments: list[str],
                        status: str = "live") -> None:
    await db.execute(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status, live_at)"
        " VALUES ($1, $2, 'Une situation difficile.', 'Des bras et des repas.', $3, '{}', $4, now())",
        slug, title, departments, status,
    )


# The queue -----------------------------------------------------------------------------------------------------


async def test_the_queue_shows_a_referents_own_departments_oldest_first(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, marseille, rhone, bouches = await browser(), await browser(), await browser(), await browser()
    lyon_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    marseille_id = await validated_organisation(marseille, admin, redis, db, "marseille@example.org",
                                                name="Secours de Marseille", postal_code="13001")
    first, _ = await create(client, lyon_id, title="Maraude du soir à Lyon")
    second, _ = await create(client, lyon_id, title="Collecte de printemps à Lyon")
    remote, _ = await create(client, lyon_id, title="Soutien scolaire à distance", remote="1", address_line_1="",
                             postal_code_1="")
    south, _ = await create(marseille, marseille_id, title="Distribution sur la Canebière",
                            address_line_1="1 La Canebière", postal_code_1="13001")
    for manager, mission_id in ((client, second), (client, first), (client, remote), (marseille, south)):
        assert (await act(manager, mission_id, "publier")).status_code == 303
        assert await status_of(db, mission_id) == "awaiting_validation"
    await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    await sign_in(bouches, redis, db, "referent.bdr@example.org", referent_of=("13",))

    page = (await rhone.get("/moderation/missions")).text
    # Oldest first; a remote mission belongs to its organisation's department.
    assert page.index("Collecte de printemps") < page.index("Maraude du soir") < page.index("Soutien scolaire")
    assert "Distribution sur la Canebière" not in page
    assert "Les Restos du Cœur du Rhône" in page and "12 place(s)" in page and "1 place de la Comédie" in page
    theirs = (await bouches.get("/moderation/missions")).text
    assert "Distribution sur la Canebière" in theirs and "Maraude du soir" not in theirs

    outside = await moderate(bouches, first, "valider")
    assert outside.status_code == 403 and await status_of(db, first) == "awaiting_validation"
    assert (await moderate(rhone, south, "refuser", "Hors de mon département.")).status_code == 403
    assert await status_of(db, south) == "awaiting_validation"
    assert (await client.get("/moderation/missions")).status_code == 403  # a manager is no referent
    assert (await moderate(client, first, "valider")).status_code == 403

    assert (await moderate(rhone, first, "valider")).status_code == 303
    assert await status_of(db, first) == "published"
    assert [item["id"] for item in (await found(client, postal_code="69001"))["items"]] == [first]
    assert "Maraude du soir" not in (await rhone.get("/moderation/missions")).text
    assert (await moderate(rhone, first, "valider")).status_code == 409  # decided already


async def test_a_refusal_sends_the_mission_back_to_its_manager_with_the_reason(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, rhone = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    referent_id = await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    mission_id, path = await create(client, organisation_id)
    await act(client, mission_id, "publier")

    no_reason = await moderate(rhone, mission_id, "refuser")
    assert no_reason.status_code == 422 and "Indiquez le motif" in no_reason.text.replace("&#39;", "'")
    reason = "Précisez l'heure et le lieu du rendez-vous des bénévoles."
    assert (await moderate(rhone, mission_id, "refuser", reason)).status_code == 303
    row = await db.fetchrow("SELECT status, status_reason FROM missions WHERE id = $1", mission_id)
    assert dict(row) == {"status": "draft", "status_reason": reason}
    decision = await db.fetchrow("SELECT decision, reason, decided_by, organisation_id FROM mission_moderations")
    assert dict(decision) == {"decision": "refuse", "reason": reason, "decided_by": referent_id,
                              "organisation_id": organisation_id}

    page = (await client.get(path)).text.replace("&#39;", "'")
    assert "Motif du refus" in page and reason in page
    form = (await client.get(f"/missions/{mission_id}/modifier")).text.replace("&#39;", "'")
    assert reason in form
    edit = f"/missions/{mission_id}/modifier"
    assert (await post_form(client, edit, mission(schedule="Rendez-vous à 9 h devant la mairie"), edit)
            ).status_code == 303
    assert (await act(client, mission_id, "publier")).status_code == 303
    row = await db.fetchrow("SELECT status, status_reason FROM missions WHERE id = $1", mission_id)
    assert dict(row) == {"status": "awaiting_validation", "status_reason": None}


# Who publishes at once -------------------------------------------------------------------------------------------


async def test_an_organisation_is_trusted_after_n_validations_and_not_after_a_refusal(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    assert settings.trusted_organisation_missions == 3
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    for number in range(2):
        await online_mission(client, admin, organisation_id, title=f"Mission validée {number}")
    third, _ = await create(client, organisation_id, title="Troisième mission")
    await act(client, third, "publier")
    assert await status_of(db, third) == "awaiting_validation"  # two validations are not enough
    await moderate(admin, third, "valider")

    trusted, _ = await create(client, organisation_id, title="Mission de confiance")
    assert (await act(client, trusted, "publier")).status_code == 303
    assert await status_of(db, trusted) == "published"
    assert await db.fetchval("SELECT count(*) FROM mission_moderations") == 3  # nobody decided on it

    await db.execute("INSERT INTO mission_moderations (organisation_id, decision, reason) "
                     "VALUES ($1, 'refuse', 'Texte incomplet.')", organisation_id)
    after_refusal, _ = await create(client, organisation_id, title="Après un refus")
    await act(client, after_refusal, "publier")
    assert await status_of(db, after_refusal) == "awaiting_validation"
    # Twelve months on, the refusal no longer counts.
    await db.execute("UPDATE mission_moderations SET decided_at = now() - interval '13 months' "
                     "WHERE decision = 'refuse'")
    later, _ = await create(client, organisation_id, title="Un an plus tard")
    await act(client, later, "publier")
    assert await status_of(db, later) == "published"

    never = dataclasses.replace(settings, trusted_organisation_missions=0)
    async with AsyncTestClient(app=create_app(never)) as strict:
        await sign_in(strict, redis, db, "lyon@example.org")
        moderated, _ = await create(strict, organisation_id, title="Toujours modérée")
        await act(strict, moderated, "publier")
        assert await status_of(db, moderated) == "awaiting_validation"


async def test_a_mission_from_a_template_publishes_at_once_and_its_text_cannot_be_changed(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, coordinator = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await sign_in(coordinator, redis, db, "coord.rhone@example.org", departments=("69",))
    assert (await client.get("/modeles-missions")).status_code == 403  # a manager writes no templates
    assert (await coordinator.get("/modeles-missions/999/modifier")).status_code == 404
    refused = await post_form(coordinator, "/modeles-missions/nouveau", {**TEMPLATE, "title": "Aide"},
                              "/modeles-missions/nouveau")
    assert refused.status_code == 422 and "Donnez un titre à la mission" in refused.text
    created = await post_form(coordinator, "/modeles-missions/nouveau", TEMPLATE, "/modeles-missions/nouveau")
    assert created.status_code == 303
    template_id = await db.fetchval("SELECT id FROM mission_templates")
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    draft = await client.get(f"{path}?modele={template_id}")
    assert draft.status_code == 422 and "Ce modèle n'est pas proposé" in draft.text.replace("&#39;", "'")
    listing = "/modeles-missions"
    assert (await post_form(admin, f"{listing}/{template_id}/valider", {}, listing)).status_code == 303
    assert TEMPLATE["title"] in (await client.get(path)).text  # offered in "Nouvelle mission"

    form = await client.get(f"{path}?modele={template_id}")
    assert form.status_code == 200 and TEMPLATE["description"].replace("'", "&#39;") in form.text
    assert 'name="title"' not in form.text and 'name="description"' not in form.text
    assert f'name="modele" value="{template_id}"' in form.text
    crafted = mission(title="Un tout autre titre", description="Une description changée par un formulaire trafiqué.",
                      domain="sport", open_to_minors="", modele=str(template_id))
    response = await post_form(client, path, crafted, path)
    assert response.status_code == 303, response.text
    mission_id = int(re.findall(r"/missions/(\d+)-", response.headers["location"])[0])
    row = await db.fetchrow("SELECT title, description, domain, activities, open_to_minors, template_id, places "
                            "FROM missions WHERE id = $1", mission_id)
    assert dict(row) == {"title": TEMPLATE["title"], "description": TEMPLATE["description"],
                         "domain": "solidarite-insertion", "activities": ["distribution", "logistique"],
                         "open_to_minors": True, "template_id": template_id, "places": 12}

    assert (await act(client, mission_id, "publier")).status_code == 303
    assert await status_of(db, mission_id) == "published"
    assert await db.fetchval("SELECT count(*) FROM mission_moderations") == 0

    edit = f"/missions/{mission_id}/modifier"
    assert 'name="title"' not in (await client.get(edit)).text
    changed = await post_form(client, edit, mission(title="Titre changé après coup", domain="sport", places="30"),
                              edit)
    assert changed.status_code == 303
    row = await db.fetchrow("SELECT title, domain, places FROM missions WHERE id = $1", mission_id)
    assert dict(row) == {"title": TEMPLATE["title"], "domain": "solidarite-insertion", "places": 30}

    # An edit sends the template back to draft: offered again once validated, never once archived.
    assert (await post_form(coordinator, f"{listing}/{template_id}/modifier", {**TEMPLATE, "activities": "maraude"},
                            f"{listing}/{template_id}/modifier")).status_code == 303
    assert await db.fetchval("SELECT status FROM mission_templates") == "draft"
    assert (await client.get(f"{path}?modele={template_id}")).status_code == 422
    assert (await post_form(coordinator, f"{listing}/{template_id}/archiver", {}, listing)).status_code == 303
    assert (await post_form(admin, f"{listing}/{template_id}/valider", {})).status_code == 409


async def test_a_manager_duplicates_a_mission_into_a_new_draft(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, stranger = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    last_week = (date.today() - timedelta(days=7)).isoformat()
    original = await online_mission(client, admin, organisation_id, start_date=last_week,
                                    address_line_2="5 rue Racine", postal_code_2="69100")
    response = await post_form(client, f"/missions/{original}/dupliquer", {})
    assert response.status_code == 303
    copy = int(re.fullmatch(r"/missions/(\d+)/modifier", response.headers["location"])[1])  # type: ignore[index]
    rows = await db.fetch("SELECT id, title, places, status, start_date, end_date, template_id FROM missions "
                          "ORDER BY id")
    assert [dict(row) for row in rows] == [
        {"id": original, "title": "Distribution alimentaire du samedi", "places": 12, "status": "published",
         "start_date": date.fromisoformat(last_week), "end_date": date.fromisoformat(NEXT_MONTH),
         "template_id": None},
        {"id": copy, "title": "Distribution alimentaire du samedi", "places": 12, "status": "draft",
         "start_date": None, "end_date": date.fromisoformat(NEXT_MONTH), "template_id": None},
    ]
    addresses = "SELECT address_line, commune_code FROM mission_addresses WHERE mission_id = $1 ORDER BY id"
    assert [tuple(row) for row in await db.fetch(addresses, copy)] == [
        tuple(row) for row in await db.fetch(addresses, original)
    ] == [("1 place de la Comédie", "69123"), ("5 rue Racine", "69266")]
    assert (await client.get(response.headers["location"])).status_code == 200
    await sign_in(stranger, redis, db, "autre@example.org")
    assert (await post_form(stranger, f"/missions/{original}/dupliquer", {})).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM missions") == 2


# Emergencies and priority ----------------------------------------------------------------------------------------


async def test_a_manager_cannot_attach_a_mission_to_an_emergency_outside_its_scope(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await add_emergency(db, "crue-du-rhone", "Crue du Rhône", ["69"])
    await add_emergency(db, "canicule-2026", "Canicule nationale", [])
    await add_emergency(db, "feux-de-provence", "Feux de Provence", ["13"])
    await add_emergency(db, "orages-lyon", "Orages à Lyon (close)", ["69"], status="closed")
    await add_emergency(db, "exercice-rhone", "Exercice en préparation", ["69"], status="draft")
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    form = (await client.get(path)).text
    assert '<select class="field__select" id="emergency_slug" name="emergency_slug"' in form
    assert 'value="crue-du-rhone"' in form and 'value="canicule-2026"' in form
    for absent in ("feux-de-provence", "orages-lyon", "exercice-rhone"):
        assert f'value="{absent}"' not in form
    for slug in ("feux-de-provence", "orages-lyon", "exercice-rhone", "nexiste-pas"):
        response = await post_form(client, path, mission(emergency_slug=slug), path)
        assert response.status_code == 422, slug
        assert "Choisissez une urgence en cours dans la liste" in response.text
    assert await db.fetchval("SELECT count(*) FROM missions") == 0
    # In Marseille, the emergency of Provence is the one offered.
    response = await post_form(client, path, mission(emergency_slug="crue-du-rhone", postal_code_1="13001"), path)
    assert response.status_code == 422 and 'value="feux-de-provence"' in response.text
    assert 'value="crue-du-rhone"' not in response.text.split('id="emergency_slug"')[1].split("</select>")[0]

    mission_id, _ = await create(client, organisation_id, emergency_slug="crue-du-rhone")
    assert await db.fetchval("SELECT emergency_slug FROM missions WHERE id = $1", mission_id) == "crue-du-rhone"
    edit = f"/missions/{mission_id}/modifier"
    assert (await post_form(client, edit, mission(emergency_slug="feux-de-provence"), edit)).status_code == 422
    assert (await post_form(client, edit, mission(emergency_slug="canicule-2026"), edit)).status_code == 303
    assert await db.fetchval("SELECT emergency_slug FROM missions WHERE id = $1", mission_id) == "canicule-2026"
    # The emergency it is attached to may end: the mission keeps it through its next edits.
    await db.execute("UPDATE emergencies SET status = 'closed' WHERE slug = 'canicule-2026'")
    assert (await post_form(client, edit, mission(emergency_slug="canicule-2026", places="8"), edit)
            ).status_code == 303
    assert (await post_form(client, edit, mission(emergency_slug=""), edit)).status_code == 303
    assert await db.fetchval("SELECT emergency_slug FROM missions WHERE id = $1", mission_id) is None


async def test_priority_is_set_by_the_departments_coordinators_and_referents_not_by_managers(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin, rhone, bouches, coordinator = await browser(), await browser(), await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    mission_id = await online_mission(client, admin, organisation_id)
    edit = f"/missions/{mission_id}/modifier"
    assert 'name="priority"' not in (await client.get(edit)).text
    assert (await post_form(client, edit, mission(priority="1"), edit)).status_code == 303
    assert await db.fetchval("SELECT priority FROM missions") is False  # a posted flag is ignored

    flag = f"/missions/{mission_id}/priorite"
    assert (await post_form(client, flag, {"priority": "1"})).status_code == 403
    await sign_in(bouches, redis, db, "referent.bdr@example.org", referent_of=("13",))
    assert (await post_form(bouches, flag, {"priority": "1"})).status_code == 403
    assert await db.fetchval("SELECT priority FROM missions") is False

    await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    page = f"/missions/{mission_id}-x"
    assert "Rendre prioritaire" in (await rhone.get(page, follow_redirects=True)).text
    assert "Rendre prioritaire" not in (await client.get(page, follow_redirects=True)).text
    response = await post_form(rhone, flag, {"priority": "1"})
    assert response.status_code == 303 and await db.fetchval("SELECT priority FROM missions") is True
    assert (await found(client, sort="priority"))["items"][0]["priority"] is True  # the search follows at once
    assert (await post_form(client, edit, mission(places="14"), edit)).status_code == 303
    assert await db.fetchval("SELECT (priority, places)::text FROM missions") == "(t,14)"  # kept through an edit

    await sign_in(coordinator, redis, db, "coord.rhone@example.org", departments=("69",))
    from_queue = await post_form(coordinator, flag, {"priority": "0", "from": "moderation"})
    assert from_queue.status_code == 303 and from_queue.headers["location"] == "/moderation/missions"
    assert await db.fetchval("SELECT priority FROM missions") is False

    # A referent of the department who manages the organisation does not flag their own mission.
    referent_id = await db.fetchval("SELECT id FROM users WHERE email = 'referent.rhone@example.org'")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)", organisation_id,
                     referent_id)
    own = await post_form(rhone, flag, {"priority": "1"})
    assert own.status_code == 403 and "une autre personne" in own.text
    assert await db.fetchval("SELECT priority FROM missions") is False


# What follows a decision -----------------------------------------------------------------------------------------


async def test_managers_are_emailed_each_decision_and_a_suspension_takes_the_mission_offline(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink,
    settings: Settings
) -> None:
    admin, rhone = await browser(), await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    await sign_in(rhone, redis, db, "referent.rhone@example.org", referent_of=("69",))
    validated, path = await create(client, organisation_id, title="Maraude du soir")
    refused, _ = await create(client, organisation_id, title="Collecte de printemps")
    overtaken, _ = await create(client, organisation_id, title="Tri des dons")
    for mission_id in (validated, refused, overtaken):
        await act(client, mission_id, "publier")
    assert (await moderate(rhone, validated, "valider")).status_code == 303
    assert (await moderate(rhone, refused, "refuser", "Indiquez les horaires.")).status_code == 303
    assert (await moderate(rhone, overtaken, "valider")).status_code == 303
    assert (await moderate(rhone, overtaken, "suspendre")).status_code == 422  # a reason is required
    assert (await moderate(rhone, overtaken, "suspendre", "Doublon d'une autre mission.")).status_code == 303
    connection = SyncRedis.from_url(REDIS_URL)
    try:
        payloads = [job.kwargs for job in job_queue(connection).jobs
                    if job.func_name == "queues.mission_mail.send_mission_status_mails"]
    finally:
        connection.close()
    assert len(payloads) == 4 and {payload["mission_id"] for payload in payloads} == {validated, refused, overtaken}
    assert all(set(payload) == {"mission_id", "action", "changed", "user_ids"} for payload in payloads)  # ids only

    budget = {"SMTP_URL": mail_sink.url, "MAILS_PER_RECIPIENT_PER_HOUR": "50"}
    run_worker(budget)
    subjects = sorted(m["Subject"] for m in mail_sink.messages() if m["To"] == "lyon@example.org"
                      and m["Subject"].startswith("Votre mission"))
    assert subjects == ["Votre mission « Collecte de printemps » est à modifier",
                        "Votre mission « Maraude du soir » est en ligne",
                        "Votre mission « Tri des dons » est suspendue"]  # its validation was overtaken
    bodies = {m["Subject"]: m.get_content() for m in mail_sink.messages()}
    assert "Indiquez les horaires." in bodies["Votre mission « Collecte de printemps » est à modifier"]
    assert "Doublon d'une autre mission." in bodies["Votre mission « Tri des dons » est suspendue"]

    assert (await found(client, postal_code="69001"))["total"] == 1
    assert (await moderate(rhone, validated, "suspendre", "Signalements de bénévoles.")).status_code == 303
    assert await status_of(db, validated) == "suspended"
    assert (await found(client, postal_code="69001"))["total"] == 0
    async with AsyncTestClient(app=create_app(settings)) as public:
        assert (await public.get(path)).status_code == 404
        assert "Signalements de bénévoles." in (await rhone.get("/moderation/missions")).text
        assert (await moderate(rhone, validated, "retablir")).status_code == 303
        assert (await public.get(path)).status_code == 200
    assert (await found(client, postal_code="69001"))["total"] == 1
    run_worker(budget)
    subjects = [m["Subject"] for m in mail_sink.messages()]
    assert "Votre mission « Maraude du soir » est de nouveau en ligne" in subjects
    assert "Votre mission « Maraude du soir » est suspendue" not in subjects  # reinstated before it could leave


async def test_cancelling_or_finishing_a_mission_closes_its_applications_after_the_commit(
    client: AsyncTestClient, browser: Browser, redis: Redis, db: asyncpg.Connection
) -> None:
    admin = await browser()
    organisation_id = await validated_organisation(client, admin, redis, db, "lyon@example.org")
    cancelled = await online_mission(client, admin, organisation_id)
    finished = await online_mission(client, admin, organisation_id, title="Mission terminée")
    ended = await online_mission(client, admin, organisation_id, title="Mission passée")
    draft, _ = await create(client, organisation_id, title="Brouillon annulé")
    refused = await act(client, cancelled, "rouvrir")
    assert refused.status_code == 303 and refused.headers["location"].endswith("?refus=rouvrir")
    for mission_id, decision in ((cancelled, "annuler"), (finished, "terminer"), (draft, "annuler")):
        assert (await act(client, mission_id, decision)).status_code == 303
    await db.execute("UPDATE missions SET start_date = current_date - 9, end_date = current_date - 1 WHERE id = $1",
                     ended)
    assert await asyncio.to_thread(finish_past_missions) == 1  # the scheduled end, as the worker runs it
    connection = SyncRedis.from_url(REDIS_URL)
    try:
        closing = sorted(job.kwargs["mission_id"] for job in job_queue(connection).jobs
                         if job.func_name == "queues.mission_closing.close_mission_applications")
    finally:
        connection.close()
    assert closing == sorted([cancelled, finished, draft, ended])
