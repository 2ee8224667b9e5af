"""The SNU allocation in a real headless Chromium against the web process: a referent launches a run, the waiting
page updates itself once the real worker solved it, the referent takes a young person off their mission and
confirms; every page free of serious accessibility violations at desktop and phone widths, none wider than the
phone."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_applications import session_cookies
from tests.test_data_download_browser import check
from tests.test_youth_allocation_runs import HOME, a_department
from tests.test_youth_cohorts import no_cohorts

FIXTURES = (no_cohorts,)


async def test_a_referent_launches_follows_adjusts_and_confirms_an_allocation(
    browser: Browser, web: WebServer, redis: Redis, db: asyncpg.Connection
) -> None:
    ids = await a_department(db)
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                "ref69@example.org")
    await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, '69')", user_id)
    [cookies] = await session_cookies(web.base_url, redis, ["ref69@example.org"])
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    session = cookies.split("; ")[0].removeprefix("renfort_session=")
    await context.add_cookies([{"name": "renfort_session", "value": session, "url": web.base_url}])
    page = await context.new_page()

    await page.goto(f"{HOME}?cohorte={ids['cohort']}&departement=69")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Affectation des jeunes du SNU")
    await check(page)
    await page.get_by_role("button", name="Lancer l'affectation").click()
    await expect(page.locator("#statut")).to_contain_text("Calcul en cours")
    await check(page)

    run_worker()
    await expect(page.locator("#statut")).to_contain_text("Plan prêt")  # the page's script saw it solved
    await expect(page.locator("#rangs")).to_contain_text("1er vœu : 2")
    await check(page)
    form = page.locator("form", has=page.locator(f"#offre-{ids['leo']}"))
    await form.get_by_label("Mission pour Léo Unvoeu").select_option(label="Aucune (retirer de sa mission)")
    await form.get_by_role("button", name="Modifier").click()
    await expect(page.locator("#info")).to_contain_text("Modification enregistrée")
    await expect(page.locator("#sans-place")).to_contain_text("Retiré·e de sa mission par le référent")

    await page.get_by_role("button", name="Confirmer l'affectation").click()
    await expect(page.locator("#info")).to_contain_text("Affectation confirmée")
    await check(page)
    placed = await db.fetchval("SELECT count(*) FROM youth_placements WHERE allocation_id IS NOT NULL")
    assert placed == 2
    await context.close()
