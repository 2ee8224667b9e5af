"""Both write queues' dead letters are visible to ops — command, console page, readiness and metrics — by ids only,
and each queue's can be put back on its own."""

from __future__ import annotations

import re
import subprocess
import sys

import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.applications.capacity import PREFIX as APPLICATIONS
from app.applications.capacity import ApplicationEvent
from app.applications.statuses import ApplicationStatus
from app.durable_queue import DurableQueue
from app.volunteers.signup_queue import SignupQueue
from tests.conftest import ROOT, TEST_ENV
from tests.helpers import queued_signup

OPS = {"Authorization": "Bearer ops-test-token"}
APPLICATION_KEY = "12:34:7"


async def bury_one(queue: DurableQueue, record: bytes, *, key: str, owner: str, reason: str) -> None:
    """As a drain does with a record PostgreSQL refuses: claimed first, then buried under the claim's lease."""
    await queue.redis.rpush(queue.keys.pending, record)
    claim = await queue.claim("test-consumer", 10, 30)
    assert claim.records == [record]
    assert await queue.bury(claim, record, key=key, owner=owner, reason=reason)


async def one_dead_letter_each(redis: Redis) -> tuple[SignupQueue, DurableQueue, str]:
    signups = SignupQueue(redis, TEST_ENV["SECRET_KEY"])
    applications = DurableQueue(redis, APPLICATIONS)
    signup = queued_signup(1, prefix="hidden.person")
    await bury_one(signups, msgspec.json.encode(signup), key=signup.receipt, owner="owner-digest",
                   reason="fk_volunteers_commune_code_communes")
    event = ApplicationEvent(mission_id=12, volunteer_id=34, status=ApplicationStatus.PENDING, version=7,
                             kind="applied", at=1_700_000_000.0, message="Bonjour Ana")
    await bury_one(applications, msgspec.json.encode(event), key=APPLICATION_KEY, owner="34",
                   reason="IntegrityError")
    return signups, applications, signup.receipt


def deadletters(*arguments: str) -> str:
    result = subprocess.run([sys.executable, "-m", "queues.deadletters", *arguments], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return result.stdout


def no_personal_data(text: str) -> None:
    for personal in ("hidden.person", "example.org", "Ana", "Martin", "+33612345678", "Bonjour"):
        assert personal not in text


async def test_the_ops_command_lists_both_queues_dead_letters_by_key(redis: Redis) -> None:
    _, applications, receipt = await one_dead_letter_each(redis)

    both = deadletters("list")
    assert "1 inscription(s) en lettres mortes" in both
    assert "1 changement(s) de candidature en lettres mortes" in both
    assert receipt in both and "fk_volunteers_commune_code_communes" in both
    assert APPLICATION_KEY in both and "IntegrityError" in both
    no_personal_data(both)

    only = deadletters("list", "--queue", "applications")
    assert APPLICATION_KEY in only and receipt not in only and "inscription" not in only

    assert "1 changement(s) de candidature remis dans la file" in deadletters("retry", "--queue", "applications")
    assert await applications.dead_count() == 0 and await applications.depth() == 1
    assert "1 inscription(s) en lettres mortes" in deadletters("list", "--queue", "signups")


async def test_the_console_lists_both_queues_and_retries_one(client: AsyncTestClient, redis: Redis) -> None:
    signups, applications, receipt = await one_dead_letter_each(redis)

    assert (await client.get("/ops/dead-letters")).status_code == 401
    page = await client.get("/ops/dead-letters", headers=OPS)
    assert page.status_code == 200
    assert "Inscriptions" in page.text and "Candidatures" in page.text
    assert receipt in page.text and APPLICATION_KEY in page.text and "IntegrityError" in page.text
    no_personal_data(page.text)
    assert 'action="/ops/dead-letters/applications/retry"' in page.text
    assert 'action="/ops/dead-letters/signups/retry"' in page.text

    assert (await client.post("/ops/dead-letters/applications/retry", headers=OPS)).status_code == 403  # no CSRF
    assert await applications.dead_count() == 1
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match, "the retry form should carry a CSRF token"
    token = {"_csrf_token": match.group(1)}
    assert (await client.post("/ops/dead-letters/unknown/retry", headers=OPS, data=token)).status_code == 404

    retried = await client.post("/ops/dead-letters/applications/retry", headers=OPS, data=token,
                                follow_redirects=False)
    assert retried.status_code == 303
    assert await applications.dead_count() == 0 and await applications.depth() == 1
    assert await signups.dead_count() == 1  # the other queue's stay until ops retry them too
    assert await redis.exists(applications.keys.drain_scheduled)  # and a drain was asked for

    after = await client.get(retried.headers["location"], headers=OPS)
    assert "1 changement(s) de candidature remis dans la file" in after.text
    assert "0 changement(s) de candidature en lettres mortes" in after.text


async def test_readiness_and_metrics_count_both_queues_dead_letters(client: AsyncTestClient, redis: Redis) -> None:
    await one_dead_letter_each(redis)
    ready = await client.get("/ready")
    assert ready.status_code == 200  # dead letters are for ops, not an outage
    queue = ready.json()["queue"]
    assert queue["signups_dead_letters"] == 1 and queue["applications_dead_letters"] == 1
    assert queue["dead_letters"] == 1  # the sign-up figure under its first name, as dashboards scrape it
    assert queue["applications_pending"] == 0 and queue["applications_in_flight"] == 0

    metrics = (await client.get("/metrics", headers=OPS)).text
    assert "renfort_applications_dead_letters 1\n" in metrics
    assert "renfort_signups_dead_letters 1\n" in metrics
    assert "# TYPE renfort_applications_dead_letters gauge" in metrics
    assert "renfort_dead_letters 1\n" in metrics
