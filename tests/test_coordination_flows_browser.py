"""Coordinators' flows in a real headless Chromium against the web process served by granian: the mission picker
works without JavaScript, and the waiting pages (an export, a dispatch run) never refresh themselves — without
JavaScript they say so and offer "Actualiser", with it they follow the work through their JSON status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request, expect
from redis.asyncio import Redis

from app.applications import exports
from tests.browser import SCREENSHOTS
from tests.servers import WebServer
from tests.test_applications import session_cookies
from tests.test_coordination_flows import SLUG, aude_emergency, mission_at
from tests.test_dispatch_runs import emergency as rhone_emergency
from tests.test_emergencies import organisation_in

Opener = Callable[[str, bool], Awaitable[BrowserContext]]


@pytest.fixture
async def signed_in(browser: Browser, web: WebServer, redis: Redis) -> AsyncIterator[Opener]:
    """Opens a browser context signed in as `email`, with JavaScript on or off."""
    contexts: list[BrowserContext] = []

    async def open_as(email: str, javascript: bool) -> BrowserContext:
        [cookies] = await session_cookies(web.base_url, redis, [email])
        context = await browser.new_context(base_url=web.base_url, locale="fr-FR", java_script_enabled=javascript)
        context.set_default_timeout(15_000)
        session = cookies.split("; ")[0].removeprefix("renfort_session=")
        await context.add_cookies([{"name": "renfort_session", "value": session, "url": web.base_url}])
        contexts.append(context)
        return context

    yield open_as
    for context in contexts:
        await context.close()


async def manager_with_export(db: asyncpg.Connection, redis: Redis) -> str:
    user_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                "gestion@example.org")
    organisation_id = await organisation_in(db, "11069")
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    mission_id = await mission_at(db, organisation_id, "Distribution de repas", "11069")
    token = exports.new_token()
    await exports.register(redis, token, user_id, mission_id)
    return token


async def finish_export(redis: Redis, token: str) -> None:
    """What the export job does once the CSV is built."""
    request = await exports.find_any(redis, token)
    assert request is not None
    await exports.store(redis, token, request, "\ufeffPrénom;Nom\n".encode())


async def test_without_javascript_the_export_page_says_it_waits_and_offers_to_refresh(
    signed_in: Opener, redis: Redis, db: asyncpg.Connection
) -> None:
    token = await manager_with_export(db, redis)
    page = await (await signed_in("gestion@example.org", False)).new_page()
    await page.goto(f"/exports/{token}")
    await expect(page.locator("#attente")).to_have_text("Le fichier est en préparation.")
    await expect(page.get_by_text("Sans JavaScript, cette page ne se met pas à jour d'elle-même")).to_be_visible()
    assert await page.locator("meta[http-equiv]").count() == 0
    await expect(page.locator("#telecharger")).to_be_hidden()

    await finish_export(redis, token)
    await page.get_by_role("link", name="Actualiser").click()
    await expect(page.locator("#pret")).to_contain_text("Votre fichier est prêt")
    await expect(page.get_by_role("link", name="Télécharger le fichier CSV")).to_be_visible()


async def test_with_javascript_the_export_page_swaps_in_the_download_link_without_reloading(
    signed_in: Opener, redis: Redis, db: asyncpg.Connection
) -> None:
    token = await manager_with_export(db, redis)
    page = await (await signed_in("gestion@example.org", True)).new_page()
    loads: list[str] = []
    errors: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"/exports/{token}")
    status = page.locator("#attente")
    await expect(status).to_have_attribute("aria-live", "polite")
    await expect(page.locator("[data-manual]")).to_contain_text("suit l'avancement d'elle-même")
    await expect(page.locator("#telecharger")).to_be_hidden()

    await finish_export(redis, token)
    await expect(page.get_by_role("link", name="Télécharger le fichier CSV")).to_be_visible(timeout=15_000)
    await expect(status).to_have_text("Votre fichier est prêt. Il reste disponible une heure.")
    assert await page.locator("#telecharger").get_attribute("href") == f"/exports/{token}/candidatures.csv"
    assert len(loads) == 1 and errors == []
    await page.screenshot(path=str(SCREENSHOTS / "export-pret.png"), full_page=True)


async def planning_run(db: asyncpg.Connection) -> int:
    emergency_id = await rhone_emergency(db)
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ($1, $1)", "coordination69@example.org")
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) SELECT id, '69' FROM users"
                     " WHERE email = 'coordination69@example.org'")
    return int(await db.fetchval(
        "INSERT INTO dispatch_runs (emergency_id, parameters, status) VALUES ($1, $2, 'planning') RETURNING id",
        emergency_id, json.dumps({"pool": "departements", "domains": [], "availability": [], "max_km": 30,
                                  "mission_ids": []})))


@pytest.mark.parametrize("javascript", [False, True])
async def test_a_run_page_follows_its_planning_only_through_javascript_or_the_refresh_link(
    signed_in: Opener, db: asyncpg.Connection, javascript: bool
) -> None:
    run_id = await planning_run(db)
    page = await (await signed_in("coordination69@example.org", javascript)).new_page()
    await page.goto(f"/coordination/urgences/crue-du-rhone/mobilisation/{run_id}")
    await expect(page.locator("#statut")).to_contain_text("Calcul en cours")
    assert await page.locator("meta[http-equiv]").count() == 0
    await expect(page.locator("[data-status]")).to_have_attribute("aria-live", "polite")
    manual = page.locator("[data-manual]")
    if javascript:
        await expect(manual).to_contain_text("suit l'avancement d'elle-même")
    else:
        await expect(manual).to_contain_text("Sans JavaScript, cette page ne se met pas à jour d'elle-même")

    await db.execute("UPDATE dispatch_runs SET status = 'planned', planned_at = now(), counts = $2 WHERE id = $1",
                     run_id, json.dumps({"planned": 0}))
    if javascript:  # the script sees the run planned and reloads the page once
        await expect(page.locator("#statut")).to_have_text("Plan prêt, à engager", timeout=15_000)
    else:
        await page.wait_for_timeout(4_000)  # longer than the script's period: nothing moves by itself
        await expect(page.locator("#statut")).to_contain_text("Calcul en cours")
        await page.get_by_role("link", name="Actualiser").click()
        await expect(page.locator("#statut")).to_have_text("Plan prêt, à engager")
    await expect(page.get_by_role("link", name="Actualiser")).to_have_count(0)


async def test_without_javascript_a_coordinator_finds_a_mission_and_adds_it(
    signed_in: Opener, db: asyncpg.Connection
) -> None:
    await aude_emergency(db)
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ($1, $1)", "coord.aude@example.org")
    await db.execute("INSERT INTO coordinator_scopes (user_id, department_code) SELECT id, '11' FROM users"
                     " WHERE email = 'coord.aude@example.org'")
    carcassonne = await organisation_in(db, "11069")
    mission_id = await mission_at(db, carcassonne, "Distribution de repas chauds", "11069")
    await mission_at(db, carcassonne, "Nettoyage des berges", "11262")
    page = await (await signed_in("coord.aude@example.org", False)).new_page()
    await page.goto(f"/coordination/urgences/{SLUG}")

    await page.get_by_label("Rechercher une mission en ligne de l'urgence").fill("repas carcassonne")
    await page.get_by_role("button", name="Rechercher").click()
    found = page.locator("#resultats li")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("Distribution de repas chauds")
    await expect(found).to_contain_text("Secours local · Carcassonne (11) · 5 place(s) restante(s) sur 5")
    await found.get_by_role("button", name="Ajouter « Distribution de repas chauds »").click()

    await expect(page.locator("#info")).to_have_text("Mission rattachée.")
    await expect(page.locator("#missions")).to_contain_text("Distribution de repas chauds")
    await expect(page.get_by_label("Rechercher une mission en ligne de l'urgence")).to_have_value("repas carcassonne")
    assert await db.fetchval("SELECT emergency_slug FROM missions WHERE id = $1", mission_id) == SLUG

    await page.get_by_label("Rechercher une mission en ligne de l'urgence").fill("x")
    await page.get_by_role("button", name="Rechercher").click()
    await expect(page.locator("#recherche-erreur")).to_contain_text("Tapez au moins deux lettres")
    await expect(page.locator("#recherche")).to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=str(SCREENSHOTS / "rattacher-mission.png"), full_page=True)


POLL_MS = 3_000  # templates/static/waiting.js's period


class Polls:
    """The status requests a waiting page makes, and how many of them got an answer (or failed)."""

    def __init__(self, page: Page) -> None:
        self.page, self.asked, self.answered = page, 0, 0
        page.on("request", lambda request: self._count(request, asked=True))
        page.on("response", lambda response: self._count(response.request, asked=False))
        page.on("requestfailed", lambda request: self._count(request, asked=False))

    def _count(self, request: Request, *, asked: bool) -> None:
        if request.url.endswith("/etat"):
            if asked:
                self.asked += 1
            else:
                self.answered += 1

    async def next(self) -> None:
        """Moves the page's clock on until the script makes its next status request, and waits for its answer."""
        asked = self.asked
        for _ in range(100):
            if self.asked > asked and self.answered >= self.asked:
                await self.page.evaluate("1")  # the script has run its answer handler by the next round trip
                return
            if self.asked == asked:
                await self.page.clock.run_for(POLL_MS // 3)
            await self.page.wait_for_timeout(100)
        raise AssertionError("the waiting page asked nothing, or got no answer")

    async def expect_stopped(self, sentence: str) -> None:
        await expect(self.page.locator("#attente")).to_contain_text(sentence)
        await expect(self.page.get_by_role("link", name="Actualiser")).to_be_visible()
        await expect(self.page.locator("[data-manual]")).not_to_contain_text("suit l'avancement")
        asked = self.asked
        for _ in range(5):  # a minute of the page's time: a script still polling would ask several times
            await self.page.clock.run_for(4 * POLL_MS)
            await self.page.wait_for_timeout(200)
        assert self.asked == asked


async def followed_export(signed_in: Opener, redis: Redis, db: asyncpg.Connection) -> tuple[Polls, str]:
    """An export's waiting page with JavaScript on a clock the test moves, and the status requests it makes."""
    token = await manager_with_export(db, redis)
    page = await (await signed_in("gestion@example.org", True)).new_page()
    polls = Polls(page)
    await page.clock.install()
    await page.goto(f"/exports/{token}")
    await expect(page.locator("[data-manual]")).to_contain_text("suit l'avancement d'elle-même")
    await expect(page.get_by_role("link", name="Actualiser")).to_have_count(0)
    return polls, token


async def test_the_waiting_page_stops_asking_once_its_export_has_expired(
    signed_in: Opener, redis: Redis, db: asyncpg.Connection
) -> None:
    polls, token = await followed_export(signed_in, redis, db)
    await polls.next()
    await expect(polls.page.locator("#attente")).to_have_text("Le fichier est en préparation.")

    await redis.delete(exports.PREFIX + token)  # what its expiry does
    await polls.next()
    await polls.expect_stopped("Ce suivi n'existe plus")
    await polls.page.get_by_role("link", name="Actualiser").click()
    await expect(polls.page.get_by_text("Cet export n'existe pas ou plus")).to_be_visible()


async def test_the_waiting_page_stops_asking_once_signed_out(
    signed_in: Opener, redis: Redis, db: asyncpg.Connection
) -> None:
    polls, _token = await followed_export(signed_in, redis, db)
    await polls.page.context.clear_cookies()  # the session ended
    await polls.next()
    await polls.expect_stopped("Votre session a pris fin")


async def test_the_waiting_page_gives_up_after_ten_failed_attempts_in_a_row(
    signed_in: Opener, redis: Redis, db: asyncpg.Connection
) -> None:
    polls, _token = await followed_export(signed_in, redis, db)
    await polls.page.route("**/etat", lambda route: route.abort())
    for _ in range(10):
        await polls.next()
    await polls.expect_stopped("Le serveur ne répond pas")
    assert polls.asked == 10
