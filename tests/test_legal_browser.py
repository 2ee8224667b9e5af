"""The legal pages, the acceptance of new terms and their administration in a real headless Chromium: every page
shown here passes the accessibility audit of tests/browser.py (axe-core at 1280 and 390 px, nothing wider than
390 px), and the acceptance works with the keyboard alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from app.legal.current import KEYS
from tests.conftest import TEST_ENV
from tests.servers import WebServer

ADMIN = "admin.navigateur@example.org"
PERSON = "lecteur.conditions@example.org"


@pytest.fixture(autouse=True)
async def only_version_one(db: asyncpg.Connection) -> AsyncIterator[None]:
    await db.execute("DELETE FROM legal_texts WHERE version > 1")
    yield
    await db.execute("DELETE FROM legal_texts WHERE version > 1")


async def new_page(browser: Browser, web: WebServer) -> Page:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return await context.new_page()


async def sign_in(page: Page, redis: Redis, email: str, after: str = "") -> None:
    token_id = tokens.new_id()
    record = LinkRecord(email=email, email_normalized=email, after=after)
    await redis.set(tokens.link_key(token_id), msgspec.json.encode(record), ex=600)
    await page.goto("/connexion/lien?jeton=" + tokens.mint(TEST_ENV["SECRET_KEY"], token_id, int(time.time()) + 600))
    await page.get_by_role("button", name="Me connecter").click()
    await page.wait_for_load_state()


async def test_legal_pages_acceptance_and_administration_in_a_browser(
    browser: Browser, web: WebServer, redis: Redis, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized, is_admin) VALUES ($1, $1, true)", ADMIN)
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ($1, $1)", PERSON)
    visitor = await new_page(browser, web)
    for path, heading in (("/mentions-legales", "Mentions légales"), ("/accessibilite", "Déclaration d'accessibilité"),
                          ("/donnees-personnelles", "Données personnelles"),
                          ("/conditions-utilisation", "Conditions d'utilisation et chartes")):
        await visitor.goto(path)
        await expect(visitor.get_by_role("heading", level=1)).to_have_text(heading)

    admin = await new_page(browser, web)
    await sign_in(admin, redis, ADMIN)
    await admin.goto("/administration/textes")
    await expect(admin.locator("#versions-terms")).to_contain_text("mise en service")
    await admin.goto("/administration/textes/terms/nouvelle")
    await admin.get_by_label("Titre", exact=True).fill("")
    await admin.get_by_role("button", name="Publier la version").click()
    await expect(admin.locator("#resume-erreurs")).to_contain_text("Indiquez le titre du texte.")
    await admin.get_by_label("Titre", exact=True).fill("Conditions d'utilisation et chartes")
    await admin.locator("#body").fill("## Nouvelles règles\n\nUne version majeure.")
    await admin.get_by_label("Version majeure : demander une nouvelle acceptation").check()
    await admin.get_by_role("button", name="Publier la version").click()
    await expect(admin.locator("#info")).to_contain_text("La version 2 du texte")
    assert await redis.hget(KEYS.current, "terms_major") == b"2"

    await visitor.goto("/conditions-utilisation/versions/1")
    await expect(visitor.locator("#version-archivee")).to_contain_text("Vous lisez la version 1")

    await asyncio.sleep(1.1)  # the web processes' copies of the versions are up to a second old
    person = await new_page(browser, web)
    await sign_in(person, redis, PERSON, after="/mon-espace/profil")
    await expect(person).to_have_url(f"{web.base_url}/conditions-utilisation/accepter?suite=%2Fmon-espace%2Fprofil")
    await expect(person.locator("#texte")).to_contain_text("Une version majeure.")
    button = person.get_by_role("button", name="J'accepte les conditions d'utilisation (version 2)")
    await button.focus()
    await person.keyboard.press("Enter")
    await expect(person).to_have_url(f"{web.base_url}/mon-espace/profil")
    assert await db.fetchval("SELECT terms_version FROM users WHERE email_normalized = $1", PERSON) == 2
