"""The surge journey in a real headless Chromium against granian, with real workers and e-mails through a local SMTP
sink: a coordinator launches an emergency, a citizen signs up from its page, the coordinator dispatches, the
volunteer confirms from the e-mailed link."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in
from tests.test_signup_page_browser import fill_signup, submit

COORDINATOR = "coordination.journey@example.org"
CITIZEN = "sacha.journey@example.org"
MISSION = "Porter de l'eau aux personnes âgées"


async def seed(db: asyncpg.Connection) -> int:
    """A national coordinator, and a published mission in Lyon of a validated organisation."""
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                COORDINATOR)
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, NULL)", user_id)
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Entraide du Rhône', 'association', 'W691234567', '8 rue Servient', '69003', '69123',"
        " 'Aide aux personnes isolées.', 'validated') RETURNING id"
    )
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Livrer de l''eau et prendre des nouvelles.',"
        " 'solidarite-insertion', '{}', false, current_date, 2, false, 'published') RETURNING id",
        organisation_id, MISSION,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, '8 rue Servient', '69003', code, latitude, longitude FROM communes WHERE code = '69123'",
        mission_id,
    )
    return mission_id


async def launch(coordinator: Page, mission_id: int) -> None:
    await coordinator.goto("/coordination/urgences/nouvelle")
    await coordinator.get_by_role("textbox", name=re.compile("^Titre")).fill("Canicule dans le Rhône")
    await coordinator.get_by_role("textbox", name=re.compile("^Adresse de la page")).fill("canicule-rhone")
    await coordinator.get_by_label("La situation").fill("Une vague de chaleur frappe le Rhône depuis dix jours.")
    await coordinator.get_by_label("Les besoins").fill("Visiter et ravitailler les personnes âgées isolées.")
    await coordinator.get_by_label("Départements concernés").fill("69")
    await coordinator.get_by_label("Solidarité et insertion").check()
    await coordinator.get_by_role("button", name="Créer le brouillon").click()
    await expect(coordinator.locator("#statut")).to_contain_text("Brouillon")
    await coordinator.get_by_label("Rechercher une mission en ligne de l'urgence").fill("eau 69003")
    await coordinator.get_by_role("button", name="Rechercher").click()
    await coordinator.locator(f'#resultats [data-mission="{mission_id}"]').get_by_role("button", name="Ajouter").click()
    await expect(coordinator.locator("#missions")).to_contain_text(MISSION)
    await coordinator.get_by_role("button", name="Mettre en ligne").click()
    await expect(coordinator.locator("#statut")).to_contain_text("En ligne")


async def test_launch_an_emergency_sign_up_from_it_dispatch_and_confirm(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    mission_id = await seed(db)
    coordinator = await new_page(browser, web)
    await sign_in(coordinator, sink, COORDINATOR)
    await launch(coordinator, mission_id)

    # A citizen finds it on the home page and signs up from its page.
    citizen = await new_page(browser, web)
    await citizen.goto("/")
    await citizen.get_by_role("link", name="Je veux aider").click()
    await expect(citizen.locator("h1")).to_have_text("Canicule dans le Rhône")
    await expect(citizen.locator("#missions")).to_contain_text(MISSION)
    await citizen.get_by_role("link", name="Je m'inscris pour aider").click()
    await fill_signup(citizen, email=CITIZEN, postal_code="69003", consent=True)
    assert await submit(citizen) == 200
    await expect(citizen.get_by_text("Merci, votre inscription est bien reçue !")).to_be_visible()
    run_worker({"SMTP_URL": sink.url})
    assert await db.fetchval("SELECT emergency_slug FROM volunteers WHERE email_normalized = $1",
                             CITIZEN) == "canicule-rhone"

    # The coordinator dispatches the emergency's volunteers, previews, then commits.
    await coordinator.goto("/coordination/urgences/canicule-rhone/mobilisation")
    await coordinator.get_by_label("Les bénévoles inscrits via la page de l'urgence").check()
    await coordinator.get_by_role("button", name="Calculer le plan").click()
    run_worker({"SMTP_URL": sink.url})  # the planning job
    await coordinator.reload()
    await expect(coordinator.locator("#par-mission")).to_contain_text(MISSION)
    await coordinator.get_by_role("button", name=re.compile(r"Envoyer les 1 propositions")).click()
    run_worker({"SMTP_URL": sink.url})  # the commit job, the drain, the e-mails
    await coordinator.reload()
    await expect(coordinator.locator("#proposees")).to_contain_text("1 proposition(s) envoyée(s)")

    # The volunteer confirms from the e-mail.
    proposals = [m for m in sink.messages() if m["To"] == CITIZEN and m["Subject"].startswith("Une mission vous est")]
    assert len(proposals) == 1
    link = re.search(r"https?://\S+(/mobilisation/confirmer\?jeton=\S+)", proposals[0].get_content())
    assert link, "no confirmation link in the e-mail"
    await citizen.goto(link[1])
    await citizen.get_by_role("button", name="Je confirme, je serai là").click()
    await expect(citizen.locator("#resultat")).to_contain_text("La structure vous contactera")
    run_worker({"SMTP_URL": sink.url})
    status = await db.fetchval(
        "SELECT a.status FROM applications a JOIN volunteers v ON v.id = a.volunteer_id"
        " WHERE v.email_normalized = $1 AND a.mission_id = $2", CITIZEN, mission_id,
    )
    assert status == "accepted"
    # The link works once.
    await citizen.goto(link[1])
    await citizen.get_by_role("button", name="Je confirme, je serai là").click()
    await expect(citizen.locator("body")).to_contain_text("Vous avez déjà répondu à cette proposition")
