"""A newcomer's journey through the everyday public service, in a real headless Chromium against the web process
under granian, with the real worker and e-mails through a local SMTP sink: a visitor finds a mission by keyword on
the second page of results, opens a national campaign from the home page, signs up accepting the terms in force,
then signs in and downloads their data. Every page on the way is audited by the browser fixtures
(tests/browser.py)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import asyncpg
from playwright.async_api import Browser, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_signup_page_browser import fill_signup
from tests.test_volunteer_flows_browser import follow_link

EMAIL = "noa.parcours@example.org"
MISSIONS = 25  # one more page than the 20 a page shows
CAMPAIGN = "Collecte nationale des banques alimentaires"


async def seed(db: asyncpg.Connection) -> None:
    """A validated organisation in Lyon with MISSIONS bicycle-repair missions (and one about something else), and
    a campaign running today for the solidarity domain."""
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Atelier solidaire du Rhône', 'association', 'W691234568', '1 rue', '69003', '69123',"
        " 'Réparations et dons.', 'validated') RETURNING id"
    )
    for number in range(1, MISSIONS + 1):
        await db.execute(
            "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date,"
            " places, open_to_minors, status) VALUES ($1, $2, 'Remettre en état des vélos donnés.',"
            " 'solidarite-insertion', '{}', false, current_date + $3::int, 3, false, 'published')",
            organisation_id, f"Réparation de vélos n°{number}", number,
        )
    await db.execute(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, 'Tri de colis alimentaires', 'Trier les dons.', 'solidarite-insertion',"
        " '{}', false, current_date, 3, false, 'published')", organisation_id,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT m.id, '10 cours Lafayette', '69003', c.code, c.latitude, c.longitude FROM missions m, communes c"
        " WHERE c.code = '69123'"
    )
    await db.execute(
        "INSERT INTO campaigns (slug, name, text, starts_on, ends_on, domains) VALUES ('collecte-nationale', $1,"
        " 'Deux jours pour remplir les rayons des banques alimentaires.', current_date - 1, current_date + 1,"
        " '{solidarite-insertion}')", CAMPAIGN,
    )


async def test_keyword_page_two_then_a_campaign_then_signing_up_on_the_current_terms_then_my_data(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    await seed(db)
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", accept_downloads=True,
                                        viewport={"width": 390, "height": 844})
    context.set_default_timeout(20_000)
    page = await context.new_page()

    await page.goto("/missions")
    await page.get_by_label("Mots-clés").fill("velo")  # no accent, singular: finds « vélos »
    await page.get_by_role("button", name="Rechercher").click()
    await expect(page.locator(".mission-card")).to_have_count(20)
    await expect(page.locator(".mission-card", has_text="Tri de colis")).to_have_count(0)
    pagination = page.get_by_role("navigation", name="Pagination")
    await pagination.get_by_role("link", name="Suivante").click()
    await expect(page).to_have_url(re.compile(r"keywords=velo.*page=2|page=2.*keywords=velo"))
    await expect(page.locator(".mission-card")).to_have_count(MISSIONS - 20)
    await expect(pagination.locator("[aria-current=page]")).to_have_text("Page 2")
    await page.locator(".mission-card", has_text=f"Réparation de vélos n°{MISSIONS}").get_by_role("link").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Réparation de vélos n°{MISSIONS}")

    await page.goto("/")
    await page.get_by_role("link", name=CAMPAIGN).first.click()
    await expect(page).to_have_url(re.compile(r"/campagnes/collecte-nationale"))
    await expect(page.get_by_role("heading", level=1)).to_have_text(CAMPAIGN)
    await expect(page.locator(".mission-card", has_text="Tri de colis alimentaires")).to_have_count(1)

    terms_version = await db.fetchval("SELECT max(version) FROM legal_texts WHERE kind = 'terms'")
    await page.goto("/inscription")
    await expect(page.get_by_role("link", name=re.compile("conditions d'utilisation"))).to_have_attribute(
        "href", "/conditions-utilisation")
    await fill_signup(page, email=EMAIL, postal_code="69003", consent=True)
    await page.get_by_role("button", name="M'inscrire").click()
    await expect(page).to_have_url(re.compile(r"/inscription/merci"))
    run_worker({"SMTP_URL": sink.url})
    assert await db.fetchval("SELECT terms_version FROM volunteers WHERE email = $1", EMAIL) == terms_version

    await page.goto("/connexion")
    await page.get_by_label("Adresse e-mail").fill(EMAIL)
    await page.get_by_role("button", name="Recevoir un lien de connexion").click()
    await expect(page.get_by_text("vous allez recevoir un lien de connexion")).to_be_visible()
    run_worker({"SMTP_URL": sink.url})
    await follow_link(page, sink, EMAIL)
    await expect(page).to_have_url(re.compile(r"/mon-espace$"))  # the current terms: nothing more to accept

    await page.get_by_role("link", name="Télécharger mes données").click()
    await page.get_by_role("button", name="Demander mon fichier").click()
    await expect(page.locator("#attente")).to_contain_text("en préparation")
    run_worker()
    link = page.get_by_role("link", name="Télécharger mon fichier")
    await expect(link).to_be_visible()
    async with page.expect_download() as started:
        await link.click()
    download = await started.value
    data = json.loads(await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8"))
    assert data["benevole"]["email"] == EMAIL
    assert data["benevole"]["terms_version"] == terms_version
    await context.close()
