"""The partner administration: admins only; a partner's settings checked field by field with French messages (never
a 500, whatever is sent); the feed password is write-only; a key is shown once and revoked with a form; the last
imports are listed with their first refusals."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from tests.partner_fixtures import create_partner
from tests.test_organisations import post_form, sign_in

ADMIN = "admin.partenaires@example.org"
PAGE = "/administration/partenaires"


def partner_form(**overrides: Any) -> dict[str, Any]:
    return {"nom": "Plateforme Engagée", "email": "contact@engagee.fr", "site": "https://engagee.fr", "active": "1",
            "limite": "600", "domaines": ["sport-pour-tous", "art-culture"], "departements": "69, 2a, 974",
            "structures": "", "diffuse_partenaires": "1", "flux_url": "https://engagee.fr/flux.xml",
            "flux_identifiant": "renfort", "flux_mot_de_passe": "s3cret-du-flux", "flux_intervalle": "60",
            **overrides}


async def create(client: AsyncTestClient[Litestar], **overrides: Any) -> Any:
    return await post_form(client, f"{PAGE}/nouveau", partner_form(**overrides), f"{PAGE}/nouveau")


async def test_the_pages_are_for_admins_only(client: AsyncTestClient[Litestar], redis: Redis,
                                              db: asyncpg.Connection) -> None:
    partner_id = await create_partner(db)
    signed_out = await client.get(PAGE, follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/connexion")
    await sign_in(client, redis, db, "coordination@example.org", departments=("69",))
    for path in (PAGE, f"{PAGE}/nouveau", f"{PAGE}/{partner_id}"):
        assert (await client.get(path)).status_code == 403
    refused = await post_form(client, f"{PAGE}/{partner_id}/cles", {})
    assert refused.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM partner_api_keys") == 0


async def test_an_admin_creates_a_partner_with_its_rules_and_finds_it_listed(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " SELECT 'Club', 'association', 'W111234567', 'Rue', postal_codes[1], code, 'Aide.', 'validated'"
        " FROM communes WHERE code = '69123' RETURNING id")
    response = await create(client, structures=str(organisation_id))
    assert response.status_code == 303, response.text
    partner = await db.fetchrow("SELECT * FROM partners")
    assert response.headers["location"] == f"{PAGE}/{partner['id']}?fait=cree"
    assert (partner["name"], partner["rate_limit_per_minute"], partner["active"]) == ("Plateforme Engagée", 600, True)
    assert partner["diffusion_domains"] == ["art-culture", "sport-pour-tous"]
    assert partner["diffusion_departments"] == ["2A", "69", "974"]
    assert partner["diffusion_organisation_ids"] == [organisation_id]
    assert partner["diffuses_partner_missions"] and partner["feed_interval_minutes"] == 60
    assert partner["feed_password"] == "s3cret-du-flux"
    assert await redis.get("{renfort:partners}:version") == b"1"  # bumped after the commit

    page = (await client.get(response.headers["location"])).text
    assert "Le partenaire est créé" in page and "s3cret-du-flux" not in page
    listing = (await client.get(PAGE)).text
    assert "Plateforme Engagée" in listing and "Aucun import" in listing


@pytest.mark.parametrize(("field", "value", "message"), [
    ("nom", "", "Indiquez le nom"),
    ("nom", "Plate\x00forme", "caractère non autorisé"),
    ("nom", "x" * 5_000, "ne doit pas dépasser 150"),
    ("email", "pas-une-adresse", "adresse e-mail valide"),
    ("site", "javascript:alert(1)", "http:// ou https://"),
    ("limite", "-5", "entre 1 et 100"),
    ("limite", "beaucoup", "nombre entier"),
    ("limite", "9" * 5_000, "ne doit pas dépasser"),
    ("domaines", ["inconnu"], "liste proposée"),
    ("departements", "69, 99", "inconnu(s) : 99"),
    ("departements", "6" * 5_000, "caractères au plus"),
    ("structures", "12, abc", "numéros des structures"),
    ("structures", "424242", "introuvable(s) : 424242"),
    ("flux_url", "ftp://engagee.fr/flux.xml", "http:// ou https://"),
    ("flux_url", "file:///etc/passwd", "http:// ou https://"),
    ("flux_mot_de_passe", "p" * 5_000, "ne doit pas dépasser 200"),
    ("flux_intervalle", "5", "entre 15 et 10"),
])
async def test_each_wrong_field_gets_its_french_message_and_nothing_is_saved(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection, field: str, value: Any, message: str
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    response = await create(client, **{field: value})
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text
    assert await db.fetchval("SELECT count(*) FROM partners") == 0


async def test_the_feed_password_is_write_only_kept_when_empty_and_cleared_on_demand(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    location = (await create(client)).headers["location"]
    page = location.split("?", 1)[0]
    shown = (await client.get(page)).text
    assert "s3cret-du-flux" not in shown and "Un mot de passe est enregistré" in shown

    kept = await post_form(client, page, partner_form(flux_mot_de_passe="", nom="Nouveau nom"), page)
    assert kept.status_code == 303
    assert tuple(await db.fetchrow("SELECT name, feed_password FROM partners")) == ("Nouveau nom", "s3cret-du-flux")
    refused = await post_form(client, page, partner_form(flux_mot_de_passe="motdepasse-refuse-42", limite="0"), page)
    assert refused.status_code == 422 and "motdepasse-refuse-42" not in refused.text
    cleared = await post_form(client, page, partner_form(flux_mot_de_passe="", effacer_mot_de_passe="1"), page)
    assert cleared.status_code == 303
    assert await db.fetchval("SELECT feed_password FROM partners") is None


async def test_a_key_is_shown_once_listed_by_its_prefix_and_revoked_by_a_form(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Clés")
    page = f"{PAGE}/{partner_id}"
    made = await post_form(client, f"{page}/cles", {"libelle": "recette"}, page)
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    key = made.text.split('<code id="cle">', 1)[1].split("</code>", 1)[0]
    row = await db.fetchrow("SELECT id, prefix, label FROM partner_api_keys")
    assert row["label"] == "recette" and key.startswith(row["prefix"])
    again = (await client.get(page)).text
    assert key not in again and f"{row['prefix']}…" in again and "recette" in again
    assert key not in str(client.cookies)

    without_csrf = await client.post(f"{page}/cles/{row['id']}/revoquer", follow_redirects=False)
    assert without_csrf.status_code == 403
    revoked = await post_form(client, f"{page}/cles/{row['id']}/revoquer", {}, page)
    assert revoked.headers["location"] == f"{page}?fait=revoquee"
    assert await db.fetchval("SELECT revoked_at IS NOT NULL FROM partner_api_keys")
    twice = await post_form(client, f"{page}/cles/{row['id']}/revoquer", {}, page)
    assert twice.headers["location"] == f"{page}?fait=deja-revoquee"
    other_partner = await create_partner(db, "Autre")
    elsewhere = await post_form(client, f"{PAGE}/{other_partner}/cles/{row['id']}/revoquer", {}, page)
    assert elsewhere.headers["location"].endswith("fait=deja-revoquee")
    assert "Révoquée le" in (await client.get(page)).text
    hostile = await post_form(client, f"{page}/cles", {"libelle": "\x00" * 3}, page)
    assert hostile.status_code == 422 and "caractère non autorisé" in hostile.text


async def test_the_last_imports_are_shown_with_their_first_refusals(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    partner_id = await create_partner(db, "Flux")
    for number in range(25):
        await db.execute(
            "INSERT INTO partner_imports (partner_id, status, started_at, received, created, refused, refusals)"
            " VALUES ($1, 'succeeded', now() - make_interval(mins => $2), 10, 8, 2, $3::jsonb)",
            partner_id, number, f'[{{"clientId": "m-{number}", "reason": "Date de début invalide"}}]')
    await db.execute("INSERT INTO partner_imports (partner_id, status, error)"
                     " VALUES ($1, 'failed', 'Flux injoignable')", partner_id)
    page = (await client.get(f"{PAGE}/{partner_id}")).text
    assert "Les 20 derniers imports" in page and "Flux injoignable" in page and "Échoué" in page
    assert "m-0</code> : Date de début invalide" in page and "m-18<" in page and "m-19<" not in page
    assert "Échoué" in (await client.get(PAGE)).text


async def test_unknown_partner_is_a_404(client: AsyncTestClient[Litestar], redis: Redis,
                                        db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    assert (await client.get(f"{PAGE}/999")).status_code == 404
    assert (await post_form(client, f"{PAGE}/999", partner_form(), PAGE)).status_code == 404
    assert (await post_form(client, f"{PAGE}/999/cles", {}, PAGE)).status_code == 404


async def test_importing_the_feed_now_asks_for_one_run_and_without_a_feed_says_why(
    client: AsyncTestClient[Litestar], redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    with_feed = await create_partner(db, "Avec flux", feed_url="https://flux.example.org/missions.xml")
    page = f"{PAGE}/{with_feed}"
    assert 'id="importer"' in (await client.get(page)).text
    for _ in range(2):  # asking twice makes one run
        asked = await post_form(client, f"{page}/importer", {}, page)
        assert asked.headers["location"] == f"{page}?fait=import-demande"
    assert await db.fetchval("SELECT count(*) FROM partner_imports WHERE partner_id = $1 AND status = 'running'",
                             with_feed) == 1
    assert "En cours" in (await client.get(page)).text

    without = await create_partner(db, "Sans flux")
    assert 'id="importer"' not in (await client.get(f"{PAGE}/{without}")).text
    refused = await post_form(client, f"{PAGE}/{without}/importer", {}, page)
    assert refused.status_code == 422 and "Aucun flux XML" in refused.text
