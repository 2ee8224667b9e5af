"""The sign-up page `/inscription` in a real headless Chromium, against the web process served by granian.

What a citizen sees: French errors that name the problem and keep what was typed, a commune choice for shared
postal codes, a honeypot nobody can see, and a corrected form that lands in PostgreSQL exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser import SCREENSHOTS
from tests.conftest import run_worker
from tests.servers import WebServer

CONSENT_MESSAGE = "Vous devez accepter que vos données servent à vous proposer des missions pour vous inscrire."
_numbers = itertools.count(1)


@pytest.fixture
async def page(browser: Browser, web: WebServer) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield await context.new_page()
    await context.close()


def unique_email() -> str:
    return f"camille.lefort.{os.getpid()}.{next(_numbers)}@example.org"


async def fill_signup(page: Page, *, email: str, postal_code: str, consent: bool) -> None:
    await page.get_by_label("Prénom").fill("Camille")
    await page.get_by_label("Nom", exact=True).fill("Lefort")
    await page.get_by_label("Adresse e-mail").fill(email)
    await page.get_by_label("Date de naissance").fill("1990-04-12")
    await page.get_by_label("Code postal").fill(postal_code)
    await page.get_by_label("Solidarité et insertion").check()
    await page.get_by_label("Le week-end").check()
    if consent:
        await page.locator("#consent").check()


async def submit(page: Page) -> int:
    """Clicks the submit button; returns the status of the page the browser lands on (after redirects)."""
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name="M'inscrire").click()
    response = await navigation.value
    assert response is not None
    return response.status


async def test_signup_form_shows_french_errors_and_keeps_values(page: Page) -> None:
    email = unique_email()
    await page.goto("/inscription")
    await fill_signup(page, email=email, postal_code="69003", consent=False)

    assert await submit(page) == 422

    summary = page.get_by_role("alert")
    await expect(summary).to_be_visible()
    await expect(summary).to_contain_text("1 information(s) à corriger")
    await expect(summary.get_by_role("link", name=CONSENT_MESSAGE)).to_have_attribute("href", "#consent")
    await expect(page.locator("#consent-error")).to_be_visible()
    await expect(page.locator("#consent-error")).to_have_text(CONSENT_MESSAGE)
    await expect(page.locator("#consent")).to_have_attribute("aria-describedby", "consent-error")
    await expect(page.locator("#consent")).not_to_be_checked()
    # The summary takes the focus, so a screen reader announces the problems first.
    assert await page.evaluate("document.activeElement && document.activeElement.id") == "resume-erreurs"
    await expect(page.get_by_label("Prénom")).to_have_value("Camille")
    await expect(page.get_by_label("Nom", exact=True)).to_have_value("Lefort")
    await expect(page.get_by_label("Adresse e-mail")).to_have_value(email)
    await expect(page.get_by_label("Date de naissance")).to_have_value("1990-04-12")
    await expect(page.get_by_label("Code postal")).to_have_value("69003")
    await expect(page.get_by_label("Solidarité et insertion")).to_be_checked()
    await expect(page.get_by_label("Le week-end")).to_be_checked()
    await page.screenshot(path=SCREENSHOTS / "renfort-inscription-erreurs.png", full_page=True)


async def test_shared_postal_code_asks_to_choose_the_commune(page: Page) -> None:
    await page.goto("/inscription")
    await fill_signup(page, email=unique_email(), postal_code="51300", consent=True)
    # Typing the postal code already offers the communes (progressive enhancement through /api/v1/communes)…
    await expect(page.locator("select#commune_code")).to_contain_text("Vitry-le-François")

    assert await submit(page) == 422

    # …and without JavaScript the server says the same, in French, with the real communes of 51300.
    message = "Plusieurs communes ont ce code postal : choisissez la vôtre."
    await expect(page.get_by_role("alert")).to_contain_text(message)
    await expect(page.locator("#commune_code-error")).to_have_text(message)
    choice = page.get_by_label("Commune", exact=True)
    await expect(choice).to_be_visible()
    names = await choice.locator("option").all_inner_texts()
    assert names[0] == "Choisissez votre commune"
    assert "Vitry-le-François" in names
    assert len(names) > 3


async def test_corrected_form_is_saved_exactly_once(page: Page, db: asyncpg.Connection) -> None:
    email = unique_email()
    await page.goto("/inscription")
    await fill_signup(page, email=email, postal_code="69003", consent=False)
    assert await submit(page) == 422

    await page.locator("#consent").check()
    await page.get_by_label("Code postal").fill("69100")
    assert await submit(page) == 200

    await expect(page).to_have_url(re.compile(r"/inscription/merci\?recu=[\w-]+$"))
    await expect(page.get_by_role("status")).to_contain_text("Merci, votre inscription est bien reçue !")
    await expect(page.locator("#recu")).not_to_be_empty()

    await asyncio.to_thread(run_worker)

    rows = await db.fetch(
        "SELECT first_name, last_name, postal_code, commune_code FROM volunteers WHERE email_normalized = $1", email
    )
    assert [tuple(row) for row in rows] == [("Camille", "Lefort", "69100", "69266")]  # 69266: Villeurbanne


async def test_honeypot_field_is_hidden_from_people(page: Page) -> None:
    await page.goto("/inscription")
    honeypot = page.locator("input[name='website']")
    await expect(honeypot).to_have_count(1)
    await expect(honeypot).to_be_hidden()
    await expect(page.get_by_text("Ne remplissez pas ce champ")).to_be_hidden()
    await page.screenshot(path=SCREENSHOTS / "renfort-inscription-formulaire.png", full_page=True)


async def test_signup_page_is_styled_with_the_renfort_theme(page: Page, web: WebServer) -> None:
    """The page is styled by our theme on Pico CSS (both served by the app, no CDN), not the browser's bare form."""
    for stylesheet in ("/static/vendor/pico.min.css", "/static/renfort.css"):
        assert (await page.request.get(web.base_url + stylesheet)).status == 200
    await page.goto("/inscription")
    hrefs = await page.locator("link[rel=stylesheet]").evaluate_all("links => links.map(l => l.getAttribute('href'))")
    assert hrefs == ["/static/vendor/pico.min.css", "/static/renfort.css"]  # ours after Pico, so ours wins
    button = page.get_by_role("button", name="M'inscrire")
    # Renfort's petrol (#0e5a6b) for the primary button; the browser's default button is grey, Pico's azure.
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(14, 90, 107)"
    # Pico's base applies too: its inputs fill their column, the browser's are ~150 px wide.
    field = page.get_by_label("Prénom")
    assert await field.evaluate("i => i.getBoundingClientRect().width") > 400
    # Light theme whatever the system asks for (Pico would follow a dark system setting).
    await page.emulate_media(color_scheme="dark")
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(255, 255, 255)"


async def test_pages_fit_a_phone_with_the_header_and_skip_link(browser: Browser, web: WebServer) -> None:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 390, "height": 844})
    phone = await context.new_page()
    for path in ("/", "/inscription", "/missions?postal_code=69003", "/connexion", "/inscription/structure"):
        await phone.goto(path)
        overflow = await phone.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow == 0, path
        menu = phone.get_by_role("navigation", name="Menu principal")
        await expect(menu.get_by_role("link", name="Missions", exact=True)).to_be_visible()
        await expect(menu.get_by_role("link", name="Inscrire ma structure")).to_be_in_viewport()
    await phone.goto("/missions")
    await expect(phone.locator(".site-nav a[aria-current=page]")).to_have_text("Missions")
    await phone.keyboard.press("Tab")
    skip = phone.get_by_role("link", name="Aller au contenu")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_in_viewport()
    await skip.press("Enter")
    assert await phone.evaluate("document.activeElement && document.activeElement.id") == "contenu"
    await context.close()
