"""Fixtures of the browser tests (loaded by conftest's `pytest_plugins`): the web process under granian with a
mail sink of its own, and a headless Debian Chromium driven by Playwright's async API. Module-scoped: one server
and one browser per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from ops.services import MailSink, free_port
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
async def browser() -> AsyncIterator[Browser]:
    # The async API: the sync one keeps an event loop running in this thread, which pytest-asyncio's loop forbids.
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield launched
        await launched.close()
