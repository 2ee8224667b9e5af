"""The territory pages, the city page editor and its moderation, and the organisations directory in a real headless
Chromium against granian: every page shown passes the audit of tests/browser.py (no serious or critical axe-core
violation at 1280 and 390 px, nothing wider than 390 px), and a local authority's page goes online once validated."""

from __future__ import annotations

import re
import time

import asyncpg
import msgspec
from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from tests.conftest import TEST_ENV
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page
from tests.test_territories import BOURG, LYON, mission, organisation, volunteers

MAYOR, REFERENT = "mairie.bourg@example.org", "referent.ain@example.org"


async def sign_in(page: Page, redis: Redis, email: str) -> None:
    """Through the sign-in link's confirmation page, the link minted as the e-mail would carry it."""
    token_id = tokens.new_id()
    await redis.set(tokens.link_key(token_id), msgspec.json.encode(LinkRecord(email=email, email_normalized=email)))
    await page.goto("/connexion/lien?jeton=" + tokens.mint(TEST_ENV["SECRET_KEY"], token_id, int(time.time()) + 900))
    await page.get_by_role("button", name="Me connecter").click()
    await expect(page).to_have_url(re.compile(r"/mon-espace$"))


async def test_territory_pages_and_directory_pass_the_audit_and_a_city_page_goes_online(
        browser: Browser, web: WebServer, db: asyncpg.Connection, redis: Redis) -> None:
    town = await organisation(db, "Ville de Bourg-en-Bresse", BOURG, kind="collectivite", managers=(MAYOR,))
    rhone = await organisation(db, "Banque alimentaire du Rhône", LYON)
    for number in range(22):
        await organisation(db, f"Association numéro {number:02d}", LYON)
    promoted = await mission(db, town, "Accompagner les aînés au marché", BOURG)
    await mission(db, rhone, "Trier les colis", LYON)
    await volunteers(db, BOURG, 12)
    referent = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", REFERENT)
    await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, '01')", referent)

    visitor = await new_page(browser, web)
    await visitor.goto("/departements/69")
    await expect(visitor.locator("h1")).to_have_text("Bénévolat : Rhône")
    await expect(visitor.locator("#missions")).to_contain_text("Trier les colis")
    await visitor.goto(f"/villes/{BOURG}")
    await expect(visitor.locator("#benevoles")).to_have_text("12")
    await visitor.goto("/organisations?q=association&departement=69")
    await expect(visitor.locator("#total")).to_have_text("22 structure(s)")
    await visitor.get_by_role("link", name="Page suivante").click()
    await expect(visitor.locator("#resultats")).to_contain_text("Association numéro 21")
    await visitor.goto("/organisations?page=0")
    await visitor.goto(f"/organisations/{rhone}-banque-alimentaire-du-rhone")

    mayor = await new_page(browser, web)
    await sign_in(mayor, redis, MAYOR)
    await mayor.goto(f"/villes/{BOURG}")
    await mayor.get_by_role("link", name="Rédiger la page de la commune").click()
    await mayor.get_by_role("button", name="Envoyer à validation").click()  # empty: the error summary
    await expect(mayor.locator("#resume-erreurs")).to_contain_text("Écrivez le texte de la page")
    await mayor.get_by_label(re.compile("^Texte de la page")).fill("Bourg s'engage.\nRejoignez-nous au marché.")
    await mayor.get_by_label("Accompagner les aînés au marché").check()
    await mayor.get_by_role("button", name="Envoyer à validation").click()
    await expect(mayor.locator("#notice")).to_contain_text("envoyée aux référent")

    moderator = await new_page(browser, web)
    await sign_in(moderator, redis, REFERENT)
    await moderator.goto("/moderation/territoires")
    await expect(moderator.locator("#en-attente")).to_contain_text("Bourg s'engage.")
    await moderator.locator(f"#page-{BOURG}").get_by_role("button", name="Valider").click()
    await expect(moderator.locator("#rien")).to_be_visible()

    await visitor.goto(f"/villes/{BOURG}")
    await expect(visitor.locator("#page-commune")).to_contain_text("Rejoignez-nous au marché.")
    await expect(visitor.locator("#missions-en-avant")).to_contain_text("Accompagner les aînés au marché")
    assert await visitor.locator(f'#missions-en-avant [data-mission="{promoted}"]').count() == 1
