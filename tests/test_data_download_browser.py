""""Télécharger mes données" in a real headless Chromium against the web process, with the real worker: asked from
the person's space, followed on the waiting page (which updates itself), downloaded once as
mes-donnees-renfort.json, then "déjà téléchargé"; every page free of serious accessibility violations at desktop
and phone widths, and no wider than the phone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.accessibility import audit, blocking_violations, overflow
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_account_deletion import add_volunteer
from tests.test_volunteer_flows_browser import follow_link

EMAIL = "ana.navigateur@example.org"
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


async def check(page: Page) -> None:
    for name, size in WIDTHS.items():
        await page.set_viewport_size(size)
        problems = [f"axe {line}" for line in blocking_violations(await audit(page))]
        if name == "phone" and (found := await overflow(page)):
            problems.append(found)
        assert not problems, f"{page.url} at {name}:\n" + "\n".join(problems)


async def test_asking_following_and_downloading_my_data_once(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    await add_volunteer(db, EMAIL)
    context = await browser.new_context(base_url=web.base_url, locale="fr-FR", viewport=WIDTHS["desktop"],
                                        accept_downloads=True)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    await page.goto("/connexion")
    await page.get_by_label("Adresse e-mail").fill(EMAIL)
    await page.get_by_role("button", name="Recevoir un lien de connexion").click()
    await expect(page.get_by_text("vous allez recevoir un lien de connexion")).to_be_visible()
    run_worker({"SMTP_URL": sink.url})
    await follow_link(page, sink, EMAIL)

    await page.goto("/mon-espace")
    await page.get_by_role("link", name="Télécharger mes données").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Télécharger mes données")
    await check(page)
    await page.get_by_role("button", name="Demander mon fichier").click()
    await expect(page.locator("#avis")).to_contain_text("Votre demande est enregistrée")
    await expect(page.locator("#attente")).to_contain_text("en préparation")
    await check(page)

    run_worker()
    link = page.get_by_role("link", name="Télécharger mon fichier")
    await expect(link).to_be_visible()  # the page's script saw it ready
    async with page.expect_download() as started:
        await link.click()
    download = await started.value
    assert download.suggested_filename == "mes-donnees-renfort.json"
    data = json.loads(await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8"))
    assert data["compte"]["email"] == EMAIL and data["benevole"]["first_name"] == "Ana"

    await page.reload()
    await expect(page.locator("#deja-telecharge")).to_contain_text("déjà été téléchargé")
    await check(page)
    await context.close()
