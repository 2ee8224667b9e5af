"""A partner's mission in a real headless Chromium against granian: its search card and its page name the partner,
and "Candidater sur …" goes through our tracked link to the partner's own page (intercepted, not loaded), with the
click counted once per follow. Every page shown passes the audit of tests/browser.py."""

from __future__ import annotations

import asyncio
import re

import asyncpg
from playwright.async_api import Browser, Page, Route, expect

from tests.partner_fixtures import create_partner
from tests.servers import WebServer
from tests.test_partner_tracking import BROWSER, mission, organisation, partner_mission


async def visitor(browser: Browser, web: WebServer, landed: list[str]) -> Page:
    # A browser's own user agent: the headless one announces itself and would not be counted.
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 390, "height": 844},
                                        user_agent=BROWSER["user-agent"])
    context.set_default_timeout(15_000)

    async def partner_site(route: Route) -> None:
        # Recorded, never loaded: the partner's site is not ours to audit (nor reachable from the test machine).
        landed.append(route.request.url)
        await route.abort()

    await context.route(re.compile(r"^https://benevoles\.example\.org/.*"), partner_site)
    return await context.new_page()


async def arrived(landed: list[str], count: int) -> None:
    for _ in range(100):
        if len(landed) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the browser reached the partner's site {len(landed)} time(s), not {count}")


async def test_a_partner_mission_card_and_page_send_the_visitor_to_the_partner_through_the_tracked_link(
        browser: Browser, web: WebServer, db: asyncpg.Connection) -> None:
    partner = await create_partner(db, "Bénévoles en ligne")
    theirs = await partner_mission(db, partner, title="Maraude du soir",
                                   application_url="https://benevoles.example.org/missions/42?ref=abc")
    await mission(db, await organisation(db), title="Distribution de colis")
    landed: list[str] = []
    page = await visitor(browser, web, landed)

    await page.goto("/missions")
    card = page.locator(f'[data-mission="{theirs}"]')
    await expect(card).to_contain_text("Mission proposée par Bénévoles en ligne")
    await expect(card).to_contain_text("Candidature sur le site du partenaire")
    await card.get_by_role("link", name="Candidater sur Bénévoles en ligne : Maraude du soir").click()
    await arrived(landed, 1)
    assert re.search(r"[?&]ref=abc&apiengagement_id=[0-9a-f]{32}\.[^&]+&utm_source=renfort&", landed[-1]), landed

    page = await page.context.new_page()  # the first tab is left on the aborted navigation's error page
    await page.goto(f"/missions/{theirs}-maraude-du-soir")
    await expect(page.locator("#partenaire")).to_have_text("Mission proposée par Bénévoles en ligne")
    await expect(page.locator("#places")).to_have_text("Candidature sur le site du partenaire")
    await expect(page.get_by_role("button", name="Je candidate")).to_have_count(0)
    await page.get_by_role("link", name="Candidater sur Bénévoles en ligne").click()
    await arrived(landed, 2)
    assert await db.fetchval("SELECT count(*) FROM partner_clicks WHERE direction = 'outbound' AND mission_id = $1",
                             theirs) == 2
