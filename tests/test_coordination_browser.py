"""The coordination dashboard in a real headless Chromium against the web process served by granian: the figures
and the chart change by themselves while the page stays the same page (no reload)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect
from redis.asyncio import Redis

from tests.browser import SCREENSHOTS
from tests.helpers import queue_signups, queued_signup
from tests.servers import WebServer
from tests.test_applications import session_cookies
from tests.test_coordination import add_emergency, add_volunteers

SLUG = "inondations-aude"


@pytest.fixture
async def coordinator_page(browser: Browser, web: WebServer, redis: Redis,
                           db: asyncpg.Connection) -> AsyncIterator[Page]:
    """A department coordinator of the Aude, signed in on the real server, in a fresh browser context."""
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                "coord.aude@example.org")
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, '11')", user_id)
    [cookies] = await session_cookies(web.base_url, redis, ["coord.aude@example.org"])
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    session = cookies.split("; ")[0].removeprefix("renfort_session=")
    await context.add_cookies([{"name": "renfort_session", "value": session, "url": web.base_url}])
    yield await context.new_page()
    await context.close()


async def test_the_dashboard_updates_its_figures_and_chart_without_reloading(
    coordinator_page: Page, redis: Redis, db: asyncpg.Connection
) -> None:
    page = coordinator_page
    await add_emergency(db, SLUG, ["11"])
    loads: list[str] = []
    errors: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto("/coordination")
    section = page.locator(f"#urgence-{SLUG}")
    volunteers = section.locator('[data-figure="volunteers"]')
    last_minute = section.locator("[data-chart] rect.barre").last
    await expect(volunteers).to_have_text("0")
    await expect(section.locator("[data-chart] rect.barre")).to_have_count(60)
    await expect(last_minute).to_have_attribute("data-count", "0")
    await page.evaluate("window.sameDocument = true")  # gone if the page were reloaded

    await add_volunteers(db, SLUG, "11069", datetime.now(UTC), 3)  # saved sign-ups, this very minute
    await queue_signups(redis, [queued_signup(1, prefix="en-file"), queued_signup(2, prefix="en-file")])

    # The page polls every 5 s and the figures are cached up to 4 s: the change shows within ~10 s.
    await expect(volunteers).to_have_text("3", timeout=20_000)
    await expect(section.locator('[data-figure="last_hour"]')).to_have_text("3")
    await expect(page.locator('#chiffres-files [data-queue="signups_queued"]')).to_have_text("2")
    assert int(await last_minute.get_attribute("data-count") or 0) + int(
        await section.locator("[data-chart] rect.barre").nth(58).get_attribute("data-count") or 0
    ) == 3  # this minute's bar, or the previous one's if the minute turned meanwhile
    await expect(section.locator('tr[data-department="11"] td').nth(1)).to_have_text("3")
    assert await page.evaluate("window.sameDocument") is True
    assert len(loads) == 1 and errors == []
    await page.screenshot(path=str(SCREENSHOTS / "coordination.png"), full_page=True)
