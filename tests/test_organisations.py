"""Organisations: registration with French messages, moderation by department, lifecycle and public showcase."""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.accounts import tokens
from app.accounts.schemas import LinkRecord
from app.main import create_app
from app.organisations.service import is_online
from app.organisations.validation import OrganisationInvalid, luhn_valid, validate_organisation
from app.settings import Settings
from tests.conftest import TEST_ENV
from tests.test_signin import confirm, csrf_token

VALID_SIRET = "73282932000074"  # a real, Luhn-valid SIRET


def organisation(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Les Restos du Cœur du Rhône",
        "type": "association",
        "rna": "W691234567",
        "siret": "",
        "address_line": "12 rue de la République",
        "postal_code": "69003",
        "commune_code": "",
        "description": "Aide alimentaire et accompagnement des personnes en difficulté à Lyon.",
        "donation_url": "https://dons.example.org/restos",
    }
    body.update(overrides)
    return body


async def sign_in(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, email: str,
                  *, admin: bool = False, departments: tuple[str | None, ...] = (),
                  referent_of: tuple[str | None, ...] = ()) -> int:
    """Signs `email` in through the real link confirmation (the e-mail step is tested in test_signin.py).
    `departments`: where the person coordinates, `referent_of`: where they moderate (None: national)."""
    user_id: int = await db.fetchval(
        "INSERT INTO users (email, email_normalized, is_admin) VALUES ($1, $1, $2) "
        "ON CONFLICT (email_normalized) DO UPDATE SET is_admin = $2 RETURNING id", email, admin
    )
    for department in departments:
        await db.execute(
            "INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, $2)", user_id, department
        )
    for department in referent_of:
        await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, $2)", user_id, department)
    token_id = tokens.new_id()
    await redis.set(tokens.link_key(token_id), msgspec.json.encode(LinkRecord(email=email, email_normalized=email)))
    response = await confirm(client, tokens.mint(TEST_ENV["SECRET_KEY"], token_id, int(time.time()) + 900))
    assert response.status_code == 303
    return user_id


async def post_form(client: AsyncTestClient, path: str, data: dict[str, Any], page: str = "/mon-espace") -> Any:
    token = csrf_token((await client.get(page)).text)
    return await client.post(path, data={**data, "_csrf_token": token}, follow_redirects=False)


async def register(client: AsyncTestClient, **overrides: Any) -> tuple[int, str]:
    response = await post_form(client, "/organisations/nouvelle", organisation(**overrides), "/organisations/nouvelle")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    match = re.fullmatch(r"/organisations/(\d+)-([a-z0-9-]+)", location)
    assert match, location
    return int(match[1]), location


async def decide(client: AsyncTestClient, organisation_id: int, decision: str, reason: str = "") -> Any:
    data = {"reason": reason} if reason else {}
    return await post_form(client, f"/moderation/organisations/{organisation_id}/{decision}", data)


async def status_of(db: asyncpg.Connection, organisation_id: int) -> str:
    status: str = await db.fetchval("SELECT status FROM organisations WHERE id = $1", organisation_id)
    return status


@pytest.fixture
async def other(settings: Settings) -> Any:
    """A second browser (another person), on its own app."""
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


# Validation ----------------------------------------------------------------------------------------------------


@pytest.fixture
def postcodes(client: AsyncTestClient) -> Any:
    return client.app.state.web.postcodes


def errors_for(postcodes: Any, **overrides: Any) -> dict[str, str]:
    with pytest.raises(OrganisationInvalid) as raised:
        validate_organisation(organisation(**overrides), postcodes)
    return raised.value.errors


def test_luhn_checks_siret_digits() -> None:
    assert luhn_valid(VALID_SIRET) and not luhn_valid("73282932000075")


async def test_identifiers_are_checked_by_format_and_luhn_key(postcodes: Any) -> None:
    valid = validate_organisation(organisation(rna="w 691234567"), postcodes)
    assert valid.rna == "W691234567" and valid.commune_code == "69123"
    assert errors_for(postcodes, rna="W12345") == {
        "rna": "Le numéro RNA commence par W suivi de 9 chiffres, par exemple W751234567."
    }
    assert errors_for(postcodes, rna="", siret="") == {
        "rna": "Une association indique son numéro RNA ou son numéro SIRET."
    }
    assert errors_for(postcodes, rna="", siret="1234567890123") == {"siret": "Le numéro SIRET compte 14 chiffres."}
    assert errors_for(postcodes, rna="", siret="73282932000075") == {
        "siret": "Ce numéro SIRET n'existe pas : vérifiez les chiffres (clé de contrôle incorrecte)."
    }
    assert validate_organisation(organisation(rna="", siret="732 829 320 00074"), postcodes).siret == VALID_SIRET
    assert errors_for(postcodes, type="organisation_privee", rna="") == {
        "siret": "Une organisation privée indique son numéro SIRET."
    }
    assert errors_for(postcodes, type="collectivite") == {"rna": "Le numéro RNA ne concerne que les associations."}
    public = validate_organisation(organisation(type="organisation_publique", rna=""), postcodes)
    assert public.rna is None and public.siret is None


async def test_every_field_gets_its_own_french_message(postcodes: Any) -> None:
    errors = errors_for(postcodes, name=" ", type="club", address_line="", postal_code="690", description="Court.",
                        donation_url="http://dons.example.org")
    assert errors == {
        "name": "Indiquez le nom de la structure.",
        "type": "Choisissez le type de structure.",
        "address_line": "Indiquez l'adresse (numéro et voie).",
        "postal_code": "Saisissez un code postal à 5 chiffres.",
        "description": "Présentez la structure en quelques phrases (20 caractères au moins).",
        "donation_url": "Saisissez une adresse web sécurisée, commençant par https://.",
    }
    assert errors_for(postcodes, postal_code="51300") == {
        "commune_code": "Plusieurs communes ont ce code postal : choisissez la vôtre."
    }
    assert validate_organisation(organisation(donation_url=""), postcodes).donation_url is None


async def test_the_registration_page_shows_the_messages_and_offers_the_communes(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    anonymous = await client.get("/organisations/nouvelle", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/connexion?suite=%2Forganisations%2Fnouvelle"
    await sign_in(client, redis, db, "marie@example.org")
    response = await post_form(client, "/organisations/nouvelle", organisation(rna="X1", postal_code="51300"),
                               "/organisations/nouvelle")
    assert response.status_code == 422
    assert "Le numéro RNA commence par W suivi de 9 chiffres" in response.text
    assert "Plusieurs communes ont ce code postal" in response.text
    assert response.text.count('<option value="51') > 10  # the communes of 51300 to choose from
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0
    no_csrf = await client.post("/organisations/nouvelle", data=organisation(), follow_redirects=False)
    assert no_csrf.status_code == 403


# Lifecycle and roles --------------------------------------------------------------------------------------------


async def test_full_lifecycle_with_allowed_and_refused_transitions(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    manager_id = await sign_in(client, redis, db, "manager@example.org")
    organisation_id, path = await register(client)
    assert path == f"/organisations/{organisation_id}-les-restos-du-coeur-du-rhone"
    assert await status_of(db, organisation_id) == "draft"
    assert await db.fetchval("SELECT user_id FROM organisation_managers WHERE organisation_id = $1",
                             organisation_id) == manager_id
    space = await client.get("/mon-espace")
    assert "Gestion de la structure : Les Restos du Cœur du Rhône" in space.text

    # The role is live at once, without signing in again: the manager edits and submits.
    edited = await post_form(client, f"/organisations/{organisation_id}/modifier",
                             organisation(name="Restos du Cœur Lyon"), f"/organisations/{organisation_id}/modifier")
    assert edited.status_code == 303
    assert edited.headers["location"] == f"/organisations/{organisation_id}-restos-du-coeur-lyon"
    await sign_in(other, redis, db, "referent69@example.org", referent_of=("69",))
    assert (await decide(other, organisation_id, "valider")).status_code == 409  # a draft is not under review
    assert (await post_form(client, f"/organisations/{organisation_id}/soumettre", {})).status_code == 303
    assert await status_of(db, organisation_id) == "awaiting_validation"
    again = await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    assert again.status_code == 409 and "ne peut pas être soumise à validation" in again.text
    locked = await post_form(client, f"/organisations/{organisation_id}/modifier", organisation(), "/mon-espace")
    assert locked.status_code == 409

    queue = await other.get("/moderation/organisations")
    assert queue.status_code == 200 and "Restos du Cœur Lyon" in queue.text
    missing_reason = await decide(other, organisation_id, "refuser")
    assert missing_reason.status_code == 422 and "Indiquez le motif" in missing_reason.text
    assert (await decide(other, organisation_id, "refuser", "Le numéro RNA ne correspond pas.")).status_code == 303
    assert await status_of(db, organisation_id) == "refused"
    preview = await client.get(f"/organisations/{organisation_id}-restos-du-coeur-lyon")
    assert preview.status_code == 200 and "Le numéro RNA ne correspond pas." in preview.text

    unchanged = await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    assert unchanged.status_code == 409 and "Modifiez la structure" in unchanged.text
    await post_form(client, f"/organisations/{organisation_id}/modifier", organisation(name="Restos du Cœur Lyon",
                    rna="W691234568"), f"/organisations/{organisation_id}/modifier")
    assert (await post_form(client, f"/organisations/{organisation_id}/soumettre", {})).status_code == 303
    assert (await decide(other, organisation_id, "valider")).status_code == 303
    assert await status_of(db, organisation_id) == "validated" and is_online("validated")
    assert (await decide(other, organisation_id, "valider")).status_code == 409
    assert (await decide(other, organisation_id, "retablir")).status_code == 409

    assert (await decide(other, organisation_id, "suspendre", "Signalements en cours d'examen.")).status_code == 303
    assert await status_of(db, organisation_id) == "suspended" and not is_online("suspended")
    assert (await decide(other, organisation_id, "refuser", "Non.")).status_code == 409
    assert (await decide(other, organisation_id, "retablir")).status_code == 303
    assert await status_of(db, organisation_id) == "validated"
    assert (await decide(other, organisation_id, "supprimer")).status_code == 404


async def test_a_manager_cannot_touch_another_organisation(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    theirs, _ = await register(client)
    await sign_in(other, redis, db, "second@example.org")
    await register(other, name="Secours Populaire Lyon")
    assert (await other.get(f"/organisations/{theirs}/modifier")).status_code == 403
    edit = await post_form(other, f"/organisations/{theirs}/modifier", organisation(name="Pris"), "/mon-espace")
    assert edit.status_code == 403
    assert (await post_form(other, f"/organisations/{theirs}/soumettre", {})).status_code == 403
    assert (await other.get(f"/organisations/{theirs}-x")).status_code == 404  # not even a preview
    assert (await other.get("/moderation/organisations")).status_code == 403  # managers do not moderate
    assert await db.fetchval("SELECT name FROM organisations WHERE id = $1", theirs) == "Les Restos du Cœur du Rhône"


async def test_only_moderators_of_the_department_decide(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "lyon@example.org")
    lyon, _ = await register(client)
    await post_form(client, f"/organisations/{lyon}/soumettre", {})
    marseille, _ = await register(client, name="Banque alimentaire des Bouches-du-Rhône", postal_code="13001")
    await post_form(client, f"/organisations/{marseille}/soumettre", {})
    assert await db.fetchval(
        "SELECT c.department_code FROM organisations o JOIN communes c ON c.code = o.commune_code WHERE o.id = $1",
        marseille,
    ) == "13"

    await sign_in(other, redis, db, "referent13@example.org", referent_of=("13",))
    queue = await other.get("/moderation/organisations")
    assert "Banque alimentaire" in queue.text and "Restos" not in queue.text
    forbidden = await decide(other, lyon, "valider")
    assert forbidden.status_code == 403 and "un autre département" in forbidden.text
    assert await status_of(db, lyon) == "awaiting_validation"
    assert (await other.get(f"/organisations/{lyon}-les-restos-du-coeur-du-rhone")).status_code == 404

    await sign_in(other, redis, db, "national@example.org", referent_of=(None,))
    assert (await decide(other, lyon, "valider")).status_code == 303
    await sign_in(other, redis, db, "admin@example.org", admin=True)
    assert "Banque alimentaire" in (await other.get("/moderation/organisations")).text
    assert (await decide(other, marseille, "refuser", "Adresse incomplète.")).status_code == 303
    assert [await status_of(db, lyon), await status_of(db, marseille)] == ["validated", "refused"]


async def test_a_referent_does_not_moderate_an_organisation_they_manage(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "referente.gestionnaire@example.org", referent_of=("69",))
    own, _ = await register(client)
    await post_form(client, f"/organisations/{own}/soumettre", {})
    queue = await client.get("/moderation/organisations")
    assert "Vous gérez cette structure" in queue.text and f"/moderation/organisations/{own}/valider" not in queue.text
    refused = await decide(client, own, "valider")
    assert refused.status_code == 403 and "une autre personne de la modération" in refused.text
    assert await status_of(db, own) == "awaiting_validation"


# Showcase -------------------------------------------------------------------------------------------------------


async def test_the_showcase_is_public_only_while_validated(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "owner@example.org")
    organisation_id, path = await register(client)
    preview = await client.get(path)
    assert preview.status_code == 200 and "Aperçu : statut « Brouillon »" in preview.text
    assert (await other.get(path)).status_code == 404  # anonymous
    await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    assert (await other.get(path)).status_code == 404

    await db.execute("UPDATE organisations SET status = 'validated' WHERE id = $1", organisation_id)
    public = await other.get(path)
    assert public.status_code == 200 and "Aperçu" not in public.text
    assert "Les Restos du Cœur du Rhône" in public.text and "Association" in public.text
    assert "Lyon (69)" in public.text and "Aide alimentaire" in public.text
    assert 'href="https://dons.example.org/restos"' in public.text
    assert "Soumettre" not in public.text and "csrf" not in public.text
    wrong_slug = await other.get(f"/organisations/{organisation_id}-ancien-nom", follow_redirects=False)
    assert wrong_slug.status_code == 301 and wrong_slug.headers["location"] == path
    for missing in ("/organisations/999999-x", "/organisations/abc", f"/organisations/{organisation_id}0"):
        assert (await other.get(missing)).status_code == 404

    await db.execute("UPDATE organisations SET status = 'suspended' WHERE id = $1", organisation_id)
    assert (await other.get(path)).status_code == 404
    assert (await client.get(path)).status_code == 200  # its manager still sees it
