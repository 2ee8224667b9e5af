"""The sign-in → apply → accept journey in a real headless Chromium, against the web process served by granian,
with the real worker and e-mails through a local SMTP sink: what a volunteer and an organisation manager see."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer

VOLUNTEER = "camille.journey@example.org"
MANAGER = "gestion.journey@example.org"
TITLE = "Collecte pour la banque alimentaire"


async def new_page(browser: Browser, web: WebServer) -> Page:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    return await context.new_page()


async def seed(db: asyncpg.Connection) -> int:
    """A validated organisation, its manager's account and a published mission; the volunteer's sign-up row."""
    await db.execute(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-journey', $1, $1,"
        " 'Camille', 'Lefort', DATE '1990-04-12', '69003', '69123', '{solidarite-insertion}', 'weekends', '{}',"
        " now(), now())", VOLUNTEER,
    )
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", MANAGER)
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Banque alimentaire du Rhône', 'association', 'W691234567', '1 rue', '69003', '69123',"
        " 'Aide alimentaire.', 'validated') RETURNING id"
    )
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Trier et ranger les dons en magasin.', 'solidarite-insertion',"
        " '{tri}', false, current_date, 3, false, 'published') RETURNING id", organisation_id, TITLE,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, '10 cours Lafayette', '69003', code, latitude, longitude FROM communes WHERE code = '69123'",
        mission_id,
    )
    return mission_id


async def sign_in(page: Page, sink: MailSink, email: str) -> None:
    await page.goto("/connexion")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_role("button", name="Recevoir un lien de connexion").click()
    await expect(page.get_by_text("vous allez recevoir un lien de connexion")).to_be_visible()
    run_worker({"SMTP_URL": sink.url})
    mails = [m for m in sink.messages() if m["To"] == email and m["Subject"] == "Votre lien de connexion à Renfort"]
    link = re.search(r"https?://\S+/connexion/lien\?jeton=\S+", mails[-1].get_content())
    assert link, "no sign-in link in the e-mail"
    await page.goto("/connexion/" + link[0].split("/connexion/", 1)[1])  # the server under test, not BASE_URL
    await page.get_by_role("button", name="Me connecter").click()
    await expect(page).to_have_url(re.compile(r"/mon-espace$"))


async def test_a_volunteer_signs_in_applies_and_is_accepted_by_the_manager(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    mission_id = await seed(db)
    volunteer = await new_page(browser, web)
    await sign_in(volunteer, sink, VOLUNTEER)

    await volunteer.goto(f"/missions/{mission_id}-x")
    await expect(volunteer.locator("#places")).to_have_text("3 place(s) restante(s) sur 3")
    await volunteer.get_by_label("Un mot pour la structure").fill("Disponible tous les samedis matin.")
    await volunteer.get_by_role("button", name="Je candidate").click()
    await expect(volunteer.locator("#resultat")).to_contain_text("Votre candidature est envoyée")
    run_worker({"SMTP_URL": sink.url})
    await volunteer.reload()
    row = volunteer.locator("#candidatures tr", has_text=TITLE)
    await expect(row.locator(".statut")).to_have_text("En attente de réponse")

    manager = await new_page(browser, web)
    await sign_in(manager, sink, MANAGER)
    await manager.goto(f"/missions/{mission_id}-x")
    await manager.get_by_role("link", name="Voir les candidatures").click()
    applicant = manager.locator("#candidats tr", has_text="Camille Lefort")
    await expect(applicant).to_contain_text("Disponible tous les samedis matin.")
    await applicant.get_by_role("checkbox").check()
    await manager.get_by_role("button", name="Accepter la sélection").click()
    await expect(manager.locator("#info")).to_contain_text("1 candidature(s) acceptée(s)")
    await expect(applicant.locator(".statut")).to_have_text("Acceptée")

    run_worker({"SMTP_URL": sink.url})
    await volunteer.reload()
    await expect(row.locator(".statut")).to_have_text("Acceptée")
    subjects = [m["Subject"] for m in sink.messages() if m["To"] == VOLUNTEER]
    assert f"Votre candidature à « {TITLE} » est envoyée" in subjects
    assert f"Votre candidature à « {TITLE} » est acceptée" in subjects
    assert await db.fetchval("SELECT status FROM applications WHERE mission_id = $1", mission_id) == "accepted"

