""""Télécharger mes données" through the real pages, a real worker and Redis: the file holds everything about the
person who asked (every column of their rows, whatever columns exist) and nothing about anyone else, is built by a
job whose payload names no one, is handed once, to that person only."""

from __future__ import annotations

import json
from collections.abc import Iterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from app.main import create_app
from app.privacy import download
from app.settings import Settings
from queues.connection import job_queue, sync_redis
from tests.conftest import REDIS_URL, run_worker
from tests.test_account_deletion import add_volunteer
from tests.test_mail_delivery import payloads
from tests.test_organisations import post_form, sign_in
from tests.test_referent_digest import awaiting_mission, organisation

PAGE = "/mon-espace/donnees"
EMAIL = "ana.donnees@example.org"
OTHER = "zoe.autre@example.org"


@pytest.fixture
def rq() -> Iterator[SyncRedis]:
    connection = sync_redis(REDIS_URL)
    yield connection
    connection.close()


async def ask(client: AsyncTestClient) -> str:
    response = await post_form(client, PAGE, {}, PAGE)
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


async def test_signed_out_visitors_are_sent_to_sign_in(client: AsyncTestClient) -> None:
    response = await client.get(PAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?suite=%2Fmon-espace%2Fdonnees"
    file = await client.get(f"{PAGE}/{'a' * 24}/mes-donnees-renfort.json", follow_redirects=False)
    assert file.status_code == 303 and file.headers["location"].startswith("/connexion")


async def test_the_file_holds_the_persons_data_only_and_is_handed_once_to_them_only(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings, rq: SyncRedis
) -> None:
    volunteer_id = await add_volunteer(db, EMAIL)
    other_id = await add_volunteer(db, OTHER)
    await db.execute("UPDATE volunteers SET phone = '0612345678', skills = '{permis B}' WHERE id = $1", volunteer_id)
    organisation_id = await organisation(db, "Secours lyonnais", "69123", status="validated")
    mission_id = await awaiting_mission(db, organisation_id, "Maraude du soir", "69123")
    proposed_id = await awaiting_mission(db, organisation_id, "Distribution alimentaire", "69123")
    for volunteer, status, message in ((volunteer_id, "accepted", "Je suis disponible le soir."),
                                       (other_id, "pending", "Message de Zoé")):
        await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, message, applied_at)"
                         " VALUES ($1, $2, $3, 1, $4, now())", mission_id, volunteer, status, message)
    await db.execute("INSERT INTO applications (mission_id, volunteer_id, status, version, applied_at, expires_at)"
                     " VALUES ($1, $2, 'proposed', 1, now(), now() + interval '2 days')", proposed_id, volunteer_id)
    user_id = await sign_in(client, redis, db, EMAIL, referent_of=("69",))
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, user_id)
    assert f'href="{PAGE}"' in (await client.get("/mon-espace")).text
    form = await client.get(PAGE)
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    assert "Demander mon fichier" in form.text

    location = await ask(client)
    token = location.split("/")[3].split("?")[0]
    assert location == f"{PAGE}/{token}?demande=nouvelle"
    waiting = await client.get(location)
    assert waiting.status_code == 200 and "en préparation" in waiting.text
    assert f'data-poll="{PAGE}/{token}/etat"' in waiting.text
    assert (await client.get(f"{PAGE}/{token}/etat")).json()["done"] is False
    # Asking again while one is under way leads back to it: one request at a time, one job.
    assert await ask(client) == f"{PAGE}/{token}?demande=en-cours"
    assert job_queue(rq).count == 1
    for payload in payloads(rq):
        assert "@" not in payload and "Ana" not in payload, payload

    run_worker()
    progress = (await client.get(f"{PAGE}/{token}/etat")).json()
    assert progress["done"] is True and progress["url"] == f"{PAGE}/{token}/mes-donnees-renfort.json"
    assert "Télécharger mon fichier" in (await client.get(f"{PAGE}/{token}")).text

    async with AsyncTestClient(app=create_app(settings)) as stranger:
        await sign_in(stranger, redis, db, OTHER)
        for path in (f"{PAGE}/{token}", f"{PAGE}/{token}/etat", f"{PAGE}/{token}/mes-donnees-renfort.json"):
            assert (await stranger.get(path)).status_code == 404, path

    response = await client.get(f"{PAGE}/{token}/mes-donnees-renfort.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="mes-donnees-renfort.json"'
    assert response.headers["cache-control"] == "no-store"
    assert OTHER not in response.text and "Zoé" not in response.text
    data = json.loads(response.content)
    # Every column of the rows, whatever columns the schema has now.
    for table, section in (("volunteers", "benevole"), ("users", "compte")):
        names = {row["column_name"] for row in await db.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = $1", table)}
        assert names <= set(data[section]), names - set(data[section])
    assert data["compte"]["email"] == EMAIL and data["compte"]["id"] == user_id
    assert data["benevole"]["first_name"] == "Ana" and data["benevole"]["phone"] == "0612345678"
    assert data["benevole"]["skills"] == ["permis B"] and data["benevole"]["birth_date"] == "1990-04-12"
    assert data["preferences_e_mail"] == {"e_mails_sur_mes_candidatures": True,
                                          "e_mails_des_urgences_et_propositions": True}
    assert data["roles"]["referent"] == ["departement:69"]
    assert data["structures_gerees"] == [{"id": organisation_id, "nom": "Secours lyonnais", "statut": "Validée"}]
    applications = {entry["mission"]: entry for entry in data["candidatures"]}
    assert set(applications) == {"Maraude du soir", "Distribution alimentaire"}
    assert applications["Maraude du soir"]["statut_libelle"] == "Acceptée"
    assert applications["Maraude du soir"]["message"] == "Je suis disponible le soir."
    assert applications["Distribution alimentaire"]["status"] == "proposed"
    assert applications["Distribution alimentaire"]["expires_at"]
    assert all(entry["volunteer_id"] == volunteer_id for entry in data["candidatures"])

    again = await client.get(f"{PAGE}/{token}/mes-donnees-renfort.json")
    assert again.status_code == 410 and "déjà été téléchargé" in again.text and "demandez-en un nouveau" in again.text
    assert (await client.get(f"{PAGE}/{token}")).status_code == 410
    # Once taken, a new one may be asked for.
    assert (await ask(client)).endswith("?demande=nouvelle")


async def test_unknown_and_malformed_tokens_are_404(client: AsyncTestClient, redis: Redis,
                                                     db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, EMAIL)
    for token in ("a" * 24, "x", "%00" * 8, "a" * 5000):
        assert (await client.get(f"{PAGE}/{token}")).status_code == 404, token
        assert (await client.get(f"{PAGE}/{token}/mes-donnees-renfort.json")).status_code == 404, token


async def test_new_files_are_capped_per_day(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    user_id = await sign_in(client, redis, db, EMAIL)
    await redis.set(download.count_key(user_id), download.MAX_PER_DAY, ex=60)
    response = await post_form(client, PAGE, {}, PAGE)
    assert response.status_code == 429 and "réessayez demain" in response.text
    assert await download.current(redis, user_id) is None
