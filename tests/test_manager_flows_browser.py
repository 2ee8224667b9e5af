"""An organisation manager's flows in a real headless Chromium against granian: from "Mon espace" to a new mission in
clicks, only the state buttons the status allows, a cancellation confirmed first, and an action a stale tab still
offers ending on the mission page that says why (or on an error page with the way back), never on a bare 409."""

from __future__ import annotations

import re
from datetime import date, timedelta

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in

MANAGER = "gestion.flows@example.org"
ORGANISATION = "Restos du cœur de Villeurbanne"
TITLE = "Accueil des familles au centre de distribution"


async def seed(db: asyncpg.Connection) -> int:
    """A validated organisation and its manager's account."""
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", MANAGER)
    organisation_id: int = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ($1, 'association', 'W691234568', '2 rue Francis de Pressensé', '69100', '69266',"
        " 'Aide alimentaire et accueil.', 'validated') RETURNING id", ORGANISATION,
    )
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    return organisation_id


async def state_buttons(page: Page) -> list[str]:
    return [text.strip() for text in await page.locator("#etats").get_by_role("button").all_inner_texts()
            + await page.locator("#etats").get_by_role("link").all_inner_texts()]


async def new_mission_from_the_space(manager: Page, organisation_id: int) -> int:
    await manager.goto("/mon-espace")
    space = manager.locator(f"#structure-{organisation_id}")
    await expect(space.get_by_role("link", name=ORGANISATION)).to_have_attribute(
        "href", re.compile(rf"^/organisations/{organisation_id}-"))
    await expect(space.get_by_role("link", name="Gérer les gestionnaires")).to_be_visible()
    await space.get_by_role("link", name="Nouvelle mission").click()
    await manager.get_by_label("Titre de la mission").fill(TITLE)
    await manager.get_by_label("Description").fill("Accueillir les familles et les orienter vers les bons guichets.")
    await manager.get_by_label("Domaine").select_option("solidarite-insertion")
    await manager.get_by_label("Adresse 1 : numéro et voie").fill("2 rue Francis de Pressensé")
    await manager.get_by_label("Code postal").first.fill("69100")
    await manager.get_by_label("Date de début").fill((date.today() + timedelta(days=3)).isoformat())
    await manager.get_by_label("Nombre de places").fill("4")
    await manager.get_by_role("button", name="Enregistrer").click()
    match = re.search(r"/missions/(\d+)-", manager.url)
    assert match, manager.url
    return int(match[1])


async def test_a_manager_reaches_a_new_mission_in_clicks_and_sees_only_the_actions_its_status_allows(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    organisation_id = await seed(db)
    manager = await new_page(browser, web)
    await sign_in(manager, sink, MANAGER)
    mission_id = await new_mission_from_the_space(manager, organisation_id)

    await expect(manager.locator("#statut")).to_have_text("Brouillon")
    assert sorted(await state_buttons(manager)) == ["Annuler la mission", "Publier"]

    # A referent's validation, as the moderation queue records it: the mission is online.
    await db.execute("UPDATE missions SET status = 'published' WHERE id = $1", mission_id)
    await manager.reload()
    assert sorted(await state_buttons(manager)) == ["Annuler la mission", "Marquer complète", "Terminer la mission"]

    await manager.goto("/mon-espace")
    listed = manager.locator(f"#structure-{organisation_id} #mission-{mission_id}")
    await expect(listed.locator(".statut-mission")).to_have_text("Publiée")
    await listed.get_by_role("link", name=TITLE).click()
    await expect(manager.locator("h1")).to_have_text(TITLE)

    # A second tab, left open on the published mission and its edit form.
    stale = await manager.context.new_page()
    await stale.goto(manager.url)
    stale_edit = await manager.context.new_page()
    await stale_edit.goto(f"/missions/{mission_id}/modifier")

    # Cancelling asks first; "Revenir" changes nothing.
    await manager.get_by_role("link", name="Annuler la mission").click()
    await expect(manager.locator("h1")).to_have_text(f"Voulez-vous vraiment annuler la mission « {TITLE} » ?")
    await expect(manager.locator("#definitif")).to_contain_text("Cette action est définitive.")
    await manager.get_by_role("link", name="Revenir à la mission").click()
    await expect(manager.locator("#statut")).to_have_text("Publiée")
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "published"

    await manager.get_by_role("link", name="Annuler la mission").click()
    await manager.get_by_role("button", name="Confirmer l'annulation").click()
    await expect(manager.locator("#statut")).to_have_text("Annulée")
    await expect(manager.locator("#etats")).to_contain_text("son statut ne peut plus changer")
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "cancelled"

    # The stale tab still offers "Marquer complète": the click ends on the mission, which says why nothing changed.
    await stale.get_by_role("button", name="Marquer complète").click()
    await expect(stale).to_have_url(re.compile(rf"/missions/{mission_id}-[a-z0-9-]+\?refus=completer$"))
    await expect(stale.locator("#info")).to_have_text(
        "Cette mission est déjà « annulée » : elle ne peut pas être marquée complète.")
    await expect(stale.locator("#statut")).to_have_text("Annulée")

    # Saving the stale edit form: an error page that says what happened and leads back, no volunteer sign-up.
    await stale_edit.get_by_role("button", name="Enregistrer").click()
    await expect(stale_edit.locator("h1")).to_have_text("Action impossible")
    await expect(stale_edit.locator("main")).to_contain_text("Une mission annulée ne peut plus être modifiée.")
    await expect(stale_edit.get_by_role("link", name="S'inscrire comme bénévole")).to_have_count(0)
    await expect(stale_edit.get_by_role("link", name="Retour à mon espace")).to_be_visible()
    await stale_edit.get_by_role("link", name="Retour à la mission").click()
    await expect(stale_edit.locator("h1")).to_have_text(TITLE)

    # The organisation page groups its missions by status, with links.
    await manager.goto(f"/organisations/{organisation_id}-x")
    await expect(manager.locator("#missions-cancelled")).to_contain_text("Annulées (1)")
    await manager.locator("#missions-cancelled").get_by_role("link", name=TITLE).click()
    await expect(manager.locator("h1")).to_have_text(TITLE)
