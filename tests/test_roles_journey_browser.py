"""Appointing a coordinator in a real headless Chromium against granian, with the real worker and e-mails through a
local SMTP sink: the first admin is named from the command line, appoints a coordinator on /administration/roles,
and the coordinator — who had no account — signs in from the e-mailed link and puts an emergency live."""

from __future__ import annotations

import re

import asyncpg
from playwright.async_api import Browser, expect

from ops.services import MailSink
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in
from tests.test_roles_admin import granted

ADMIN = "admin.journey@example.org"
COORDINATOR = "nouvelle.coordination@example.org"


async def test_an_admin_appoints_a_coordinator_who_signs_in_and_puts_an_emergency_live(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    granted("--email", ADMIN, "--role", "admin")
    admin = await new_page(browser, web)
    await sign_in(admin, sink, ADMIN)

    await admin.goto("/administration/roles")
    await expect(admin.locator("h1")).to_have_text("Administration des rôles")
    await admin.get_by_role("textbox", name=re.compile("^Adresse e-mail")).fill(COORDINATOR)
    await admin.get_by_label("Rôle").select_option("coordinator")
    await admin.get_by_role("radio", name="Des départements").check()
    await admin.get_by_role("textbox", name=re.compile("^Départements")).fill("69, 1")
    await admin.get_by_role("button", name="Attribuer le rôle").click()
    await expect(admin.locator("#info")).to_contain_text("Le rôle est attribué")
    await expect(admin.locator("#coordinations")).to_contain_text(COORDINATOR)
    await expect(admin.locator("#coordinations")).to_contain_text("Rhône (69)")
    await expect(admin.locator("#journal")).to_contain_text("Attribution du rôle coordination (Ain (01), Rhône (69))")
    assert await db.fetchval(
        "SELECT array_agg(s.department_code ORDER BY s.department_code) FROM coordinator_scopes s"
        " JOIN users u ON u.id = s.user_id WHERE u.email_normalized = $1", COORDINATOR,
    ) == ["01", "69"]

    # The coordinator had no account: the grant made one, so /connexion mails them a link.
    coordinator = await new_page(browser, web)
    await sign_in(coordinator, sink, COORDINATOR)
    await coordinator.goto("/coordination/urgences/nouvelle")
    await coordinator.get_by_role("textbox", name=re.compile("^Titre")).fill("Orages dans le Rhône")
    await coordinator.get_by_role("textbox", name=re.compile("^Adresse de la page")).fill("orages-rhone")
    await coordinator.get_by_label("La situation").fill("De violents orages ont inondé des quartiers de Lyon.")
    await coordinator.get_by_label("Les besoins").fill("Déblayer, distribuer de l'eau, accueillir les sinistrés.")
    await coordinator.get_by_label("Départements concernés").fill("69")
    await coordinator.get_by_label("Solidarité et insertion").check()
    await coordinator.get_by_role("button", name="Créer le brouillon").click()
    await expect(coordinator.locator("#statut")).to_contain_text("Brouillon")
    await coordinator.get_by_role("button", name="Mettre en ligne").click()
    await expect(coordinator.locator("#statut")).to_contain_text("En ligne")

    public = await new_page(browser, web)
    response = await public.goto("/urgence/orages-rhone")
    assert response is not None and response.status == 200
    await expect(public.locator("h1")).to_have_text("Orages dans le Rhône")
