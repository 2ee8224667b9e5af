"""Signing up and applying to a mission with the keyboard alone, in a real headless Chromium against granian: only
`page.keyboard` (Tab, Shift+Tab, arrows, Space, Enter, typing), never a click, a fill or a focus(). Every control
reached shows where the focus is (an outline or a box shadow), the skip link leads to the content, and Tab goes
through each page to its end and Shift+Tab back: no keyboard trap. Also the proof that the automatic audit of the
browser tests' pages (tests/accessibility.py) sees a faulty page."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.accessibility import PageAuditor
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_application_journey_browser import TITLE, VOLUNTEER
from tests.test_application_journey_browser import seed as seed_mission
from tests.test_volunteer_flows_browser import LINK

# What has the focus, and how it shows: its own outline or box shadow, or else that of the box drawn around it
# (a mission card outlines itself when its title's link has the focus).
FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body || element === document.documentElement) return null;
  const shows = (box) => {
    const style = getComputedStyle(box);
    const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    // A shadow counts when it is drawn: not transparent, not of size zero (Pico's fade from or to none).
    const shadow = style.boxShadow !== 'none' && !/^rgba\\(0, 0, 0, 0\\)/.test(style.boxShadow)
      && /[1-9]/.test(style.boxShadow.replace(/rgba?\\([^)]*\\)/g, ''));
    return outline || shadow;
  };
  let indicator = null;
  for (let box = element, depth = 0; box && box !== document.body && depth < 4; box = box.parentElement, depth++) {
    if (shows(box)) { indicator = box.tagName.toLowerCase() + (box.className ? '.' + box.className : ''); break; }
  }
  const label = element.labels && element.labels.length ? element.labels[0].textContent : '';
  const path = [];
  for (let node = element; node.parentElement; node = node.parentElement) {
    path.unshift([...node.parentElement.children].indexOf(node));
  }
  return {id: element.id, tag: element.tagName.toLowerCase(), type: element.type || '',
          name: (element.getAttribute('aria-label') || label || element.textContent || '').trim().replace(/\\s+/g, ' '),
          indicator, path: path.join('.'), checked: !!element.checked};
}"""


async def focused(page: Page) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await page.evaluate(FOCUSED)
    return result


def describe(control: dict[str, Any] | None) -> str:
    if control is None:
        return "(nothing)"
    return f"<{control['tag']}{' #' + control['id'] if control['id'] else ''}> « {control['name'][:60]} »"


async def tab_to(page: Page, *, id: str | None = None, name: str | re.Pattern[str] | None = None,
                 most: int = 80) -> dict[str, Any]:
    """Presses Tab until the control (by id or by accessible name) has the focus; each control on the way must
    show its focus."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        control = await focused(page)
        assert control is not None, f"Tab left the page before reaching {id or name}"
        assert control["indicator"], f"no visible focus on {describe(control)} at {page.url}"
        if id is not None and control["id"] == id:
            return control
        if isinstance(name, str) and control["name"] == name:
            return control
        if isinstance(name, re.Pattern) and name.search(control["name"]):
            return control
    raise AssertionError(f"{id or name} not reached with {most} presses of Tab at {page.url}")


async def assert_no_keyboard_trap(page: Page, most: int = 300) -> None:
    """From where the focus is (the top of a page just loaded), Tab goes through the controls and leaves the page,
    and Shift+Tab walks back to the first of them."""
    seen: list[dict[str, Any]] = []
    for _ in range(most):
        await page.keyboard.press("Tab")
        control = await focused(page)
        if control is None or (seen and control["path"] == seen[0]["path"]):
            break  # past the last control: out of the page, or back at its first one
        assert control["indicator"], f"no visible focus on {describe(control)} at {page.url}"
        if seen and control["path"] == seen[-1]["path"]:
            continue  # the next part of the same control (a date field's day, month, year)
        assert all(control["path"] != other["path"] for other in seen), \
            f"Tab goes round in circles at {page.url}: back on {describe(control)}"
        seen.append(control)
    else:
        raise AssertionError(f"Tab never leaves {page.url}: {[describe(c) for c in seen[-5:]]}")
    assert len(seen) > 1, f"nothing to reach by Tab at {page.url}"
    # From the last control Shift+Tab walks back to the first one.
    await page.keyboard.press("Shift+Tab")
    if await focused(page) is None:  # focus had left the page: come back on its last control
        await page.keyboard.press("Shift+Tab")
    for _ in range(3 * len(seen) + 5):
        control = await focused(page)
        if control is not None and control["path"] == seen[0]["path"]:
            return
        await page.keyboard.press("Shift+Tab")
    raise AssertionError(f"Shift+Tab does not lead back to {describe(seen[0])} at {page.url}")


async def new_keyboard_page(browser: Browser, web: WebServer) -> Page:
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    return await context.new_page()


async def skip_to_content(page: Page) -> None:
    """The first Tab reaches « Aller au contenu », shown with its focus; Enter moves the focus to the content."""
    await page.keyboard.press("Tab")
    link = await focused(page)
    assert link is not None and link["name"] == "Aller au contenu", describe(link)
    assert link["indicator"], "the skip link shows no focus"
    assert await page.locator(".skip-link").is_visible()
    await page.keyboard.press("Enter")
    assert await page.evaluate("() => document.activeElement.id") == "contenu"


async def test_signing_up_with_the_keyboard_alone(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    page = await new_keyboard_page(browser, web)
    await page.goto("/inscription")
    await assert_no_keyboard_trap(page)
    await page.reload()
    await skip_to_content(page)

    await tab_to(page, id="first_name")
    await page.keyboard.type("Camille")
    await tab_to(page, id="last_name")
    await page.keyboard.type("Clavier")
    await tab_to(page, id="email")
    await page.keyboard.type("camille.clavier@example.org")
    await tab_to(page, id="birth_date")
    await page.keyboard.type("12121990")  # day and month alike: Chromium's field takes them in its own order
    await tab_to(page, id="postal_code")
    await page.keyboard.type("69003")
    await tab_to(page, id="domain-solidarite-insertion")
    await page.keyboard.press("Space")
    # Tab enters the availability group on its first choice; the arrows move through the group.
    control = await tab_to_prefix(page, "availability-")
    for _ in range(10):
        if control["id"] == "availability-weekends":
            break
        await page.keyboard.press("ArrowDown")
        control = await focused(page) or {}
        assert control.get("indicator"), f"no visible focus on {describe(control)}"
    assert control["id"] == "availability-weekends" and control["checked"], describe(control)
    await tab_to(page, id="consent")
    await page.keyboard.press("Space")
    await page.keyboard.press("Shift+Tab")  # back and forth: the focus is not held anywhere
    await page.keyboard.press("Tab")
    assert (await focused(page) or {}).get("id") == "consent"

    assert await page.locator("#birth_date").input_value() == "1990-12-12"
    assert await page.locator("#domain-solidarite-insertion").is_checked()
    assert await page.locator("#consent").is_checked()
    await tab_to(page, name="M'inscrire")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/inscription/merci"))
    await assert_no_keyboard_trap(page)

    run_worker({"SMTP_URL": sink.url})
    row = await db.fetchrow(
        "SELECT first_name, last_name, birth_date::text AS birth, postal_code, domains, availability FROM volunteers"
        " WHERE email_normalized = 'camille.clavier@example.org'")
    assert row is not None, "the sign-up did not reach PostgreSQL"
    assert dict(row) == {"first_name": "Camille", "last_name": "Clavier", "birth": "1990-12-12",
                         "postal_code": "69003", "domains": ["solidarite-insertion"], "availability": "weekends"}


async def tab_to_prefix(page: Page, prefix: str) -> dict[str, Any]:
    for _ in range(40):
        await page.keyboard.press("Tab")
        control = await focused(page)
        assert control is not None and control["indicator"], f"no visible focus on {describe(control)}"
        if control["id"].startswith(prefix):
            return control
    raise AssertionError(f"no control #{prefix}… reached by Tab")


async def test_applying_to_a_mission_with_the_keyboard_alone(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    mission_id = await seed_mission(db)
    page = await new_keyboard_page(browser, web)
    await page.goto("/missions?postal_code=69003&radius_km=10")
    await assert_no_keyboard_trap(page)
    await page.reload()
    await skip_to_content(page)
    await tab_to(page, name=TITLE, most=120)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(rf"/missions/{mission_id}-"))
    mission_url = page.url
    await assert_no_keyboard_trap(page)

    await tab_to(page, name="Se connecter pour candidater")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"/connexion\?suite="))
    await tab_to(page, id="email")
    await page.keyboard.type(VOLUNTEER)
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("vous allez recevoir un lien de connexion")).to_be_visible()

    run_worker({"SMTP_URL": sink.url})
    mails = [m for m in sink.messages() if m["To"] == VOLUNTEER and m["Subject"] == "Votre lien de connexion à Renfort"]
    link = LINK.search(mails[-1].get_content())
    assert link, "no sign-in link in the e-mail"
    await page.goto("/connexion/" + link[0].split("/connexion/", 1)[1])  # the e-mail's link, opened
    await tab_to(page, name="Me connecter")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(mission_url)

    await tab_to(page, id="message")
    await page.keyboard.type("Disponible le samedi matin.")
    await tab_to(page, name="Je candidate")
    await page.keyboard.press("Enter")
    await expect(page.locator("#resultat")).to_contain_text("Votre candidature est envoyée")
    await assert_no_keyboard_trap(page)

    run_worker({"SMTP_URL": sink.url})
    row = await db.fetchrow("SELECT a.status, a.message FROM applications a JOIN volunteers v ON v.id = a.volunteer_id"
                            " WHERE a.mission_id = $1 AND v.email = $2", mission_id, VOLUNTEER)
    assert row is not None, "the application did not reach PostgreSQL"
    assert row["message"] == "Disponible le samedi matin."


async def test_the_automatic_audit_reports_a_faulty_page_with_its_rule_and_place(
    browser: Browser, browser_and_auditor: tuple[Browser, PageAuditor | None], web: WebServer, request: Any
) -> None:
    auditor = browser_and_auditor[1]
    assert auditor is not None
    page = await new_keyboard_page(browser, web)
    faulty = ('<!doctype html><html lang="fr"><head><title>Page fautive</title></head><body><main><h1>Fautive</h1>'
              '<form><input id="sans-nom"></form><div id="trop-large" style="width: 600px">large</div>'
              '</main></body></html>')
    await page.route("**/page-fautive/*", lambda route: route.fulfill(status=200, body=faulty,
                                                                   content_type="text/html; charset=utf-8"))
    await page.goto("/page-fautive/12345")
    await page.goto("/page-fautive/67890")  # the same kind of page: audited once
    problems = await auditor.finish_test(request.node.nodeid)
    assert len(problems) == 1, problems
    [report] = problems
    assert report.startswith("/page-fautive/{n} (200) — http://"), report
    assert "axe at 1280 px: critical label" in report and "#sans-nom" in report, report
    assert "axe at 390 px: critical label" in report, report
    assert "at 390 px the page is" in report and "div#trop-large" in report, report
