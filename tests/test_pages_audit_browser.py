"""The proof that the main pages are accessible and fit a phone, in a real headless Chromium against granian, on
the showcase data (app/showcase.py): every page of the screenshots' tour (ops/screenshots.py) at desktop
(1280×900) and phone (390×844) widths has no axe-core violation of impact serious or critical, and nothing wider
than the phone's screen."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page
from redis.asyncio import Redis

from ops.screenshots import TOUR, VIEWPORTS, Stop, new_context, sign_in, visit
from tests.accessibility import audit, blocking_violations, overflow
from tests.conftest import DATABASE_URL, REDIS_URL, ROOT
from tests.servers import WebServer

AUDIT_EVERY_PAGE = False  # the tour is audited below, at both widths, after each stop's button is pressed


@pytest.fixture(scope="module")
async def showcase(database: str) -> dict[str, Any]:
    """The showcase, loaded once for the module by its own command, into emptied databases."""
    redis = Redis.from_url(REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    connection = await asyncpg.connect(DATABASE_URL)
    await connection.execute("TRUNCATE volunteers, users, organisations, erasures, partners RESTART IDENTITY CASCADE")
    await connection.close()
    loaded = subprocess.run([sys.executable, "-m", "app.showcase"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    data: dict[str, Any] = json.loads(loaded.stdout)
    return data


@pytest.fixture
def clean_state() -> None:
    """Not emptied between the tests of this module: they only read the showcase loaded once."""


@pytest.fixture(scope="module")
async def states(browser: Browser, web: WebServer, showcase: dict[str, Any]) -> dict[str, Any]:
    """Each showcase account signed in once, through its link; the browser state (session) reused by every test."""
    return {who: await sign_in(browser, web.base_url, link) for who, link in showcase["links"].items()}


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def opened(request: pytest.FixtureRequest, browser: Browser, web: WebServer, showcase: dict[str, Any],
                 states: dict[str, Any], viewport: str) -> AsyncIterator[Page]:
    stop: Stop = request.param
    context = await new_context(browser, web.base_url, viewport, states.get(stop.who or ""))
    try:
        yield await visit(context, stop, showcase)
    finally:
        await context.close()


@pytest.mark.parametrize("opened", [Stop("connexion", "/connexion")], indirect=True)
async def test_the_audit_sees_an_unlabelled_field_and_a_too_wide_block(opened: Page, viewport: str) -> None:
    await opened.evaluate("""() => {
      const form = document.querySelector('main form') || document.body;
      form.append(document.createElement('input'));
      const wide = document.createElement('div');
      wide.id = 'trop-large';
      wide.style.width = '600px';
      wide.textContent = 'Un bloc plus large que l’écran';
      document.querySelector('main').append(wide);
    }""")
    assert any(" label: " in line for line in blocking_violations(await audit(opened)))
    found = await overflow(opened)
    if viewport == "phone":
        assert found is not None and "div#trop-large" in found, found
    else:
        assert found is None, found


@pytest.mark.parametrize("opened", TOUR, ids=[stop.name for stop in TOUR], indirect=True)
async def test_the_page_has_no_serious_accessibility_violation_and_fits_a_phone(opened: Page, viewport: str) -> None:
    page = opened
    problems = [f"axe {line}" for line in blocking_violations(await audit(page))]
    if viewport == "phone" and (found := await overflow(page)):
        problems.append(found)
    assert not problems, f"{page.url} at {viewport}:\n" + "\n".join(problems)
