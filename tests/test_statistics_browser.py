"""`/statistiques` in a real headless Chromium against granian, without JavaScript: the charts and the map draw
(their shapes have a size on screen), the page fits a phone, and — like every page a browser test shows — it has no
serious or critical axe-core violation at 1280 and 390 px (tests/browser.py audits it), with or without figures."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Browser, expect

from tests.accessibility import audit, blocking_violations, overflow
from tests.browser import SCREENSHOTS
from tests.servers import WebServer
from tests.test_statistics import refreshed, seed


async def test_the_statistics_page_draws_its_charts_and_map_without_javascript_and_fits_a_phone(
    browser: Browser, web: WebServer, db: asyncpg.Connection
) -> None:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", java_script_enabled=False,
                                        viewport={"width": 390, "height": 844})
    try:
        page = await context.new_page()
        await page.goto("/statistiques")
        await expect(page.locator("#en-calcul")).to_contain_text("Les statistiques sont en cours de calcul")
        await seed(db)
        await refreshed()
        await page.goto("/statistiques")
        await expect(page.locator("h1")).to_have_text("Statistiques de Renfort")
        chart = page.locator('#volunteers svg[data-chart="bar"]')
        box = await chart.bounding_box()
        assert box and 300 <= box["width"] <= 390, box
        bar = await page.locator("#volunteers rect.graphique__barre").nth(22).bounding_box()  # November: 15
        assert bar and bar["height"] > 20, bar
        department = await page.locator('#carte-benevoles use[data-code="69"]').bounding_box()
        assert department and department["width"] > 2, department  # the outline loaded from the sprite
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        await page.screenshot(path=str(SCREENSHOTS / "statistiques-390.png"), full_page=True)
    finally:
        await context.close()
    # The shared audit saw this path once (without figures): the page with its figures is audited here (axe runs
    # as a script, so in a context with JavaScript).
    audited = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    try:
        page = await audited.new_page()
        await page.goto("/statistiques")
        assert blocking_violations(await audit(page)) == []
        await page.screenshot(path=str(SCREENSHOTS / "statistiques-1280.png"), full_page=False)
        await page.set_viewport_size({"width": 390, "height": 844})
        assert blocking_violations(await audit(page)) == [] and await overflow(page) is None
    finally:
        await audited.close()
