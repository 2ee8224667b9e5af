"""Roles administered without SQL: the `python -m app.roles` command and the /administration/roles page grant and
revoke referents, coordinators and admins, each change audited once; revocation counts from the next request."""

from __future__ import annotations

import asyncio
import html
import os
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.main import create_app
from app.roles import service
from app.roles.schemas import NATIONAL, Actor, Role, Scope
from app.roles.scopes import RoleRefused
from app.settings import Settings
from tests.conftest import ROOT
from tests.test_organisations import decide, post_form, register, sign_in, status_of

PAGE = "/administration/roles"
ADMIN = "admin.roles@example.org"


@pytest.fixture
async def other(settings: Settings) -> Any:
    """A second browser (another person), on its own app."""
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


def roles_command(*arguments: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, with the tests' environment (conftest put TEST_ENV in os.environ)."""
    return subprocess.run([sys.executable, "-m", "app.roles", *arguments], env=dict(os.environ), cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def granted(*arguments: str) -> str:
    result = roles_command("grant", *arguments)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def audit(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT c.actor_user_id, c.actor_label, u.email_normalized, c.action, c.role, c.scope FROM role_changes c"
        " LEFT JOIN users u ON u.id = c.subject_user_id ORDER BY c.id"
    )
    return [tuple(row) for row in rows]


async def referent_scopes(db: asyncpg.Connection, email: str) -> list[tuple[str | None, str | None]]:
    rows = await db.fetch(
        "SELECT s.department_code, s.region_code FROM referent_scopes s JOIN users u ON u.id = s.user_id"
        " WHERE u.email_normalized = $1 ORDER BY 1, 2", email,
    )
    return [(row[0], row[1]) for row in rows]


async def coordinated(db: asyncpg.Connection, email: str) -> list[str | None]:
    rows = await db.fetch(
        "SELECT s.department_code FROM coordinator_scopes s JOIN users u ON u.id = s.user_id"
        " WHERE u.email_normalized = $1 ORDER BY 1 NULLS FIRST", email,
    )
    return [row[0] for row in rows]


# The command ----------------------------------------------------------------------------------------------------


async def test_the_command_grants_to_a_new_address_lists_and_revokes_with_one_audit_row_per_change(
    db: asyncpg.Connection,
) -> None:
    output = granted("--email", "  Alice.Referente@Example.ORG ", "--role", "referent", "--departments", "69, 1")
    assert "Rôle attribué" in output and "departements:01,69" in output
    # The account exists now, under the address as sign-in normalises it: the person can ask for a link.
    assert await db.fetchval("SELECT count(*) FROM users WHERE email_normalized = 'alice.referente@example.org'") == 1
    assert await referent_scopes(db, "alice.referente@example.org") == [("01", None), ("69", None)]

    again = granted("--email", "alice.referente@example.org", "--role", "referent", "--departments", "01,69")
    assert "Rien à changer" in again
    more = granted("--email", "alice.referente@example.org", "--role", "referent", "--departments", "69,2A")
    assert "departements:2A" in more  # only what was added is recorded
    granted("--email", "alice.referente@example.org", "--role", "referent", "--region", "84")
    granted("--email", "bob.coord@example.org", "--role", "coordinator", "--national")

    listing = roles_command("list")
    assert listing.returncode == 0
    assert listing.stdout.splitlines() == [
        "coordinator\tbob.coord@example.org\tnational",
        "referent\tAlice.Referente@Example.ORG\tregion:84",  # as first typed, stripped
        "referent\tAlice.Referente@Example.ORG\tdepartements:01,2A,69",
    ]
    only = roles_command("list", "--role", "coordinator")
    assert only.stdout.splitlines() == ["coordinator\tbob.coord@example.org\tnational"]

    revoked = roles_command("revoke", "--email", "alice.referente@example.org", "--role", "referent",
                            "--departments", "69")
    assert revoked.returncode == 0 and "Rôle retiré" in revoked.stdout
    assert await referent_scopes(db, "alice.referente@example.org") == [("01", None), ("2A", None), (None, "84")]
    missing = roles_command("revoke", "--email", "alice.referente@example.org", "--role", "referent",
                            "--departments", "01,69")
    assert missing.returncode == 1
    assert "n'est pas référent·e de ces départements : 69" in missing.stderr
    assert await referent_scopes(db, "alice.referente@example.org") == [("01", None), ("2A", None), (None, "84")]
    nobody = roles_command("revoke", "--email", "nobody@example.org", "--role", "coordinator", "--national")
    assert nobody.returncode == 1 and "n'a pas la coordination nationale" in nobody.stderr

    alice = "alice.referente@example.org"
    assert await audit(db) == [
        (None, "ligne de commande", alice, "grant", "referent", "departements:01,69"),
        (None, "ligne de commande", alice, "grant", "referent", "departements:2A"),
        (None, "ligne de commande", alice, "grant", "referent", "region:84"),
        (None, "ligne de commande", "bob.coord@example.org", "grant", "coordinator", "national"),
        (None, "ligne de commande", alice, "revoke", "referent", "departements:69"),
    ]
    # Addresses go to stdout for the admin who asked, never to the logs (stderr holds only the refusals).
    assert "@" not in missing.stderr and "@" not in nobody.stderr


async def test_the_command_refuses_unknown_codes_and_scopes_a_role_cannot_have(db: asyncpg.Connection) -> None:
    cases = [
        (("--role", "referent", "--departments", "01,999,XY"), "Département(s) inconnu(s) : 999, XY"),
        (("--role", "referent", "--region", "99"), "Région inconnue : 99"),
        (("--role", "coordinator", "--region", "84"), "pas pour une région"),
        (("--role", "admin", "--departments", "69"), "choisissez la portée nationale"),
        (("--role", "referent",), "Indiquez la portée"),
        (("--role", "referent", "--departments", " , "), "Indiquez au moins un département"),
    ]
    for arguments, message in cases:
        result = roles_command("grant", "--email", "carole@example.org", *arguments)
        assert result.returncode == 1, arguments
        assert message in result.stderr, (arguments, result.stderr)
    bad_address = roles_command("grant", "--email", "not-an-address", "--role", "admin")
    assert bad_address.returncode == 1 and "adresse" in bad_address.stderr.lower()
    unknown_role = roles_command("grant", "--email", "carole@example.org", "--role", "boss", "--national")
    assert unknown_role.returncode == 2 and "invalid choice" in unknown_role.stderr
    # Nothing was written, not even the account.
    assert await db.fetchval("SELECT count(*) FROM users") == 0
    assert await db.fetchval("SELECT count(*) FROM role_changes") == 0


async def test_the_last_admin_cannot_be_revoked(db: asyncpg.Connection) -> None:
    granted("--email", "first.admin@example.org", "--role", "admin")
    assert "Rien à changer" in granted("--email", "first.admin@example.org", "--role", "admin")
    last = roles_command("revoke", "--email", "first.admin@example.org", "--role", "admin")
    assert last.returncode == 1 and "dernière personne à administrer" in last.stderr
    assert await db.fetchval("SELECT is_admin FROM users WHERE email_normalized = 'first.admin@example.org'")

    granted("--email", "second.admin@example.org", "--role", "admin")
    assert roles_command("revoke", "--email", "first.admin@example.org", "--role", "admin").returncode == 0
    assert roles_command("revoke", "--email", "first.admin@example.org", "--role", "admin").returncode == 1
    assert [row[3:] for row in await audit(db)] == [
        ("grant", "admin", "national"), ("grant", "admin", "national"), ("revoke", "admin", "national"),
    ]


async def test_concurrent_changes_neither_duplicate_a_grant_nor_remove_the_last_admin(
    settings: Settings, db: asyncpg.Connection
) -> None:
    granted("--email", "a.admin@example.org", "--role", "admin")
    granted("--email", "b.admin@example.org", "--role", "admin")
    engine = make_engine(settings.database_url, pool_size=0)

    async def change(action: Any, email: str, role: Role, scope: Scope) -> object:
        async with unit_of_work(engine) as session:
            outcome = await action(session, actor=Actor(user_id=None, label="test"), email=email, role=role,
                                   scope=scope)
            await asyncio.sleep(0.3)  # the transaction stays open while the other one runs
            return outcome

    try:
        # Each admin revokes the other at the same moment: the second waits for the first, then sees one admin left.
        outcomes = await asyncio.gather(change(service.revoke, "a.admin@example.org", Role.ADMIN, NATIONAL),
                                        change(service.revoke, "b.admin@example.org", Role.ADMIN, NATIONAL),
                                        return_exceptions=True)
        assert sum(isinstance(outcome, RoleRefused) for outcome in outcomes) == 1, outcomes
        assert await db.fetchval("SELECT count(*) FROM users WHERE is_admin") == 1
        # The same grant twice at once: one row, one audit entry; the other finds it held.
        scope = Scope(departments=("69",))
        twice = await asyncio.gather(change(service.grant, "c@example.org", Role.COORDINATOR, scope),
                                     change(service.grant, "c@example.org", Role.COORDINATOR, scope))
        assert sorted(outcome is None for outcome in twice) == [False, True]
        assert await coordinated(db, "c@example.org") == ["69"]
        assert await db.fetchval("SELECT count(*) FROM role_changes WHERE role = 'coordinator'") == 1
    finally:
        await engine.dispose()


# The page -------------------------------------------------------------------------------------------------------


def text_of(response: Any) -> str:
    """The page as a reader sees it (Jinja escapes apostrophes)."""
    return html.unescape(response.text)


async def grant_on_page(client: AsyncTestClient, form_page: str = PAGE, **fields: str) -> Any:
    body = {"email": "", "role": "referent", "scope": "national", "departments": "", "region": "", **fields}
    return await post_form(client, f"{PAGE}/attribuer", body, form_page)


async def revoke_on_page(client: AsyncTestClient, email: str, role: str, scope: str) -> Any:
    return await post_form(client, f"{PAGE}/retirer", {"email": email, "role": role, "scope": scope}, PAGE)


async def test_an_admin_grants_and_revokes_from_the_page_and_every_change_is_audited(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    admin_id = await sign_in(client, redis, db, ADMIN, admin=True)
    page = await client.get(PAGE)
    assert page.status_code == 200 and "Administration des rôles" in text_of(page)
    assert page.headers["cache-control"] == "no-store"
    assert 'value="84"' in text_of(page) and "Auvergne-Rhône-Alpes" in text_of(page)  # the regions to choose from

    done = await grant_on_page(client, email="Dana@Example.org", role="coordinator", scope="departements",
                               departments="69 ; 1")
    assert done.status_code == 303 and done.headers["location"] == f"{PAGE}?fait=attribue"
    assert await coordinated(db, "dana@example.org") == ["01", "69"]
    confirmed = await client.get(done.headers["location"])
    assert "Le rôle est attribué" in text_of(confirmed)
    assert "dana@example.org" not in done.headers["location"]
    assert "Dana@Example.org" in text_of(confirmed) and "Rhône (69)" in text_of(confirmed)  # listed with its scopes

    same = await grant_on_page(client, email="dana@example.org", role="coordinator", scope="departements",
                               departments="01,69")
    assert same.headers["location"] == f"{PAGE}?fait=deja"
    assert "rien n'a changé" in text_of(await client.get(same.headers["location"]))
    region = await grant_on_page(client, email="eve@example.org", role="referent", scope="region", region="84")
    assert region.status_code == 303
    assert await referent_scopes(db, "eve@example.org") == [(None, "84")]

    unknown = await grant_on_page(client, email="eve@example.org", role="referent", scope="departements",
                                  departments="69, 100")
    assert unknown.status_code == 422 and "Département(s) inconnu(s) : 100" in text_of(unknown)
    assert 'value="69, 100"' in text_of(unknown)  # the form keeps what was typed
    no_region = await grant_on_page(client, email="eve@example.org", role="referent", scope="region")
    assert no_region.status_code == 422 and "Choisissez la région." in text_of(no_region)
    bad_address = await grant_on_page(client, email="eve@", role="referent")
    assert bad_address.status_code == 422
    bad_role = await grant_on_page(client, email="eve@example.org", role="king")
    assert bad_role.status_code == 422 and "Choisissez le rôle" in text_of(bad_role)

    revoked = await revoke_on_page(client, "dana@example.org", "coordinator", "departements:69")
    assert revoked.status_code == 303 and revoked.headers["location"] == f"{PAGE}?fait=retire"
    assert await coordinated(db, "dana@example.org") == ["01"]
    twice = await revoke_on_page(client, "dana@example.org", "coordinator", "departements:69")
    assert twice.status_code == 409 and "ne coordonne pas ces départements : 69" in text_of(twice)
    forged = await revoke_on_page(client, "dana@example.org", "coordinator", "everything")
    assert forged.status_code == 422 and "portée n'est pas reconnue" in text_of(forged)

    assert await audit(db) == [
        (admin_id, ADMIN, "dana@example.org", "grant", "coordinator", "departements:01,69"),
        (admin_id, ADMIN, "eve@example.org", "grant", "referent", "region:84"),
        (admin_id, ADMIN, "dana@example.org", "revoke", "coordinator", "departements:69"),
    ]
    journal = text_of(await client.get(PAGE)).split('id="journal"', 1)[1]
    assert journal.index("Retrait du rôle coordination (Rhône (69))") < journal.index(
        "Attribution du rôle référent·e (région Auvergne-Rhône-Alpes)"
    )


async def test_the_page_keeps_the_last_admin(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    refused = await revoke_on_page(client, ADMIN, "admin", "national")
    assert refused.status_code == 409 and "dernière personne à administrer la plateforme" in text_of(refused)
    assert await db.fetchval("SELECT is_admin FROM users WHERE email_normalized = $1", ADMIN)

    assert (await grant_on_page(client, email="other.admin@example.org", role="admin")).status_code == 303
    assert (await revoke_on_page(client, ADMIN, "admin", "national")).status_code == 303
    # Their own admin role gone, the page is closed to them at the very next request.
    assert (await client.get(PAGE)).status_code == 403


async def test_only_admins_reach_the_page(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    anonymous = await client.get(PAGE, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/connexion?suite=%2Fadministration%2Froles"
    await sign_in(client, redis, db, "coordinator@example.org", departments=(None,), referent_of=(None,))
    assert (await client.get(PAGE)).status_code == 403
    attempt = await grant_on_page(client, "/mon-espace", email="coordinator@example.org", role="admin")
    assert attempt.status_code == 403
    assert not await db.fetchval("SELECT is_admin FROM users WHERE email_normalized = 'coordinator@example.org'")
    assert await db.fetchval("SELECT count(*) FROM role_changes") == 0


# Roles at work --------------------------------------------------------------------------------------------------


async def test_a_regional_referent_moderates_the_departments_of_the_region_only(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "manager@example.org")
    lyon, _ = await register(client)  # Rhône (69), in Auvergne-Rhône-Alpes (84)
    await post_form(client, f"/organisations/{lyon}/soumettre", {})
    marseille, _ = await register(client, name="Banque alimentaire des Bouches-du-Rhône", postal_code="13001")
    await post_form(client, f"/organisations/{marseille}/soumettre", {})

    granted("--email", "regional@example.org", "--role", "referent", "--region", "84")
    await sign_in(other, redis, db, "regional@example.org")
    queue = await other.get("/moderation/organisations")
    assert queue.status_code == 200
    assert "Restos du Cœur du Rhône" in text_of(queue) and "Bouches-du-Rhône" not in text_of(queue)
    forbidden = await decide(other, marseille, "valider")
    assert forbidden.status_code == 403 and "un autre département" in text_of(forbidden)
    assert (await decide(other, lyon, "valider")).status_code == 303
    assert [await status_of(db, lyon), await status_of(db, marseille)] == ["validated", "awaiting_validation"]


async def test_a_revoked_coordinator_is_refused_at_the_next_request_without_signing_out(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    granted("--email", "coord69@example.org", "--role", "coordinator", "--departments", "69")
    await sign_in(other, redis, db, "coord69@example.org")
    assert (await other.get("/coordination/urgences/nouvelle")).status_code == 200

    await sign_in(client, redis, db, ADMIN, admin=True)
    assert (await revoke_on_page(client, "coord69@example.org", "coordinator", "departements:69")).status_code == 303
    refused = await other.get("/coordination/urgences/nouvelle")
    assert refused.status_code == 403 and "réservée à d'autres rôles" in text_of(refused)
    assert (await other.get("/mon-espace")).status_code == 200  # still signed in


async def test_hostile_or_malformed_input_on_the_page_is_a_french_422_and_writes_nothing(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, ADMIN, admin=True)
    cases = [
        ({"email": "eve\x00@example.org"}, "caractère non autorisé"),
        ({"email": "eve@example.org", "scope": "departements", "departments": "69\x00"}, "caractère non autorisé"),
        ({"email": "eve@example.org", "scope": "departements", "departments": "69," * 600}, "ne doit pas dépasser"),
        ({"email": "eve@example.org", "scope": "departements", "departments": " 01 " * 121}, "plus de 120 éléments"),
        ({"email": "eve@example.org", "scope": "region", "region": "8\x004"}, "caractère non autorisé"),
        ({"email": "eve@example.org", "scope": "partout"}, "Choisissez la portée"),
        ({"email": "eve@example.org", "role": "admin", "scope": "region", "region": "84"}, "portée nationale"),
    ]
    for fields, message in cases:
        response = await grant_on_page(client, **fields)
        assert response.status_code == 422, fields
        assert message in text_of(response), (fields, text_of(response)[-2000:])
    hostile_revoke = await revoke_on_page(client, "eve@example.org", "referent", "region:\x00")
    assert hostile_revoke.status_code == 422
    without_token = await client.post(f"{PAGE}/attribuer", data={"email": "eve@example.org", "role": "admin",
                                                                   "scope": "national"})
    assert without_token.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM users") == 1  # the admin only
    assert await db.fetchval("SELECT count(*) FROM role_changes") == 0
