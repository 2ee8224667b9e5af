"""The partner administration in a real headless Chromium against granian: an admin finds it from « Mon espace »,
creates a partner, creates a key that is shown once (and works on the API at once), then revokes it — the key is
refused right after. Every page passes the accessibility audit of tests/browser.py."""

from __future__ import annotations

import re

import asyncpg
import httpx
from playwright.async_api import Browser, expect
from redis.asyncio import Redis

from tests.servers import WebServer
from tests.test_legal_browser import new_page, sign_in

ADMIN = "admin.partenaires.navigateur@example.org"


async def test_an_admin_creates_a_partner_and_a_key_shown_once_then_revokes_it(
    browser: Browser, web: WebServer, redis: Redis, db: asyncpg.Connection
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized, is_admin) VALUES ($1, $1, true)", ADMIN)
    admin = await new_page(browser, web)
    await sign_in(admin, redis, ADMIN)
    await admin.goto("/mon-espace")
    await admin.get_by_role("link", name="Partenaires de l'API").click()
    await expect(admin.locator("h1")).to_have_text("Partenaires de l'API")
    await expect(admin.locator("#partenaires")).to_have_text("Aucun partenaire pour l'instant.")

    await admin.get_by_role("link", name="Ajouter un partenaire").click()
    await admin.get_by_label("Nom de la plateforme").fill("Plateforme du Rhône")
    await admin.get_by_label("Limite de requêtes par minute").fill("abc")
    await admin.get_by_role("button", name="Créer le partenaire").click()
    await expect(admin.locator("#resume-erreurs")).to_contain_text("nombre entier")
    await admin.get_by_label("Limite de requêtes par minute").fill("300")
    await admin.get_by_label("Sport pour tous").check()
    await admin.get_by_label("Départements").fill("69")
    await admin.get_by_role("button", name="Créer le partenaire").click()
    await expect(admin.locator("h1")).to_have_text("Partenaire « Plateforme du Rhône »")
    await expect(admin.locator("#info")).to_contain_text("Le partenaire est créé")

    await admin.get_by_label("Libellé de la nouvelle clé").fill("production")
    await admin.get_by_role("button", name="Créer une clé").click()
    await expect(admin.locator("#nouvelle-cle")).to_contain_text("ne sera plus jamais affichée")
    key = await admin.locator("#cle").inner_text()
    assert len(key) >= 40 and "?" not in admin.url and key not in admin.url
    async with httpx.AsyncClient(base_url=web.base_url) as api:
        ping = await api.get("/v0/ping", headers={"x-api-key": key})
        assert ping.status_code == 200 and ping.json()["data"]["partner"] == "Plateforme du Rhône"
        assert ping.headers["x-ratelimit-limit"] == "300"

        assert admin.url.endswith("/cles")  # the page answering the form's POST, which no reload repeats unasked
        await admin.goto(admin.url.removesuffix("/cles"))
        await expect(admin.locator("#nouvelle-cle")).to_have_count(0)
        assert key not in await admin.content()
        await admin.get_by_role("button", name=re.compile(r"Révoquer la clé")).click()
        await expect(admin.locator("#info")).to_contain_text("La clé est révoquée")
        await expect(admin.locator("#cles")).to_contain_text("Révoquée le")
        refused = await api.get("/v0/ping", headers={"x-api-key": key})
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"

    await admin.get_by_role("link", name="Tous les partenaires").click()
    await expect(admin.locator("#partenaires")).to_contain_text("Plateforme du Rhône")
