"""Automatic load shedding on a real Redis: an old queued sign-up or a lagging event loop closes the non-essential
pages with a French 503 and Retry-After, the sign-up, emergency and coordination paths stay open, and the pages come
back once the signals are under their limits again."""

from __future__ import annotations

import asyncio
import html
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from app.main import create_app
from app.settings import SettingsError, load_settings
from app.switches.board import UNREACHABLE_AFTER, SwitchBoard
from app.switches.store import SwitchStore
from app.volunteers.signup_queue import PENDING, SignupQueue
from tests.conftest import TEST_ENV
from tests.factories import signup
from tests.helpers import eventually, queued_signup

BUSY_TITLE = "Renfort est très sollicité en ce moment"


async def shed(client: AsyncTestClient) -> bool:
    response = await client.get("/missions")
    if response.status_code != 503:
        return False
    assert response.headers["retry-after"] == "30"
    assert BUSY_TITLE in html.unescape(response.text)
    return True


async def open_again(client: AsyncTestClient) -> bool:
    return (await client.get("/missions")).status_code == 200


async def essential_paths_answer(client: AsyncTestClient) -> None:
    assert (await client.get("/inscription")).status_code == 200
    assert (await client.post("/api/v1/volunteers", json=signup())).status_code == 202
    assert (await client.get("/")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/coordination", follow_redirects=False)).status_code == 303  # to sign in, not 503
    api = await client.get("/api/v1/missions?code_postal=69003")
    assert api.status_code == 503 and api.json()["code"] == "charge" and api.headers["retry-after"] == "30"


async def test_an_old_queued_signup_sheds_the_other_pages_until_the_queue_catches_up(
    client: AsyncTestClient, redis: Redis
) -> None:
    assert (await client.get("/missions")).status_code == 200
    waiting = msgspec.structs.replace(queued_signup(1, prefix="ancien"),
                                      accepted_at=datetime.now(UTC) - timedelta(seconds=90))
    await redis.rpush(PENDING, msgspec.json.encode(waiting))  # the head of the queue, 90 s old (limit 60 s)

    await eventually(lambda: shed(client), timeout=5, interval=0.2)
    await essential_paths_answer(client)

    await redis.lpop(PENDING)  # drained: what is left was queued just now
    assert await SignupQueue(redis, TEST_ENV["SECRET_KEY"]).oldest_age_seconds() < 60
    await eventually(lambda: open_again(client), timeout=15, interval=0.5)  # after the hold


@pytest.fixture
async def lag_client() -> AsyncIterator[AsyncTestClient]:
    settings = load_settings({**os.environ, "SHED_LOOP_LAG_MS": "200", "SHED_QUEUE_AGE_SECONDS": "0"})
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def test_a_blocked_event_loop_sheds_the_other_pages(lag_client: AsyncTestClient) -> None:
    # The app's lifespan (and so its sampler) runs on the test client's portal loop: block that very loop, twice,
    # longer than the sampler sleeps, as a CPU-bound request would.
    portal = lag_client.blocking_portal
    assert (await lag_client.get("/missions")).status_code == 200
    portal.call(time.sleep, 0.8)
    await asyncio.sleep(0.1)
    board: SwitchBoard = lag_client.app.state.web.switches
    assert board.loop_lag >= 0.2 and not board.shedding  # one late wake-up is not enough
    portal.call(time.sleep, 0.8)
    await eventually(lambda: board.shedding, timeout=2, interval=0.05)

    assert await shed(lag_client)
    await essential_paths_answer(lag_client)
    await eventually(lambda: open_again(lag_client), timeout=15, interval=0.5)


async def _zero() -> float:
    return 0.0


async def test_the_sampler_needs_two_late_wake_ups_in_a_row_and_holds_before_clearing(redis: Redis) -> None:
    board = SwitchBoard(SwitchStore(redis), _zero, queue_age_limit=0, loop_lag_limit=0.2, interval=0.1, hold=1.0)
    await board.start()
    try:
        await asyncio.sleep(0.01)  # the sampler's first sleep begins
        time.sleep(0.5)  # the sampler's 0.1 s sleep ends inside this: it wakes ~0.4 s late
        await asyncio.sleep(0.03)
        assert board.loop_lag >= 0.2 and not board.shedding
        await asyncio.sleep(0.3)  # rounds on time in between: the count starts again
        time.sleep(0.5)
        await asyncio.sleep(0.03)
        assert not board.shedding
        time.sleep(0.5)
        await asyncio.sleep(0.03)
        assert board.shedding and board.closing
        started = time.monotonic()
        await eventually(lambda: not board.shedding, timeout=5, interval=0.05)
        assert time.monotonic() - started >= 0.8  # held about `hold` seconds after the last late round
        assert not board.closing
    finally:
        await board.stop()


async def test_a_limit_of_zero_turns_its_signal_off(redis: Redis) -> None:
    async def ancient() -> float:
        return 3600.0

    board = SwitchBoard(SwitchStore(redis), ancient, queue_age_limit=0, loop_lag_limit=0)
    await board.sample()
    board.observe_lag(10.0)
    board.observe_lag(10.0)
    await board.sample()
    assert not board.shedding and not board.closing
    board.queue_age_limit = 60
    await board.sample()
    assert board.shedding


def test_shedding_limits_are_checked_at_start_up() -> None:
    assert load_settings({**TEST_ENV}).shed_queue_age_seconds == 60
    assert load_settings({**TEST_ENV}).shed_loop_lag_ms == 500
    with pytest.raises(SettingsError, match="SHED_LOOP_LAG_MS doit être compris entre 0 et 60000"):
        load_settings({**TEST_ENV, "SHED_LOOP_LAG_MS": "-1"})
    with pytest.raises(SettingsError, match="SHED_QUEUE_AGE_SECONDS doit être un nombre entier"):
        load_settings({**TEST_ENV, "SHED_QUEUE_AGE_SECONDS": "une minute"})


async def test_a_busy_event_loop_is_not_taken_for_redis_being_away(redis: Redis) -> None:
    # Redis answers at once, but requests hog this process's loop past the sampler's deadline, as under a surge,
    # for longer than UNREACHABLE_AFTER: the sign-up page must stay open (it reads `redis_reachable`).
    queue = SignupQueue(redis, TEST_ENV["SECRET_KEY"])
    board = SwitchBoard(SwitchStore(redis), queue.oldest_age_seconds, queue_age_limit=0, loop_lag_limit=0)
    await board.start()  # the production cadence: a round every 0.5 s, each with a 0.5 s deadline
    assert board.redis_reachable

    async def hog() -> None:
        while True:
            time.sleep(0.15)  # a CPU-bound slice of a request
            await asyncio.sleep(0)

    hogs = [asyncio.create_task(hog()) for _ in range(3)]
    seen = []
    try:
        until = time.monotonic() + UNREACHABLE_AFTER + 2
        while time.monotonic() < until:
            await asyncio.sleep(0)
            seen.append(board.redis_reachable)
    finally:
        for task in hogs:
            task.cancel()
        await asyncio.gather(*hogs, return_exceptions=True)
        await board.stop()
    assert len(seen) > 3 and all(seen)


async def test_a_redis_that_never_answers_is_unreachable_once_reads_have_failed_for_a_while(redis: Redis) -> None:
    board = SwitchBoard(SwitchStore(redis), _zero, queue_age_limit=0, loop_lag_limit=0, interval=0.1)
    await board.sample()
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never replies
        mute = Redis(host="127.0.0.1", port=silent.getsockname()[1])
        board.store = SwitchStore(mute)
        try:
            await board.sample()
            assert board.redis_reachable  # one deadline on time is not enough
            await eventually(lambda: _unreachable_after_sample(board), timeout=UNREACHABLE_AFTER + 2, interval=0.1)
        finally:
            await mute.aclose()


async def _unreachable_after_sample(board: SwitchBoard) -> bool:
    await board.sample()
    return not board.redis_reachable


async def test_a_background_loop_that_swallows_its_cancellation_never_holds_up_shutdown() -> None:
    from app.background import stop_background

    finished = asyncio.Event()

    async def stubborn() -> None:  # what a client library that eats a CancelledError makes of a loop
        while not finished.is_set():
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn(), name="stubborn loop")
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await stop_background(task, grace=0.5)
    assert time.monotonic() - started < 2
    assert not task.done()  # left behind, and said so, rather than waited for
    finished.set()  # the loops' own stop flag: how the sampler and the postcode watch end in that case
    await asyncio.wait_for(task, 2)
