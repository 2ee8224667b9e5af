"""The maps of France in a real headless Chromium against granian: the coordination dashboard, the public emergency
page and the dispatch preview each draw their departments (the outlines really load from the static sprite), say
what the colours mean, and give the figures as text — without JavaScript too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from redis.asyncio import Redis

from app.formats import decimal
from tests.browser import SCREENSHOTS
from tests.servers import WebServer
from tests.test_applications import session_cookies
from tests.test_coordination import add_emergency, add_volunteers

SLUG = "crues-aude-herault"
SCOPE = ["11", "34"]
ALL_DEPARTMENTS = 101


async def signed_in_context(browser: Browser, web: WebServer, redis: Redis, db: asyncpg.Connection, *,
                            javascript: bool) -> BrowserContext:
    """A national coordinator, signed in on the real server."""
    email = "coord.carte@example.org"
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", email)
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, NULL)", user_id)
    [cookies] = await session_cookies(web.base_url, redis, [email])
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", java_script_enabled=javascript,
                                        viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    session = cookies.split("; ")[0].removeprefix("renfort_session=")
    await context.add_cookies([{"name": "renfort_session", "value": session, "url": web.base_url}])
    return context


@pytest.fixture
async def coordinator(browser: Browser, web: WebServer, redis: Redis, db: asyncpg.Connection) -> AsyncIterator[Page]:
    context = await signed_in_context(browser, web, redis, db, javascript=True)
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def coordinator_without_js(browser: Browser, web: WebServer, redis: Redis,
                                 db: asyncpg.Connection) -> AsyncIterator[Page]:
    context = await signed_in_context(browser, web, redis, db, javascript=False)
    yield await context.new_page()
    await context.close()


async def per_thousand(db: asyncpg.Connection, department: str, volunteers: int) -> str:
    population = await db.fetchval("SELECT sum(population) FROM communes WHERE department_code = $1", department)
    return decimal(round(volunteers * 1000 / population, 2), 2)


async def drawn(page: Page, selector: str) -> float:
    """The on-screen width of a shape: zero when its outline did not load."""
    box = await page.locator(selector).bounding_box()
    return box["width"] if box else 0.0


async def test_the_dashboard_maps_volunteers_per_thousand_and_keeps_it_current(
    coordinator: Page, db: asyncpg.Connection
) -> None:
    page = coordinator
    await add_emergency(db, SLUG, SCOPE)
    await add_volunteers(db, SLUG, "11069", datetime.now(UTC), 40)  # Carcassonne
    await page.goto("/coordination")
    figure = page.locator(f"#carte-{SLUG}")
    await expect(figure.locator("use[data-code]")).to_have_count(ALL_DEPARTMENTS)
    # 0,11 for 1,000 in the Aude: classes 0,05 wide, from 0.
    await expect(figure.locator('use[data-code="11"]')).to_have_attribute("data-level", "2")
    await expect(figure.locator('use[data-code="34"]')).to_have_attribute("data-level", "0")
    await expect(figure.locator('use[data-code="01"]')).to_have_attribute("data-level", "out")
    assert await drawn(page, f'#carte-{SLUG} use[data-code="11"]') > 10
    assert await drawn(page, f'#carte-{SLUG} use[data-code="974"]') > 10  # an inset
    await expect(figure).to_contain_text("bénévoles pour 1 000 habitants")
    await expect(figure.locator("[data-legend] li")).to_have_count(6)  # five classes and "outside the scope"
    table = page.locator(f'[data-map-table="carte-{SLUG}"]')
    await expect(table.locator("tbody tr")).to_have_count(2)
    aude = table.locator('tr[data-department="11"] td')
    await expect(aude).to_have_text(await per_thousand(db, "11", 40))
    await expect(table.locator('tr[data-department="34"] td')).to_have_text("0,00")

    # Sign-ups saved meanwhile reach the map's figures through the page's polling, without a reload.
    await add_volunteers(db, SLUG, "34172", datetime.now(UTC), 400)  # Montpellier
    await expect(table.locator('tr[data-department="34"] td')).to_have_text(await per_thousand(db, "34", 400),
                                                                           timeout=20_000)
    await expect(figure.locator('use[data-code="34"]')).not_to_have_attribute("data-level", "0")
    await page.screenshot(path=str(SCREENSHOTS / "coordination-carte.png"), full_page=True)


async def test_the_dashboard_chart_and_map_are_drawn_without_javascript(
    coordinator_without_js: Page, db: asyncpg.Connection
) -> None:
    page = coordinator_without_js
    await add_emergency(db, SLUG, SCOPE)
    await add_volunteers(db, SLUG, "11069", datetime.now(UTC), 3)
    await page.goto("/coordination")
    section = page.locator(f"#urgence-{SLUG}")
    bars = section.locator("[data-chart] rect.barre")
    await expect(bars).to_have_count(60)
    assert sum([int(await bar.get_attribute("data-count") or 0) for bar in await bars.all()]) == 3
    await expect(section.locator("[data-chart] svg")).to_have_attribute("aria-label", "Inscriptions par minute sur la "
                                                                        "dernière heure : 3 au total, au plus 3 par "
                                                                        "minute, 3 dans la minute en cours.")
    await expect(section.locator("[data-chart-table] tr")).to_have_count(60)
    await expect(section.locator("[data-chart-table] tr").last.locator("td")).to_have_text("3")
    await expect(section.locator(f"#carte-{SLUG} use[data-code]")).to_have_count(ALL_DEPARTMENTS)
    assert await drawn(page, f'#carte-{SLUG} use[data-code="11"]') > 10


async def test_the_emergency_page_shows_its_departments_on_the_map(browser: Browser, web: WebServer,
                                                                   db: asyncpg.Connection) -> None:
    await add_emergency(db, SLUG, SCOPE)
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"/urgence/{SLUG}")
    figure = page.locator("#carte-urgence")
    # The rest of France as one shape under the two departments of the scope: the hot page stays light.
    await expect(figure.locator("use[data-code]")).to_have_count(1 + len(SCOPE))
    await expect(figure.locator('use[data-level="in"]')).to_have_count(len(SCOPE))
    assert await drawn(page, '#carte-urgence use[data-code="34"]') > 10
    assert await drawn(page, '#carte-urgence use[data-code="*"]') > 300
    await expect(figure.locator("[data-legend]")).to_contain_text("Département concerné")
    rows = page.locator('[data-map-table="carte-urgence"] tbody tr th')
    await expect(rows).to_have_text(["Aude (11)", "Hérault (34)"])
    await page.screenshot(path=str(SCREENSHOTS / "urgence-carte.png"), full_page=True)
    await context.close()


async def test_the_dispatch_preview_maps_the_share_of_needs_the_plan_fills(coordinator: Page,
                                                                          db: asyncpg.Connection) -> None:
    page = coordinator
    emergency_id = await add_emergency(db, SLUG, SCOPE)
    preview = {"missions": [{"id": 1, "title": "Déblayer les caves", "priority": True, "department": "11",
                             "places": 10, "open": 10, "proposed": 4}],
               "departments": [{"code": "11", "name": "Aude", "missions": 1, "open": 10, "proposed": 4},
                               {"code": "34", "name": "Hérault", "missions": 1, "open": 0, "proposed": 0}],
               "reasons": {}, "unassigned": []}
    parameters = {"pool": "les-deux", "domains": [], "availability": [], "max_km": 50, "mission_ids": [1]}
    run_id = await db.fetchval(
        "INSERT INTO dispatch_runs (emergency_id, status, parameters, preview, counts, planned_at)"
        " VALUES ($1, 'planned', $2::jsonb, $3::jsonb, '{\"planned\": 4}'::jsonb, now()) RETURNING id",
        emergency_id, json.dumps(parameters), json.dumps(preview),
    )
    await page.goto(f"/coordination/urgences/{SLUG}/mobilisation/{run_id}")
    figure = page.locator("#carte-couverture")
    await expect(figure.locator("use[data-code]")).to_have_count(ALL_DEPARTMENTS)
    await expect(figure.locator('use[data-code="11"]')).to_have_attribute("data-level", "2")  # 40 %
    await expect(figure.locator('use[data-code="34"]')).to_have_attribute("data-level", "none")
    await expect(figure.locator('use[data-code="34"]')).to_have_attribute("fill", "url(#carte-couverture-hatch)")
    assert await drawn(page, '#carte-couverture use[data-code="11"]') > 10
    await expect(figure.locator("[data-legend]")).to_contain_text("aucune place ouverte visée")
    await expect(figure.locator('a[href="#par-departement"]')).to_be_visible()
    await expect(page.locator("#par-departement tbody tr").first).to_contain_text("40")
    await page.screenshot(path=str(SCREENSHOTS / "mobilisation-carte.png"), full_page=True)
