"""A volunteer's flows in a real headless Chromium, against the web process under granian, with the real worker and
e-mails through a local SMTP sink: signing in from a mission lands back on it, an application reads the same on
both pages before and after the worker saves it, cancelling asks first, search distances read the French way, and
a sign-up from an emergency page names the emergency, on the form and in the welcome e-mail."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_application_journey_browser import TITLE, VOLUNTEER, new_page
from tests.test_application_journey_browser import seed as seed_mission
from tests.test_signup_page_browser import fill_signup
from tests.test_volunteer_flows import COVID, live_emergency

LINK = re.compile(r"https?://\S+/connexion/lien\?jeton=\S+")


async def follow_link(page: Page, sink: MailSink, email: str) -> None:
    """The sign-in link of the latest e-mail to `email`, opened and confirmed (on the server under test)."""
    mails = [m for m in sink.messages() if m["To"] == email and m["Subject"] == "Votre lien de connexion à Renfort"]
    link = LINK.search(mails[-1].get_content())
    assert link, "no sign-in link in the e-mail"
    await page.goto("/connexion/" + link[0].split("/connexion/", 1)[1])
    await page.get_by_role("button", name="Me connecter").click()


async def test_signing_in_from_a_mission_then_applying_and_cancelling(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    page = await new_page(browser, web)
    await page.goto(f"/missions/{mission_id}-x")
    mission_url = page.url
    await expect(page.get_by_role("button", name="Je candidate")).to_have_count(0)
    await page.get_by_role("link", name="Se connecter pour candidater").click()
    await expect(page).to_have_url(re.compile(r"/connexion\?suite="))
    await page.get_by_label("Adresse e-mail").fill(VOLUNTEER)
    await page.get_by_role("button", name="Recevoir un lien de connexion").click()
    await expect(page.get_by_text("vous allez recevoir un lien de connexion")).to_be_visible()
    run_worker({"SMTP_URL": sink.url})
    await follow_link(page, sink, VOLUNTEER)
    await expect(page).to_have_url(mission_url)

    await page.get_by_role("button", name="Je candidate").click()
    await expect(page.locator("#resultat")).to_contain_text("Votre candidature est envoyée")
    row = page.locator("#candidatures tr", has_text=TITLE)
    await expect(row.locator(".statut")).to_have_text("Envoyée, en cours d'enregistrement")
    await expect(page.locator("#aucune")).to_have_count(0)
    await page.goto(mission_url)
    await expect(page.locator("#ma-candidature")).to_contain_text("Vous avez candidaté")
    await expect(page.locator("#ma-candidature")).to_contain_text("Envoyée, en cours d'enregistrement")
    await expect(page.get_by_role("button", name="Je candidate")).to_have_count(0)

    run_worker({"SMTP_URL": sink.url})
    await page.reload()
    await expect(page.locator("#ma-candidature")).to_contain_text("En attente de réponse")
    await page.get_by_role("link", name="Voir mes candidatures").click()
    await expect(row.locator(".statut")).to_have_text("En attente de réponse")
    assert await db.fetchval("SELECT count(*) FROM applications WHERE mission_id = $1", mission_id) == 1

    await row.get_by_role("link", name=re.compile("Annuler ma candidature")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Voulez-vous vraiment annuler votre candidature à « {TITLE} » ?")
    confirm = page.get_by_role("button", name="Oui, annuler ma candidature")
    await expect(confirm).to_have_class(re.compile(r"\bbutton--danger\b"))
    await page.get_by_role("link", name="Non, garder ma candidature").click()
    await expect(row.locator(".statut")).to_have_text("En attente de réponse")  # nothing cancelled on the way
    await row.get_by_role("link", name=re.compile("Annuler ma candidature")).click()
    await page.get_by_role("button", name="Oui, annuler ma candidature").click()
    await expect(page.locator("#resultat")).to_contain_text("Votre candidature est annulée")
    await expect(row.locator(".statut")).to_have_text("Annulée")
    await page.goto(mission_url)
    await expect(page.get_by_role("button", name="Je candidate")).to_be_visible()  # one may apply again


async def test_a_nearby_mission_reads_at_0_8_km(browser: Browser, web: WebServer, db: asyncpg.Connection) -> None:
    mission_id = await seed_mission(db)
    # 0.8 km north of Lyon's town hall, the point a search by 69003 starts from (its most populous commune).
    await db.execute(
        "UPDATE mission_addresses SET latitude = c.latitude + 0.8 / 111.195, longitude = c.longitude"
        " FROM communes c WHERE c.code = '69123' AND mission_id = $1", mission_id,
    )
    page = await new_page(browser, web)
    await page.goto("/missions?postal_code=69003&radius_km=10")
    card = page.locator(".mission-card", has_text=TITLE)
    await expect(card.locator(".distance")).to_have_text("à 0,8 km")
    await expect(card).to_contain_text(re.compile(r"Le \d{2}/\d{2}/\d{4}"))


async def test_a_signup_from_an_emergency_page_names_it_and_so_does_the_welcome_email(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    await live_emergency(db)
    page = await new_page(browser, web)
    await page.goto("/inscription?urgence=covid-19")
    await expect(page.locator("#urgence")).to_contain_text(f"Vous vous inscrivez pour l'urgence « {COVID} »")
    await fill_signup(page, email="lea.urgence@example.org", postal_code="69003", consent=True)
    await page.get_by_role("button", name="M'inscrire").click()
    await expect(page).to_have_url(re.compile(r"/inscription/merci"))
    run_worker({"SMTP_URL": sink.url})
    [welcome] = [m for m in sink.messages() if m["To"] == "lea.urgence@example.org"]
    assert f"en réponse à l'urgence « {COVID} »" in welcome.get_content()
    assert await db.fetchval("SELECT emergency_slug FROM volunteers WHERE email = 'lea.urgence@example.org'") \
        == "covid-19"

    await page.goto("/inscription?urgence=nulle-part")
    await expect(page.locator("#urgence")).to_contain_text("Nous ne trouvons pas l'urgence")
