"""MIG offers: a manager opens a mission to the SNU (department from its first address, else its organisation's),
within the mission's places and with a tutor among the organisation's managers; hostile input gets a French 4xx;
editing a decided offer sends it back to validation; referents decide only in their departments, and the tutor
hears of the decision by e-mail."""

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.volunteers.age import today
from ops.services import MailSink
from tests.conftest import run_worker
from tests.test_organisations import post_form, sign_in
from tests.test_youth_accounts import job_payloads, to
from tests.test_youth_cohorts import browsers, no_cohorts

FIXTURES = (browsers, no_cohorts)
REFERENT = "/snu/referent/offres"
START, END = today() + timedelta(days=30), today() + timedelta(days=60)


def page_of(response: Any) -> str:
    """The page's text as a person reads it (Jinja escapes the apostrophes)."""
    return html.unescape(response.text)


async def a_mission(db: asyncpg.Connection, *, places: int = 10, commune: str | None = None,
                    title: str = "Aide alimentaire du quartier") -> tuple[int, int]:
    """A published mission of an organisation in Lyon (69); `commune`: the mission's own address. (org, mission)"""
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Les Restos du Rhône', 'association', '1 rue', '69001', '69123', 'Aide.', 'validated') RETURNING id")
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, priority, status) VALUES ($1, $2, 'Distribuer des repas.', 'solidarite-insertion', '{}',"
        " false, $3, true, false, 'published') RETURNING id", organisation_id, title, places)
    if commune is not None:
        await db.execute("INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude,"
                         " longitude) VALUES ($1, '2 quai', '13001', $2, 43.3, 5.37)", mission_id, commune)
    return organisation_id, mission_id


async def manager_of(browser: AsyncTestClient, redis: Redis, db: asyncpg.Connection, organisation_id: int,
                     email: str = "gestion@example.org") -> int:
    """Made a manager before signing in, so the session's roles already say so (as for a real manager)."""
    user_id: int = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", email)
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    assert await sign_in(browser, redis, db, email) == user_id
    return user_id


def offer_form(tutor: int, **overrides: Any) -> dict[str, Any]:
    form = {"places": "4", "start_date": START.isoformat(), "end_date": END.isoformat(), "hours": "",
            "tutor_user_id": str(tutor)}
    form.update(overrides)
    return form


async def open_offer(browser: AsyncTestClient, mission_id: int, form: dict[str, Any]) -> Any:
    return await post_form(browser, f"/missions/{mission_id}/snu", form, f"/missions/{mission_id}/snu")


async def offer_row(db: asyncpg.Connection, mission_id: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow("SELECT * FROM youth_offers WHERE mission_id = $1", mission_id)
    return row


async def test_a_manager_opens_a_mission_to_the_snu_in_its_department(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, marseille = await a_mission(db, commune="13055")
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    mission_page = await manager.get(f"/missions/{marseille}")
    assert f'href="/missions/{marseille}/snu"' in page_of(mission_page) and "Offre SNU" in page_of(mission_page)
    form = await manager.get(f"/missions/{marseille}/snu")
    assert form.status_code == 200 and "Ouvrir aux jeunes du SNU" in page_of(form)
    assert f'<option value="{tutor}"' in page_of(form) and "gestion@example.org" in page_of(form)

    saved = await open_offer(manager, marseille, offer_form(tutor))
    assert saved.status_code == 303 and saved.headers["location"] == f"/missions/{marseille}/snu?fait=enregistree"
    row = await offer_row(db, marseille)
    assert row is not None
    assert (row["status"], row["source"], row["department_code"], row["places"], row["hours"]) == (
        "awaiting_validation", "organisation", "13", 4, 84)
    assert (row["start_date"], row["end_date"], row["tutor_user_id"], row["tutor_email"]) == (
        START, END, tutor, "gestion@example.org")
    page = await manager.get(saved.headers["location"])
    assert "En attente de validation" in page_of(page) and "attend la validation" in page_of(page)

    # Without an address of its own, a mission belongs to its organisation's department.
    await db.execute("INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
                     " open_to_minors, priority, status) SELECT organisation_id, 'À distance', description, domain,"
                     " activities, true, 5, true, false, 'draft' FROM missions WHERE id = $1", marseille)
    remote = await db.fetchval("SELECT id FROM missions WHERE title = 'À distance'")
    assert (await open_offer(manager, remote, offer_form(tutor, hours="120"))).status_code == 303
    row = await offer_row(db, remote)
    assert row is not None and (row["department_code"], row["hours"]) == ("69", 120)


async def test_places_dates_hours_and_tutor_are_checked_with_french_messages(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, mission_id = await a_mission(db, places=3)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    stranger = await sign_in(await browsers(), redis, db, "pas.gestionnaire@example.org")
    cases = [
        ({"places": "4"}, "places", "La mission elle-même compte 3 place(s)"),
        ({"places": "0"}, "places", "nombre entier de 1 à 3"),
        ({"places": "trois"}, "places", "nombre entier"),
        ({"places": "\x00"}, "places", "caractère non autorisé"),
        ({"hours": "2001"}, "hours", "de 84 à 2000"),
        ({"hours": "30"}, "hours", "de 84 à 2000"),  # fewer than a MIG's 84 hours could never be completed
        ({"hours": "8" * 5_000}, "hours", "ne doit pas dépasser"),
        ({"start_date": "x" * 5_000}, "start_date", "ne doit pas dépasser"),
        ({"start_date": "31/02/2030"}, "start_date", "n'est pas une date valide"),
        ({"start_date": (today() - timedelta(days=1)).isoformat()}, "start_date", "déjà passée"),
        ({"end_date": (START - timedelta(days=1)).isoformat()}, "end_date", "précède la date de début"),
        ({"end_date": (START + timedelta(days=400)).isoformat()}, "end_date", "plus d'un an"),
        ({"tutor_user_id": str(stranger)}, "tutor_user_id", "parmi les gestionnaires de la structure"),
        ({"tutor_user_id": "9" * 30}, "tutor_user_id", "ne doit pas dépasser"),
        ({"tutor_user_id": "999999999"}, "tutor_user_id", "parmi les gestionnaires"),
        ({"tutor_user_id": "1\x00"}, "tutor_user_id", "caractère non autorisé"),
    ]
    for overrides, field, message in cases:
        response = await open_offer(manager, mission_id, offer_form(tutor, **overrides))
        assert response.status_code == 422, (overrides, response.status_code)
        assert f'id="{field}-error"' in page_of(response) and message in page_of(response), (overrides, field)
    assert await offer_row(db, mission_id) is None
    assert (await open_offer(manager, mission_id, offer_form(tutor, places="3"))).status_code == 303


async def test_only_the_missions_managers_open_see_or_withdraw_its_offer(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, mission_id = await a_mission(db)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    assert (await open_offer(manager, mission_id, offer_form(tutor))).status_code == 303
    anonymous = await browsers()
    assert (await anonymous.get(f"/missions/{mission_id}/snu", follow_redirects=False)).status_code in (302, 303)
    other = await browsers()
    other_id = await manager_of(other, redis, db, (await a_mission(db, title="Autre mission"))[0], "autre@example.org")
    shown = await other.get(f"/missions/{mission_id}/snu")
    assert shown.status_code == 403
    for path, form in ((f"/missions/{mission_id}/snu", offer_form(other_id, places="9")),
                       (f"/missions/{mission_id}/snu/retirer", {})):
        refused = await post_form(other, path, form)
        assert refused.status_code == 403, path
    row = await offer_row(db, mission_id)
    assert row is not None and (row["places"], row["status"]) == (4, "awaiting_validation")
    assert (await manager.get("/missions/999999999/snu")).status_code == 404
    assert (await manager.get(f"/missions/{'9' * 30}/snu")).status_code in (400, 404)
    assert (await post_form(manager, f"/missions/{mission_id}/snu/effacer", {})).status_code == 404


async def test_editing_a_decided_offer_sends_it_back_and_withdrawing_then_reopening_works(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, mission_id = await a_mission(db)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    await open_offer(manager, mission_id, offer_form(tutor))
    await db.execute("UPDATE youth_offers SET status = 'validated', decided_at = now()")
    edit = await manager.get(f"/missions/{mission_id}/snu/modifier")
    assert 'value="4"' in page_of(edit) and "retourne en validation" in page_of(edit)
    saved = await open_offer(manager, mission_id, offer_form(tutor, places="6"))
    assert saved.headers["location"].endswith("fait=relecture")
    assert "n'est plus validée et attend à nouveau" in page_of(await manager.get(saved.headers["location"]))
    row = await offer_row(db, mission_id)
    assert row is not None and (row["status"], row["places"], row["decided_at"]) == ("awaiting_validation", 6, None)

    path = f"/missions/{mission_id}/snu"
    withdrawn = await post_form(manager, f"{path}/retirer", {}, path)
    assert withdrawn.status_code == 303 and await db.fetchval("SELECT status FROM youth_offers") == "withdrawn"
    again = await post_form(manager, f"{path}/retirer", {}, path)
    assert again.status_code == 303 and "déjà retirée" in page_of(await manager.get(again.headers["location"]))
    reopened = await post_form(manager, f"{path}/rouvrir", {}, path)
    assert reopened.status_code == 303 and await db.fetchval("SELECT status FROM youth_offers") == "awaiting_validation"


async def test_a_referent_decides_only_in_their_departments(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, marseille = await a_mission(db, commune="13055", title="Maraude à Marseille")
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    await open_offer(manager, marseille, offer_form(tutor))
    offer_id = await db.fetchval("SELECT id FROM youth_offers")
    lyon = await browsers()
    await sign_in(lyon, redis, db, "ref69@example.org", referent_of=("69",))
    listing = await lyon.get(REFERENT)
    assert listing.status_code == 200 and "Aucune offre" in page_of(listing)
    assert "Maraude à Marseille" not in page_of(listing)
    for decision, form in (("valider", {}), ("refuser", {"reason": "Non."}), ("refuser", {})):
        response = await post_form(lyon, f"{REFERENT}/{offer_id}/{decision}", form, REFERENT)
        assert response.status_code == 404 and "pas référent·e" in page_of(response), decision
    assert (await post_form(lyon, f"{REFERENT}/999999999/valider", {}, REFERENT)).status_code == 404
    assert await db.fetchval("SELECT status FROM youth_offers") == "awaiting_validation"
    plain = await browsers()
    await sign_in(plain, redis, db, "plain@example.org")
    assert (await plain.get(REFERENT)).status_code == 403
    national = await browsers()
    await sign_in(national, redis, db, "national@example.org", departments=(None,))
    assert "Maraude à Marseille" in page_of(await national.get(REFERENT))


async def test_validating_and_refusing_reach_the_tutor_by_mail(
        browsers: Any, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink) -> None:
    organisation_id, first = await a_mission(db, commune="13055", title="Maraude à Marseille")
    second = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
        " open_to_minors, priority, status) VALUES ($1, 'Jardin du Prado', 'Jardiner.', 'environnement', '{}',"
        " false, 5, true, false, 'published') RETURNING id", organisation_id)
    await db.execute("INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude,"
                     " longitude) VALUES ($1, '2 quai', '13008', '13055', 43.3, 5.37)", second)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id, "tuteur@example.org")
    for mission_id in (first, second):
        assert (await open_offer(manager, mission_id, offer_form(tutor))).status_code == 303
    ids = {row["mission_id"]: row["id"] for row in await db.fetch("SELECT id, mission_id FROM youth_offers")}
    referent = await browsers()
    referent_id = await sign_in(referent, redis, db, "ref13@example.org", referent_of=("13",))
    listing = await referent.get(REFERENT)
    assert "Maraude à Marseille" in page_of(listing) and "Jardin du Prado" in page_of(listing)
    assert "Les Restos du Rhône" in page_of(listing) and "tuteur@example.org" in page_of(listing)

    validated = await post_form(referent, f"{REFERENT}/{ids[first]}/valider", {}, REFERENT)
    assert validated.status_code == 303 and "fait=validee" in validated.headers["location"]
    twice = await post_form(referent, f"{REFERENT}/{ids[first]}/valider", {}, REFERENT)
    assert twice.status_code == 409 and "n'attend plus de validation" in page_of(twice)
    for reason, message in (("", "Indiquez le motif"), ("x" * 2_001, "ne doit pas dépasser"),
                            ("Motif\x00", "caractère non autorisé")):
        refused = await post_form(referent, f"{REFERENT}/{ids[second]}/refuser", {"reason": reason}, REFERENT)
        assert refused.status_code == 422 and message in page_of(refused), reason
    reason = "Les horaires ne conviennent pas à des mineurs : proposez des créneaux en journée."
    refused = await post_form(referent, f"{REFERENT}/{ids[second]}/refuser", {"reason": reason}, REFERENT)
    assert refused.status_code == 303 and "fait=refusee" in refused.headers["location"]
    rows = {row["id"]: row for row in await db.fetch("SELECT * FROM youth_offers")}
    assert (rows[ids[first]]["status"], rows[ids[first]]["decided_by"]) == ("validated", referent_id)
    assert (rows[ids[second]]["status"], rows[ids[second]]["status_reason"]) == ("refused", reason)
    assert rows[ids[second]]["decided_at"] is not None
    page = await manager.get(f"/missions/{second}/snu")
    assert "Refusée" in page_of(page) and "Les horaires ne conviennent pas" in page_of(page)

    payloads = [payload for payload in await job_payloads(redis) if "youth_offers" in payload]
    assert len(payloads) == 2 and all("@" not in payload for payload in payloads), payloads
    run_worker({"SMTP_URL": mail_sink.url})
    mails = {mail["Subject"]: mail.get_content() for mail in to(mail_sink, "tuteur@example.org")}
    assert set(mails) == {"Votre offre SNU « Maraude à Marseille » est validée",
                          "Votre offre SNU « Jardin du Prado » n'est pas validée"}
    assert "Les horaires ne conviennent pas" in mails["Votre offre SNU « Jardin du Prado » n'est pas validée"]
    assert f"/missions/{first}/snu" in mails["Votre offre SNU « Maraude à Marseille » est validée"]


async def test_the_offer_forms_refuse_a_post_without_its_csrf_token(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, mission_id = await a_mission(db)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id, "gestion@example.org")
    await manager.get(f"/missions/{mission_id}/snu")  # the CSRF cookie is set: only the form's token is missing
    for path in (f"/missions/{mission_id}/snu", f"/missions/{mission_id}/snu/retirer", f"{REFERENT}/1/valider",
                 f"{REFERENT}/1/refuser"):
        response = await manager.post(path, data=offer_form(tutor), follow_redirects=False)
        assert response.status_code == 403, path
    assert await offer_row(db, mission_id) is None


async def test_an_offer_with_young_people_placed_keeps_its_dates_and_cannot_be_withdrawn(
        browsers: Any, redis: Redis, db: asyncpg.Connection) -> None:
    organisation_id, mission_id = await a_mission(db)
    manager = await browsers()
    tutor = await manager_of(manager, redis, db, organisation_id)
    await open_offer(manager, mission_id, offer_form(tutor))
    offer_id = await db.fetchval("UPDATE youth_offers SET status = 'validated' RETURNING id")
    cohort_id = await db.fetchval(
        "INSERT INTO cohorts (name, stay_start, stay_end, missions_start, missions_end) VALUES ('C', current_date,"
        " current_date, current_date, current_date + 300) RETURNING id")
    for number in range(2):
        user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                    f"jeune{number}@example.org")
        young_id = await db.fetchval(
            "INSERT INTO young_people (user_id, cohort_id, first_name, last_name, birth_date, department_code,"
            " postal_code, commune_code, status, source) VALUES ($1, $2, 'Jo', 'Placé', '2008-01-01', '69', '69003',"
            " '69123', 'ready', 'signup') RETURNING id", user_id, cohort_id)
        await db.execute("INSERT INTO youth_placements (young_person_id, offer_id) VALUES ($1, $2)", young_id, offer_id)
    path = f"/missions/{mission_id}/snu"
    fewer = await open_offer(manager, mission_id, offer_form(tutor, places="1"))
    assert fewer.status_code == 409 and "2 jeune(s) sont déjà affecté·es" in page_of(fewer)
    moved = await open_offer(manager, mission_id, offer_form(tutor, end_date=(END + timedelta(days=1)).isoformat()))
    assert moved.status_code == 409
    refused = await post_form(manager, f"{path}/retirer", {}, path)
    assert refused.status_code == 409 and "ne peut plus être retirée" in page_of(refused)
    row = await offer_row(db, mission_id)
    assert row is not None and (row["status"], row["places"], row["end_date"]) == ("validated", 4, END)
    # More places, same dates: allowed (and sent back to the referent).
    assert (await open_offer(manager, mission_id, offer_form(tutor, places="3"))).status_code == 303
