"""The switch page in a real headless Chromium against granian: an admin signs in from the e-mailed link, finds the
page from « Mon espace », turns maintenance on with a reason — a visitor then gets the maintenance page everywhere
but on the sign-up form — and off again; the journal shows both; someone who is not an admin is refused."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Browser, expect

from ops.services import MailSink
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in
from tests.test_roles_admin import granted

ADMIN = "admin.maintenance@example.org"
REFERENT = "referente.nationale@example.org"


async def test_an_admin_turns_maintenance_on_and_off_and_a_referent_is_refused(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    granted("--email", ADMIN, "--role", "admin")
    admin = await new_page(browser, web)
    await sign_in(admin, sink, ADMIN)
    await admin.get_by_role("link", name="Interrupteurs d'exploitation").click()
    await expect(admin.locator("h1")).to_have_text("Interrupteurs d'exploitation")
    await expect(admin.locator("#etat-maintenance")).to_have_text("Désactivé")

    await admin.get_by_label("Motif (facultatif)").first.fill("Montée de version de la base")
    await admin.get_by_role("button", name="Activer : maintenance").click()
    await expect(admin.locator("#info")).to_contain_text("L'interrupteur est activé")
    await expect(admin.locator("#etat-maintenance")).to_have_text("Activé")
    await expect(admin.locator("#journal")).to_contain_text("Montée de version de la base")
    await expect(admin.locator("#journal")).to_contain_text("désactivé → activé")
    await expect(admin.locator("#journal")).to_contain_text(ADMIN)

    visitor = await new_page(browser, web)
    closed = await visitor.goto("/missions")
    assert closed is not None and closed.status == 503 and closed.headers["retry-after"] == "300"
    await expect(visitor.locator("h1")).to_have_text("Renfort est en maintenance")
    await visitor.get_by_role("link", name="S'inscrire comme bénévole").click()
    await expect(visitor.locator("h1")).to_contain_text("inscri")  # the sign-up form itself, still open
    await expect(visitor.get_by_label("Adresse e-mail")).to_be_visible()

    await admin.get_by_role("button", name="Désactiver : maintenance").click()
    await expect(admin.locator("#info")).to_contain_text("L'interrupteur est désactivé")
    await expect(admin.locator("#etat-maintenance")).to_have_text("Désactivé")
    await expect(admin.locator("#journal tbody tr")).to_have_count(2)
    reopened = await visitor.goto("/missions")
    assert reopened is not None and reopened.status == 200
    assert await db.fetchval("SELECT count(*) FROM switch_changes WHERE actor = 'admin'") == 2

    granted("--email", REFERENT, "--role", "referent", "--national")
    referent = await new_page(browser, web)
    await sign_in(referent, sink, REFERENT)
    await expect(referent.get_by_role("link", name="Interrupteurs d'exploitation")).to_have_count(0)
    refused = await referent.goto("/administration/interrupteurs")
    assert refused is not None and refused.status == 403
    await expect(referent.locator("main")).to_contain_text("Cette page est réservée à d'autres rôles")
