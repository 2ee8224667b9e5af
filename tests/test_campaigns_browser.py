"""Campaigns in a real headless Chromium against granian (every page shown is audited: no serious or critical
axe-core violation at 1280 and 390 px, nothing wider than the phone): an admin creates a campaign with its image
and sees the form's errors first, a manager tags a mission, a visitor finds it from the home page near a postal
code."""

from __future__ import annotations

import re
from datetime import date, timedelta

import asyncpg
from playwright.async_api import Browser, expect

from ops.services import MailSink
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in
from tests.test_campaigns import png
from tests.test_roles_admin import granted

ADMIN = "admin.campagnes@example.org"
MANAGER = "gestion.campagne@example.org"


async def seed(db: asyncpg.Connection) -> int:
    await db.execute("TRUNCATE campaigns, campaign_images RESTART IDENTITY CASCADE")
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", MANAGER)
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Bibliothèque solidaire', 'association', 'W691234567', '1 rue', '69003', '69123',"
        " 'Lecture pour tous.', 'validated') RETURNING id"
    )
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, 'Lire des contes aux enfants', 'Lectures en bibliothèque.',"
        " 'education-pour-tous', '{lecture}', false, current_date, 3, false, 'published') RETURNING id",
        organisation_id,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, '10 cours Lafayette', '69003', code, latitude, longitude FROM communes WHERE code = '69123'",
        mission_id,
    )
    return mission_id


async def test_an_admin_creates_a_campaign_a_manager_tags_a_mission_a_visitor_finds_it(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    mission_id = await seed(db)
    granted("--email", ADMIN, "--role", "admin")
    admin = await new_page(browser, web)
    await sign_in(admin, sink, ADMIN)
    await admin.goto("/administration/campagnes")
    await expect(admin.locator("#campagnes")).to_contain_text("Aucune campagne")
    await admin.get_by_role("link", name="Nouvelle campagne").click()
    await admin.get_by_label("Nom de la campagne").fill("Semaine de la lecture")
    await admin.get_by_role("button", name="Enregistrer").click()
    await expect(admin.locator("#resume-erreurs")).to_contain_text("Présentez la campagne")

    await admin.get_by_label("Texte de présentation").fill("Une semaine pour lire ensemble.\n\nVenez nombreux.")
    await admin.get_by_label("Date de début").fill((date.today() - timedelta(days=1)).isoformat())
    await admin.get_by_label("Date de fin").fill((date.today() + timedelta(days=6)).isoformat())
    await admin.locator("#image").set_input_files(files=[{"name": "affiche.png", "mimeType": "image/png",
                                                          "buffer": png(120, 80)}])
    await admin.get_by_label("Texte alternatif de l'image").fill("Un enfant lit un album")
    await admin.get_by_role("button", name="Enregistrer").click()
    await expect(admin.locator("#info")).to_have_text("Campagne enregistrée.")
    await admin.get_by_role("link", name="Modifier la campagne Semaine de la lecture").click()
    await expect(admin.get_by_role("img", name="Un enfant lit un album")).to_be_visible()

    manager = await new_page(browser, web)
    await sign_in(manager, sink, MANAGER)
    await manager.goto(f"/missions/{mission_id}-x")
    await manager.get_by_role("link", name="Campagnes nationales").click()
    await manager.get_by_label(re.compile("Semaine de la lecture")).check()
    await manager.get_by_role("button", name="Enregistrer").click()
    await expect(manager.locator("#info")).to_have_text("Campagnes de la mission enregistrées.")

    visitor = await new_page(browser, web)
    await visitor.goto("/")
    await visitor.get_by_role("link", name="Semaine de la lecture").click()
    await expect(visitor.locator("h1")).to_have_text("Semaine de la lecture")
    await expect(visitor.get_by_role("img", name="Un enfant lit un album")).to_be_visible()
    await visitor.get_by_label("Code postal").fill("69001")
    await visitor.get_by_role("button", name="Rechercher").click()
    await expect(visitor.locator("#resultats")).to_contain_text("Lire des contes aux enfants")
    await visitor.get_by_label("Code postal").fill("99999")
    await visitor.get_by_role("button", name="Rechercher").click()
    await expect(visitor.locator("#postal_code-error")).to_be_visible()
    await visitor.goto("/campagnes")
    await expect(visitor.locator("#campagnes")).to_contain_text("Semaine de la lecture")
    missing = await visitor.goto("/campagnes/inconnue")
    assert missing is not None and missing.status == 404
