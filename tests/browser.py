"""Fixtures of the browser tests (loaded by conftest's `pytest_plugins`): the web process under granian with a
mail sink of its own, and a headless Debian Chromium driven by Playwright's async API. Module-scoped: one server
and one browser per test module.

Every page a module's browser shows is audited for accessibility (tests/accessibility.py) unless the module sets
`AUDIT_EVERY_PAGE = False` (a module that audits its pages itself); the problems found fail the test that showed
the page first, at its teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from ops.services import MailSink, free_port
from tests.accessibility import PageAuditor
from tests.servers import WebServer, running_web_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path("/tmp")
AUDITED: set[str] = set()  # the kinds of page audited in this run, by every module's browser
AUDIT_STATS: dict[str, float] = {"pages": 0, "audit_seconds": 0.0, "wait_seconds": 0.0}


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    mail = MailSink(tmp_path_factory.mktemp("mail"), port=free_port())
    mail.start()
    yield mail
    mail.stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, sink: MailSink) -> Iterator[WebServer]:
    log = tmp_path_factory.mktemp("web") / "granian.log"
    with running_web_server(log, {"SMTP_URL": sink.url}) as server:
        yield server


@pytest.fixture(scope="module")
async def browser_and_auditor(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Browser, PageAuditor | None]]:
    # The async API: the sync one keeps an event loop running in this thread, which pytest-asyncio's loop forbids.
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        auditor = None
        if getattr(request.module, "AUDIT_EVERY_PAGE", True):
            auditor = PageAuditor(AUDITED)
            await auditor.attach(launched)
        yield launched, auditor
        if auditor is not None:
            await auditor.close()
            for key, value in auditor.stats.items():
                AUDIT_STATS[key] += value
        await launched.close()


@pytest.fixture(scope="module")
def browser(browser_and_auditor: tuple[Browser, PageAuditor | None]) -> Browser:
    return browser_and_auditor[0]


@pytest.fixture(autouse=True)
async def audited_pages(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The pages a browser test shows first in the run pass the audit: no serious or critical axe-core violation
    at 1280 and 390 px, nothing wider than 390 px."""
    if "browser_and_auditor" not in request.fixturenames:  # no browser, or a module's own `browser` fixture
        yield
        return
    auditor: PageAuditor | None = request.getfixturevalue("browser_and_auditor")[1]
    if auditor is None:
        yield
        return
    auditor.test = request.node.nodeid
    yield
    problems = await auditor.finish_test(request.node.nodeid)
    auditor.test = ""
    if problems:
        pytest.fail("accessibility audit of the pages this test showed first:\n" + "\n".join(problems), pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if AUDIT_STATS["pages"]:
        terminalreporter.write_line(
            f"accessibility audit: {AUDIT_STATS['pages']:.0f} kinds of page, {AUDIT_STATS['audit_seconds']:.0f} s of"
            f" audits, {AUDIT_STATS['wait_seconds']:.0f} s of tests waiting for them")
