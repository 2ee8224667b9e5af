"""Runtime switches on a real Redis and PostgreSQL: maintenance closes everything but the essential paths (checked
against the data list itself), organisations read-only closes their writes and keeps their pages, the admin page
and the command flip them (admins only) and every change lands once in the journal."""

from __future__ import annotations

import html
import os
import subprocess
import sys
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.switches.board import SwitchBoard
from app.switches.paths import ESSENTIAL, ORGANISATION_WRITES
from app.switches.schemas import COMMAND, Switch
from app.switches.store import KEYS, SwitchStore
from ops.services import free_port
from tests.conftest import ROOT
from tests.factories import signup
from tests.helpers import eventually
from tests.test_organisations import organisation, post_form, register, sign_in

PAGE = "/administration/interrupteurs"
Request = tuple[str, str]

# For each essential pattern, requests a citizen, a coordinator or a probe really sends. The test below fails when a
# pattern is added without its requests here.
ESSENTIAL_REQUESTS: dict[str, list[Request]] = {
    "/inscription": [("GET", "/inscription"), ("GET", "/inscription/?urgence=crue"), ("POST", "/inscription")],
    "/inscription/merci": [("GET", "/inscription/merci?recu=abc")],
    "/inscription/confirmer": [("GET", "/inscription/confirmer?jeton=abc"), ("POST", "/inscription/confirmer")],
    "/api/v1/volunteers": [("POST", "/api/v1/volunteers")],
    "/api/v1/receipts/*": [("GET", "/api/v1/receipts/abc")],
    "/api/v1/communes": [("GET", "/api/v1/communes?postal_code=69003")],
    "/": [("GET", "/")],
    "/urgence/**": [("GET", "/urgence/crue-de-la-seine"), ("GET", "/urgence/crue-de-la-seine?code_postal=75001")],
    "/connexion": [("GET", "/connexion"), ("POST", "/connexion")],
    "/connexion/lien": [("GET", "/connexion/lien?jeton=abc"), ("POST", "/connexion/lien")],
    "/mon-espace": [("GET", "/mon-espace")],
    "/deconnexion": [("POST", "/deconnexion")],
    "/coordination/**": [("GET", "/coordination"), ("GET", "/coordination/donnees"),
                         ("GET", "/coordination/urgences"), ("POST", "/coordination/urgences/nouvelle"),
                         ("GET", "/coordination/urgences/crue/mobilisation"),
                         ("POST", "/coordination/urgences/crue/mobilisation/1/engager")],
    "/mobilisation/*": [("GET", "/mobilisation/accepter?jeton=abc"), ("POST", "/mobilisation/accepter")],
    "/administration/interrupteurs/**": [("GET", PAGE), ("POST", PAGE)],
    "/ops/**": [("GET", "/ops/dead-letters")],
    "/health": [("GET", "/health")],
    "/ready": [("GET", "/ready")],
    "/metrics": [("GET", "/metrics")],
    "/static/**": [("GET", "/static/renfort.css")],
}
CLOSED_BY_MAINTENANCE: list[Request] = [
    ("GET", "/missions"), ("GET", "/missions/1-tri"), ("POST", "/missions/1/candidater"),
    ("GET", "/organisations/nouvelle"), ("GET", "/organisations/1-restos"), ("GET", "/mon-espace/profil"),
    ("GET", "/mon-espace/candidatures"), ("GET", "/inscription/structure"), ("GET", "/administration/roles"),
    ("GET", "/moderation/organisations"),
]
ORGANISATION_WRITE_REQUESTS: dict[str, list[Request]] = {
    "/organisations/**": [("POST", "/organisations/nouvelle"), ("POST", "/organisations/1/modifier"),
                          ("POST", "/organisations/1/soumettre"), ("POST", "/organisations/1/gestionnaires/inviter"),
                          ("POST", "/organisations/1/gestionnaires/quitter"),
                          ("POST", "/organisations/1/missions/nouvelle")],
    "/inscription/structure": [("POST", "/inscription/structure")],
    "/invitation": [("POST", "/invitation")],
    "/missions/*/modifier": [("POST", "/missions/1/modifier")],
    "/missions/*/statut/*": [("POST", "/missions/1/statut/publier")],
    "/missions/*/dupliquer": [("POST", "/missions/1/dupliquer")],
    "/missions/*/priorite": [("POST", "/missions/1/priorite")],
    "/missions/*/candidatures/**": [("POST", "/missions/1/candidatures/decision"),
                                    ("POST", "/missions/1/candidatures/message"),
                                    ("POST", "/missions/1/candidatures/export")],
    "/moderation/**": [("POST", "/moderation/organisations/1/valider"), ("POST", "/moderation/missions/1/valider")],
    "/modeles-missions/**": [("POST", "/modeles-missions/nouveau"), ("POST", "/modeles-missions/1/modifier")],
}
OPEN_DURING_READ_ONLY: list[Request] = [
    ("GET", "/organisations/nouvelle"), ("GET", "/organisations/1/modifier"), ("GET", "/organisations/1-restos"),
    ("GET", "/moderation/organisations"), ("GET", "/missions"), ("GET", "/missions/1/candidatures"),
    ("POST", "/missions/1/candidater"), ("POST", "/mon-espace/candidatures/1/retirer"), ("POST", "/inscription"),
    ("POST", "/connexion"),
]


def board(client: AsyncTestClient) -> SwitchBoard:
    switches: SwitchBoard = client.app.state.web.switches
    return switches


async def turn(client: AsyncTestClient, redis: Redis, switch: Switch, on: bool) -> None:
    """Through Redis, as another process would; this process's sampler takes it up within a second."""
    await SwitchStore(redis).turn(switch, on, actor=COMMAND)
    await eventually(lambda: (switch in board(client).on) == on, timeout=5, interval=0.1)


async def send(client: AsyncTestClient, method: str, path: str, **options: Any) -> Any:
    if method == "POST" and path == "/api/v1/volunteers":
        options.setdefault("json", signup())
    return await client.request(method, path, follow_redirects=False, **options)


def text(response: Any) -> str:
    return html.unescape(response.text)


def test_every_essential_pattern_has_requests_to_prove_it() -> None:
    assert set(ESSENTIAL_REQUESTS) == {rule.pattern for rule in ESSENTIAL}
    assert set(ORGANISATION_WRITE_REQUESTS) == {rule.pattern for rule in ORGANISATION_WRITES}


async def test_maintenance_closes_every_other_page_and_keeps_each_essential_path_open(
    client: AsyncTestClient, redis: Redis
) -> None:
    for method, path in CLOSED_BY_MAINTENANCE:
        assert (await send(client, method, path)).status_code != 503, (method, path)
    await turn(client, redis, Switch.MAINTENANCE, True)

    for pattern, requests in ESSENTIAL_REQUESTS.items():
        for method, path in requests:
            response = await send(client, method, path)
            assert response.status_code != 503, (pattern, method, path, response.status_code)
    accepted = await send(client, "POST", "/api/v1/volunteers")
    assert accepted.status_code == 202  # signing up really works, not only "not refused"

    for method, path in CLOSED_BY_MAINTENANCE:
        response = await send(client, method, path)
        assert response.status_code == 503, (method, path)
        assert response.headers["retry-after"] == "300" and response.headers["cache-control"] == "no-store"
        assert "Renfort est en maintenance" in text(response)
        assert "L'inscription des bénévoles, les pages d'urgence et la coordination restent ouvertes" in text(response)
    api = await send(client, "GET", "/api/v1/missions?code_postal=69003")
    assert api.status_code == 503 and api.headers["retry-after"] == "300"
    assert api.json()["code"] == "maintenance" and "maintenance" in api.json()["error"]

    await turn(client, redis, Switch.MAINTENANCE, False)
    assert (await send(client, "GET", "/missions")).status_code == 200


async def test_read_only_closes_each_organisation_write_and_keeps_their_pages(
    client: AsyncTestClient, redis: Redis
) -> None:
    await turn(client, redis, Switch.ORGANISATIONS_READ_ONLY, True)
    for pattern, requests in ORGANISATION_WRITE_REQUESTS.items():
        for method, path in requests:
            response = await send(client, method, path)
            assert response.status_code == 503, (pattern, path)
            assert response.headers["retry-after"] == "300"
            assert "L'espace des structures est temporairement en lecture seule" in text(response)
            assert "ce que vous venez d'envoyer n'a pas été enregistré" in text(response)
    for method, path in OPEN_DURING_READ_ONLY:
        assert (await send(client, method, path)).status_code != 503, (method, path)
    api = await send(client, "POST", "/organisations/1/modifier", headers={"Accept": "application/json"})
    assert api.json()["code"] == "lecture_seule"


async def test_a_manager_cannot_edit_while_read_only_and_can_again_afterwards(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "gestion.lecture@example.org")
    organisation_id, location = await register(client)
    await turn(client, redis, Switch.ORGANISATIONS_READ_ONLY, True)

    edit = f"/organisations/{organisation_id}/modifier"
    assert (await client.get(edit)).status_code == 200
    assert (await client.get(location)).status_code == 200
    refused = await post_form(client, edit, organisation(name="Nouveau nom"), edit)
    assert refused.status_code == 503
    assert await db.fetchval("SELECT name FROM organisations WHERE id = $1", organisation_id) == (
        "Les Restos du Cœur du Rhône")

    await turn(client, redis, Switch.ORGANISATIONS_READ_ONLY, False)
    saved = await post_form(client, edit, organisation(name="Nouveau nom"), edit)
    assert saved.status_code == 303
    assert await db.fetchval("SELECT name FROM organisations WHERE id = $1", organisation_id) == "Nouveau nom"


async def journal(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    rows = await db.fetch("SELECT switch, old_value, new_value, actor, actor_user_id, reason FROM switch_changes"
                          " ORDER BY at, id")
    return [tuple(row) for row in rows]


async def test_an_admin_flips_a_switch_on_the_page_and_each_change_is_journaled_once(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    admin_id = await sign_in(client, redis, db, "admin.interrupteurs@example.org", admin=True)
    page = await client.get(PAGE)
    assert page.status_code == 200 and "Interrupteurs d'exploitation" in text(page)

    turned = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "on",
                                            "motif": "Migration de la base"}, PAGE)
    assert turned.status_code == 303 and turned.headers["location"] == PAGE + "?fait=active"
    assert await redis.hget(KEYS.values, "maintenance") == b"1"
    assert board(client).maintenance  # this process at once
    again = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "on"}, PAGE)
    assert again.headers["location"] == PAGE + "?fait=inchange"
    off = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "off"}, PAGE)
    assert off.headers["location"] == PAGE + "?fait=desactive"

    assert await journal(db) == [
        ("maintenance", False, True, "admin", admin_id, "Migration de la base"),
        ("maintenance", True, False, "admin", admin_id, None),
    ]
    assert await redis.llen(KEYS.journal) == 0  # copied, then dropped from Redis
    shown = text(await client.get(PAGE + "?fait=desactive"))
    assert "admin.interrupteurs@example.org" in shown and "Migration de la base" in shown
    assert "activé → désactivé" in shown and "désactivé → activé" in shown


async def test_the_page_refuses_an_unknown_switch_and_an_unreadable_reason_in_french(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "admin.erreurs@example.org", admin=True)
    unknown = await post_form(client, PAGE, {"interrupteur": "tout_couper", "etat": "on"}, PAGE)
    assert unknown.status_code == 422 and "Cet interrupteur n'existe pas" in text(unknown)
    control = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "on", "motif": "a\x07b"}, PAGE)
    assert control.status_code == 422 and "Le champ « Motif » contient un caractère non autorisé" in control.text
    too_long = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "on", "motif": "x" * 501},
                               PAGE)
    assert too_long.status_code == 422 and "ne doit pas dépasser 500 caractères" in too_long.text
    assert await redis.hgetall(KEYS.values) == {} and await journal(db) == []


async def test_people_who_are_not_admins_cannot_see_or_flip_switches(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    assert (await client.get(PAGE, follow_redirects=False)).headers["location"] == (
        "/connexion?suite=%2Fadministration%2Finterrupteurs")
    await sign_in(client, redis, db, "coordination@example.org", departments=("69",), referent_of=(None,))
    assert (await client.get(PAGE)).status_code == 403
    refused = await post_form(client, PAGE, {"interrupteur": "maintenance", "etat": "on"})
    assert refused.status_code == 403
    assert await redis.hgetall(KEYS.values) == {} and await journal(db) == []


def switches_command(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.switches", *arguments], env={**os.environ, **(env or {})},
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


async def test_the_command_lists_and_flips_switches_and_journals_them(redis: Redis, db: asyncpg.Connection) -> None:
    listed = switches_command("list")
    assert listed.returncode == 0 and "maintenance\toff" in listed.stdout and "pause_jobs\toff" in listed.stdout

    on = switches_command("on", "pause_jobs", "--reason", "vague d'inscriptions")
    assert on.returncode == 0, on.stderr
    assert "pause_jobs activé" in on.stdout
    assert "pause_jobs\ton" in switches_command("list").stdout
    same = switches_command("on", "pause_jobs")
    assert same.returncode == 0 and "Rien à changer" in same.stdout
    assert await journal(db) == [("pause_jobs", False, True, "commande", None, "vague d'inscriptions")]

    wrong = switches_command("on", "tout_couper")
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


async def test_a_change_made_while_postgresql_is_unreachable_is_journaled_later(
    redis: Redis, db: asyncpg.Connection
) -> None:
    unreachable = f"postgresql://postgres@127.0.0.1:{free_port()}/renfort"
    on = switches_command("on", "maintenance", "--reason", "base en panne", env={"DATABASE_URL": unreachable})
    assert on.returncode == 0, on.stderr
    assert "PostgreSQL injoignable" in on.stderr and "attend dans Redis" in on.stderr
    assert await redis.hget(KEYS.values, "maintenance") == b"1"  # the switch works without PostgreSQL
    assert await journal(db) == [] and await redis.llen(KEYS.journal) == 1

    off = switches_command("off", "maintenance")
    assert off.returncode == 0 and not off.stderr
    assert await journal(db) == [
        ("maintenance", False, True, "commande", None, "base en panne"),
        ("maintenance", True, False, "commande", None, None),
    ]
    assert await redis.llen(KEYS.journal) == 0


async def test_a_process_starts_with_everything_off_and_keeps_the_last_values_when_redis_goes_away(
    redis: Redis,
) -> None:
    store = SwitchStore(redis)
    local = SwitchBoard(store, _no_queue, queue_age_limit=0, loop_lag_limit=0)
    assert local.on == frozenset() and not local.closing  # never read: everything off
    await store.turn(Switch.MAINTENANCE, True, actor=COMMAND)
    await local.sample()
    assert local.maintenance and local.closing and local.redis_reachable

    gone = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    local.store = SwitchStore(gone)
    await local.sample()
    assert not local.redis_reachable and local.maintenance and local.closing
    await gone.aclose()


async def _no_queue() -> float:
    return 0.0
