"""Dispatch runs: who may dispatch, plan → preview → commit (idempotent), the volunteers' signed links (expiring,
single-use), expiry and cancellation giving places back, all through the real worker."""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import Settings
from ops.services import MailSink
from surge.dispatch import links
from tests.conftest import TEST_ENV, run_worker
from tests.test_applications import add_volunteers
from tests.test_organisations import post_form, sign_in
from tests.test_signin import csrf_token

SECRET = TEST_ENV["SECRET_KEY"]
SLUG = "crue-du-rhone"
BASE = f"/coordination/urgences/{SLUG}/mobilisation"


async def emergency(db: asyncpg.Connection, slug: str = SLUG, departments: tuple[str, ...] = ("69",),
                    status: str = "live") -> int:
    return int(await db.fetchval(
        "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status)"
        " VALUES ($1, 'Crue du Rhône', 'Crue.', 'Bras.', $2, '{}', $3) RETURNING id", slug, list(departments), status
    ))


async def missions(db: asyncpg.Connection, places: tuple[int, ...], slug: str = SLUG) -> list[int]:
    """Published missions of a validated organisation in Lyon, attached to the emergency; the first is priority."""
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Secours du Rhône', 'association', '1 rue', '69001', '69123', 'Aide.', 'validated') RETURNING id"
    )
    ids = []
    for number, count in enumerate(places):
        mission_id = await db.fetchval(
            "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
            " open_to_minors, priority, emergency_slug, status) VALUES ($1, $2, 'Remplir des sacs de sable.',"
            " 'solidarite-insertion', '{}', false, $3, false, $4, $5, 'published') RETURNING id",
            organisation_id, f"Digue {number + 1}", count, number == 0, slug,
        )
        await db.execute(
            "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
            " SELECT $1, 'Quai', '69001', code, latitude, longitude FROM communes WHERE code = '69123'", mission_id
        )
        ids.append(int(mission_id))
    return ids


async def plan(client: AsyncTestClient, mission_ids: list[int], **fields: Any) -> int:
    data = {"pool": "departements", "max_km": "30", "missions": [str(i) for i in mission_ids], **fields}
    response = await post_form(client, BASE, data, BASE)
    assert response.status_code == 303, response.text
    run_id = int(response.headers["location"].rsplit("/", 1)[1])
    run_worker()
    return run_id


async def run_row(db: asyncpg.Connection, run_id: int) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM dispatch_runs WHERE id = $1", run_id)


async def proposals(db: asyncpg.Connection, run_id: int) -> dict[tuple[int, int], str]:
    rows = await db.fetch("SELECT mission_id, volunteer_id, status FROM applications WHERE dispatch_run_id = $1",
                          run_id)
    return {(row["mission_id"], row["volunteer_id"]): row["status"] for row in rows}


async def commit(client: AsyncTestClient, run_id: int) -> Any:
    return await post_form(client, f"{BASE}/{run_id}/engager", {}, BASE)


async def answer(client: AsyncTestClient, action: str, token: str) -> Any:
    page = await client.get(f"/mobilisation/{action}", params={"jeton": token})
    if page.status_code != 200:
        return page
    return await client.post(f"/mobilisation/{action}", data={"jeton": token, "_csrf_token": csrf_token(page.text)})


def token(action: str, mission_id: int, volunteer_id: int, run_id: int, expires_at: int | None = None) -> str:
    return links.mint(SECRET, action, mission_id, volunteer_id, run_id, expires_at or int(time.time()) + 3600)


async def committed_run(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, places: tuple[int, ...],
                        volunteers: int, env: dict[str, str] | None = None) -> tuple[int, list[int], list[int]]:
    await emergency(db)
    mission_ids = await missions(db, places)
    volunteer_ids = [v for v, _ in await add_volunteers(db, volunteers)]
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, mission_ids)
    assert (await commit(client, run_id)).status_code == 303
    run_worker(env)
    return run_id, mission_ids, volunteer_ids


async def test_only_coordinators_of_the_emergency_may_dispatch(client: AsyncTestClient, redis: Redis,
                                                               db: asyncpg.Connection) -> None:
    await emergency(db)
    await emergency(db, slug="canicule-nationale", departments=())
    mission_ids = await missions(db, (2,))
    assert (await client.get(BASE, follow_redirects=False)).headers["location"] == (
        f"/connexion?suite=%2Fcoordination%2Furgences%2F{SLUG}%2Fmobilisation")

    await sign_in(client, redis, db, "voisin@example.org")
    assert (await client.get(BASE)).status_code == 403
    await sign_in(client, redis, db, "coordination13@example.org", departments=("13",))
    assert (await client.get(BASE)).status_code == 403
    response = await post_form(client, BASE, {"pool": "departements", "max_km": "30", "missions": [mission_ids[0]]})
    assert response.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM dispatch_runs") == 0

    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    page = await client.get(BASE)
    assert page.status_code == 200 and "Digue 1" in page.text
    assert (await client.get("/coordination/urgences/canicule-nationale/mobilisation")).status_code == 403

    await sign_in(client, redis, db, "national@example.org", departments=(None,))
    assert (await client.get(BASE)).status_code == 200
    assert (await client.get("/coordination/urgences/canicule-nationale/mobilisation")).status_code == 200
    assert (await client.get("/coordination/urgences/inconnue/mobilisation")).status_code == 404


async def test_invalid_parameters_get_french_messages(client: AsyncTestClient, redis: Redis,
                                                      db: asyncpg.Connection) -> None:
    await emergency(db)
    await missions(db, (2,))
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    response = await post_form(client, BASE, {"pool": "", "max_km": "loin"}, BASE)
    assert response.status_code == 422
    assert "Indiquez une distance" in response.text and "Cochez au moins une mission" in response.text


async def test_preview_then_commit_twice_proposes_once(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection,
                                                       mail_sink: MailSink) -> None:
    await emergency(db)
    mission_ids = await missions(db, (3, 2))
    volunteer_ids = [v for v, _ in await add_volunteers(db, 7)]
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    run_id = await plan(client, mission_ids)

    run = await run_row(db, run_id)
    assert run["status"] == "planned" and len(run["planned_volunteers"]) == 5
    page = await client.get(f"{BASE}/{run_id}")
    assert re.search(r"3 / 3", page.text) and re.search(r"2 / 2", page.text)
    assert "Rhône (69)" in page.text and "missions proches complètes : 2" in page.text
    assert "Envoyer les 5 propositions" in page.text and not await proposals(db, run_id)

    first, second = await commit(client, run_id), await commit(client, run_id)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"].endswith("?fait=deja-engagee")
    run_worker({"SMTP_URL": mail_sink.url})
    made = await proposals(db, run_id)
    assert len(made) == 5 and set(made.values()) == {"proposed"}
    assert {v for _, v in made} <= set(volunteer_ids)
    run = await run_row(db, run_id)
    assert run["status"] == "committed" and run["committed_at"] is not None and run["expires_at"] is not None
    versions = dict(await db.fetch("SELECT volunteer_id, version FROM applications"))

    # The commit job run again (a retry after a crash) proposes nobody twice and mails nobody twice.
    await db.execute("UPDATE dispatch_runs SET status = 'committing' WHERE id = $1", run_id)
    from queues import enqueue

    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.commit_dispatch(connection, run_id)
    connection.close()
    run_worker({"SMTP_URL": mail_sink.url})
    assert dict(await db.fetch("SELECT volunteer_id, version FROM applications")) == versions
    assert (await run_row(db, run_id))["counts"].count('"proposed": 5') == 1
    mails = [m for m in mail_sink.messages() if m["Subject"].startswith("Une mission vous est proposée")]
    assert len(mails) == 5 and len({m["To"] for m in mails}) == 5
    body = mails[0].get_content()
    assert "/mobilisation/confirmer?jeton=" in body and "/mobilisation/decliner?jeton=" in body
    # Places held in Redis: nobody can apply over the proposals.
    assert await redis.scard(f"renfort:applications:m{mission_ids[1]}:holders") == 2


async def test_confirm_and_decline_links_are_signed_expiring_and_single_use(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    run_id, _missions, _ = await committed_run(client, redis, db, (2,), 2)
    (m, first), (_, second) = sorted(await proposals(db, run_id))
    holders = f"renfort:applications:m{m}:holders"

    assert (await answer(client, "confirmer", token("confirmer", m, first, run_id) + "x")).status_code == 400
    assert (await answer(client, "confirmer", token("decliner", m, first, run_id))).status_code == 400  # other answer
    assert (await answer(client, "confirmer", token("confirmer", m, first, run_id, int(time.time()) - 1))
            ).status_code == 410
    assert (await answer(client, "accepter", token("confirmer", m, first, run_id))).status_code == 404

    confirm = token("confirmer", m, first, run_id)
    page = await client.get("/mobilisation/confirmer", params={"jeton": confirm})
    assert "Digue 1" in page.text and await redis.hget(f"renfort:applications:m{m}:status", str(first)) == b"proposed"
    done = await answer(client, "confirmer", confirm)
    assert done.status_code == 200 and "confirmée" in done.text
    assert (await answer(client, "confirmer", confirm)).status_code == 410  # single use
    assert (await answer(client, "decliner", token("decliner", m, first, run_id))).status_code == 410

    assert (await answer(client, "decliner", token("decliner", m, second, run_id))).status_code == 200
    assert await redis.scard(holders) == 1  # the declined place is free again
    run_worker()
    assert await proposals(db, run_id) == {(m, first): "accepted", (m, second): "cancelled"}


async def test_expired_proposals_give_their_places_back(client: AsyncTestClient, redis: Redis,
                                                        db: asyncpg.Connection) -> None:
    run_id, _missions, _ = await committed_run(client, redis, db, (2,), 2)
    (m, first), (_, second) = sorted(await proposals(db, run_id))
    await db.execute("UPDATE applications SET expires_at = now() - interval '1 minute' WHERE volunteer_id = $1",
                     first)
    from queues import enqueue

    connection = enqueue.connect(TEST_ENV["REDIS_URL"])
    enqueue.expire_proposals(connection)
    connection.close()
    run_worker()
    assert await proposals(db, run_id) == {(m, first): "cancelled", (m, second): "proposed"}
    assert await redis.scard(f"renfort:applications:m{m}:holders") == 1
    assert (await answer(client, "confirmer", token("confirmer", m, first, run_id))).status_code == 410


async def test_cancelling_a_run_withdraws_unanswered_proposals_only(client: AsyncTestClient, redis: Redis,
                                                                    db: asyncpg.Connection) -> None:
    run_id, _missions, _ = await committed_run(client, redis, db, (3,), 3)
    pairs = sorted(await proposals(db, run_id))
    m, confirmed = pairs[0]
    assert (await answer(client, "confirmer", token("confirmer", m, confirmed, run_id))).status_code == 200

    for _ in range(2):
        response = await post_form(client, f"{BASE}/{run_id}/annuler", {}, BASE)
        assert response.status_code == 303
    run_worker()
    made = await proposals(db, run_id)
    assert made[(m, confirmed)] == "accepted"
    assert [made[pair] for pair in pairs[1:]] == ["cancelled", "cancelled"]
    run = await run_row(db, run_id)
    assert run["status"] == "cancelled" and run["cancelled_by"] is not None and '"withdrawn": 2' in run["counts"]
    assert await redis.scard(f"renfort:applications:m{m}:holders") == 1
    assert (await commit(client, run_id)).status_code == 409


async def test_a_new_run_leaves_out_volunteers_engaged_on_a_live_dispatch(client: AsyncTestClient, redis: Redis,
                                                                          db: asyncpg.Connection) -> None:
    run_id, _missions, volunteer_ids = await committed_run(client, redis, db, (2,), 3)
    more = await missions(db, (5,))
    second = await plan(client, more)
    planned = set((await run_row(db, second))["planned_volunteers"])
    engaged = {v for _, v in await proposals(db, run_id)}
    assert planned == set(volunteer_ids) - engaged and len(planned) == 1


@pytest.mark.parametrize("status", ["draft", "closed"])
async def test_only_a_live_emergency_dispatches(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection,
                                                status: str) -> None:
    await emergency(db, status=status)
    mission_ids = await missions(db, (2,))
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    response = await post_form(client, BASE, {"pool": "departements", "max_km": "30", "missions": mission_ids}, BASE)
    assert response.status_code == 409


async def test_a_volunteer_answers_a_proposal_from_their_space_too(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, settings: Settings
) -> None:
    """Without the e-mail (lost, or read on another device), the proposal waits in « Mes candidatures »."""
    _, mission_ids, volunteer_ids = await committed_run(client, redis, db, (2,), 2)
    emails = dict(await db.fetch("SELECT id, email FROM volunteers WHERE id = ANY($1::bigint[])", volunteer_ids))
    async with AsyncTestClient(app=create_app(settings)) as first, AsyncTestClient(app=create_app(settings)) as second:
        await sign_in(first, redis, db, emails[volunteer_ids[0]])
        await sign_in(second, redis, db, emails[volunteer_ids[1]])
        page = await first.get("/mon-espace/candidatures")
        assert "Proposée par la coordination" in page.text and "Je confirme, je serai là" in page.text
        confirmed = await post_form(first, f"/mon-espace/candidatures/{mission_ids[0]}/confirmer", {})
        assert confirmed.headers["location"].endswith("resultat=confirmed")
        again = await post_form(first, f"/mon-espace/candidatures/{mission_ids[0]}/confirmer", {})
        assert again.headers["location"].endswith("resultat=inchange")
        declined = await post_form(second, f"/mon-espace/candidatures/{mission_ids[0]}/annuler", {"confirm": "1"})
        assert declined.headers["location"].endswith("resultat=cancelled")
    run_worker()
    assert dict(await db.fetch("SELECT volunteer_id, status FROM applications WHERE mission_id = $1",
                               mission_ids[0])) == {volunteer_ids[0]: "accepted", volunteer_ids[1]: "cancelled"}
