"""A web process's copy of the switches and of its load signals, refreshed by one background task, so that the gate
reads plain attributes on every request and never waits on Redis.

Every `interval` the sampler reads the switches and the age of the oldest queued sign-up (two Redis calls per
process, whatever the traffic), and measures how late its own sleep woke up: the event loop's lag. Load shedding
starts when the oldest sign-up has waited `queue_age_limit` seconds (the drain is behind: pages that load
PostgreSQL step aside) or the loop lagged `loop_lag_limit` seconds twice in a row (the process is saturated; one
late wake-up, a collection or a descheduled moment, is not enough), and lasts until both signals have been back
under their limits for `hold` seconds, so pages do not flap. A limit of 0 turns its signal off.

Redis unreachable: the last values stand, and `redis_reachable` says so (the sign-up page tells citizens); a
process that never read them has every switch off. A read past its deadline is not enough to say so when the
deadline itself fired late: then this process's own loop was behind (a surge), and the sign-up page must not close
for it; nor is one deadline on time, only reads failing for `UNREACHABLE_AFTER` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from app.background import stop_background
from app.switches.schemas import Switch
from app.switches.store import SwitchStore

log = logging.getLogger("renfort.switches")

LAG_SAMPLES_TO_SHED = 2
# A deadline that fires later than this after it was due: the event loop was busy, whatever Redis did.
LATE_DEADLINE_SECONDS = 0.05
UNREACHABLE_AFTER = 2.0  # seconds without a successful read (deadlines only; a refused connection counts at once)


class SwitchBoard:
    def __init__(self, store: SwitchStore, oldest_signup_age: Callable[[], Awaitable[float]], *,
                 queue_age_limit: float, loop_lag_limit: float, interval: float = 0.5, hold: float = 5.0) -> None:
        self.store = store
        self.oldest_signup_age = oldest_signup_age
        self.queue_age_limit = queue_age_limit
        self.loop_lag_limit = loop_lag_limit
        self.interval = interval
        self.read_timeout = interval
        self.hold = hold
        self.on: frozenset[Switch] = frozenset()
        self.maintenance = False
        self.read_only = False
        self.shedding = False
        # Any mode that closes a path: the one attribute the gate reads on every request.
        self.closing = False
        self.redis_reachable = True
        self.read_at: float | None = None  # monotonic time of the last successful read
        self.queue_age = 0.0
        self.loop_lag = 0.0
        self.pages: dict[str, bytes] = {}  # the gate's rendered 503 pages, by kind
        self._lagging = 0
        self._shed_until = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Reads once before the process serves (a process started during maintenance is in maintenance from its
        first request), then keeps reading in the background."""
        await self.sample()
        self._task = asyncio.create_task(self._run(), name="renfort switch sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            await stop_background(self._task, grace=self.interval + self.read_timeout + 1)
            self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            started = time.monotonic()
            await asyncio.sleep(self.interval)
            try:
                self.observe_lag(time.monotonic() - started - self.interval)
                await self.sample()
            except Exception:  # the sampler must outlive anything one round meets
                log.exception("the switch sampler failed a round; it goes on")

    def observe_lag(self, lag: float) -> None:
        self.loop_lag = max(0.0, lag)
        self._lagging = self._lagging + 1 if self.loop_lag_limit and self.loop_lag >= self.loop_lag_limit else 0

    async def sample(self) -> None:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.read_timeout):
                on = await self.store.read()
                queue_age = await self.oldest_signup_age()
        except TimeoutError:
            now = time.monotonic()
            on_time = now - started - self.read_timeout < LATE_DEADLINE_SECONDS
            if on_time and (self.read_at is None or now - self.read_at >= UNREACHABLE_AFTER):
                self._unreachable("TimeoutError")
        except (RedisError, OSError) as error:
            self._unreachable(type(error).__name__)
        else:
            if not self.redis_reachable:
                log.warning("switches: Redis reachable again")
            self.redis_reachable = True
            self.read_at = time.monotonic()
            if on != self.on:
                log.warning("switches now on: %s", ", ".join(sorted(on)) or "none")
            self.on, self.queue_age = on, queue_age
        self._decide()

    def _unreachable(self, why: str) -> None:
        if self.redis_reachable:
            log.warning("switches: Redis unreachable (%s); keeping the last values", why)
        self.redis_reachable = False

    def _overloaded(self) -> str | None:
        if self.queue_age_limit and self.queue_age >= self.queue_age_limit:
            return f"oldest queued sign-up {self.queue_age:.0f} s (limit {self.queue_age_limit:g} s)"
        if self._lagging >= LAG_SAMPLES_TO_SHED:
            return f"event-loop lag {self.loop_lag * 1000:.0f} ms (limit {self.loop_lag_limit * 1000:g} ms)"
        return None

    def _decide(self) -> None:
        now = time.monotonic()
        why = self._overloaded()
        if why is not None:
            if not self.shedding:
                log.warning("load shedding on: %s", why)
            self._shed_until = now + self.hold
        shedding = now < self._shed_until
        if self.shedding and not shedding:
            log.warning("load shedding off")
        maintenance, read_only = Switch.MAINTENANCE in self.on, Switch.ORGANISATIONS_READ_ONLY in self.on
        self.maintenance, self.read_only, self.shedding = maintenance, read_only, shedding
        self.closing = maintenance or read_only or shedding
