"""Invitations cannot flood an address: an organisation sends at most 20 a rolling day (cancelled ones count, or
cancelling would reset the count), and an address receives at most 5 a day whichever organisations send them; past
either cap the manager gets a French message and nothing changes. The Redis keys never hold an address."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.organisations.invitation_limits import PER_ADDRESS, PER_ORGANISATION, WINDOW, InvitationLimits
from queues.connection import job_queue, sync_redis
from tests.conftest import REDIS_URL, TEST_ENV
from tests.test_onboarding import make_client
from tests.test_onboarding_managers import invite, team_path
from tests.test_organisations import post_form, register, sign_in

__all__ = ["make_client"]  # the fixture, shared with test_onboarding.py

ORGANISATION_CAP = "Cette structure a déjà envoyé 20 invitations ces dernières 24 heures"
ADDRESS_CAP = "Cette adresse ne peut pas être invitée pour le moment"


def limits(redis: Redis, **caps: int) -> InvitationLimits:
    return InvitationLimits(redis, TEST_ENV["SECRET_KEY"], **caps)


async def cancel_all(client: AsyncTestClient, db: asyncpg.Connection, organisation_id: int) -> None:
    for invitation_id in await db.fetch("SELECT id FROM manager_invitations WHERE organisation_id = $1",
                                        organisation_id):
        cancelled = await post_form(client, f"{team_path(organisation_id)}/invitations/{invitation_id['id']}/annuler",
                                    {}, team_path(organisation_id))
        assert cancelled.status_code == 303


async def test_an_organisation_sends_twenty_invitations_a_day_cancelled_ones_included(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    organisation_id, _ = await register(client)
    for number in range(PER_ORGANISATION):
        assert (await invite(client, organisation_id, f"guest{number}@example.org")).status_code == 303
        await cancel_all(client, db, organisation_id)  # never more than one pending: only the day's count stops it

    refused = await invite(client, organisation_id, "one.more@example.org")
    assert refused.status_code == 429 and ORGANISATION_CAP in refused.text.replace("&#39;", "'")
    assert "Vous pourrez en envoyer une autre dans 24 heures." in refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= WINDOW
    assert 'value="one.more@example.org"' in refused.text  # what was typed is kept
    assert await db.fetchval("SELECT count(*) FROM manager_invitations") == 0
    assert job_queue(sync_redis(REDIS_URL)).count == PER_ORGANISATION

    names = [str(key) for key in await redis.keys("renfort:invitation-limits:*")]
    assert names and not [name for name in names if "@" in name or "example" in name or "guest" in name]

    # A day later, the oldest have left the rolling window.
    keys = limits(redis).keys(organisation_id, "one.more@example.org")
    sent = cast(list[tuple[bytes, float]], await redis.zrange(keys.organisation, 0, -1, withscores=True))
    await redis.zadd(keys.organisation, {member: score - WINDOW * 1000 - 1 for member, score in sent})
    assert (await invite(client, organisation_id, "one.more@example.org")).status_code == 303


async def test_an_address_receives_five_invitations_a_day_whichever_organisations_send_them(
    client: AsyncTestClient, make_client: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "first@example.org")
    first_organisation, _ = await register(client)
    for _ in range(PER_ADDRESS):  # each one replaces the pending one: a new e-mail every time
        assert (await invite(client, first_organisation, "target@example.org")).status_code == 303
    last = await db.fetchval("SELECT id FROM manager_invitations WHERE email_normalized = 'target@example.org'")

    refused = await invite(client, first_organisation, "Target+autre@Example.org")  # the same mailbox
    assert refused.status_code == 429 and ADDRESS_CAP in refused.text.replace("&#39;", "'")
    assert int(refused.headers["retry-after"]) >= 1
    # Nothing changed: the pending invitation (and its link) is still the last one sent.
    assert await db.fetch("SELECT id FROM manager_invitations") == [(last,)]
    assert job_queue(sync_redis(REDIS_URL)).count == PER_ADDRESS

    other = await make_client()
    await sign_in(other, redis, db, "other@example.org")
    second_organisation, _ = await register(other, name="Secours populaire")
    assert (await invite(other, second_organisation, "target@example.org")).status_code == 429
    assert (await invite(other, second_organisation, "someone@example.org")).status_code == 303


async def test_invitations_sent_at_once_never_pass_a_cap(redis: Redis) -> None:
    caps = limits(redis, per_organisation=20, per_address=1000)
    verdicts = await asyncio.gather(*[caps.take(7, f"guest{number}@example.org") for number in range(50)])
    assert sorted(verdict.outcome for verdict in verdicts) == ["ok"] * 20 + ["organisation"] * 30
    assert await redis.zcard(caps.keys(7, "x@example.org").organisation) == 20
    other = await caps.take(8, "guest0@example.org")  # another organisation has its own count
    assert other.outcome == "ok"
