"""What a web process holds for its lifetime, built once at start-up: clients, queue, reference index."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.accounts.ratelimit import SignInLimiter
from app.applications.capacity import Places
from app.background import stop_background
from app.db.after_commit import Clients
from app.db.base import make_engine
from app.geo.index import PostcodeIndex, publish_snapshot, read_snapshot_and_digest, snapshot_digest
from app.geo.service import build_postcode_index
from app.partners.nearby import Nearby
from app.redis_memory import MemoryGuard, warn_if_unsafe
from app.settings import Settings
from app.switches.board import SwitchBoard
from app.switches.store import SwitchStore
from app.volunteers.intake import SignupIntake
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue
from surge.emergencies.page import PageCache

log = logging.getLogger("renfort.web")
# How often a web process looks for another postcode snapshot than the one it holds (one small GET).
POSTCODES_RECHECK_SECONDS = 5.0


@dataclass
class WebState:
    settings: Settings
    redis: Redis
    rq_connection: SyncRedis
    engine: AsyncEngine
    intake: SignupIntake
    signups: SignupQueue
    postcodes: PostcodeIndex
    signin_limiter: SignInLimiter
    places: Places
    pages: PageCache
    memory_guard: MemoryGuard
    switches: SwitchBoard  # this process's copy of the runtime switches and its load-shedding signals
    nearby: Nearby  # the partner read API's snapshot of the online missions and its small asyncpg pool
    postcodes_digest: str | None = None
    postcodes_watch: asyncio.Task[None] | None = None
    postcodes_stopping: bool = False

    @property
    def clients(self) -> Clients:
        """For the after-commit actions of this process's transactions (app/db/after_commit.py)."""
        return Clients(self.redis, self.rq_connection)

    async def request_drain(self, drain: Callable[[SyncRedis], object] = enqueue.drain_signups) -> None:
        """Enqueues a drain (of sign-ups, or `enqueue.drain_applications`), off the event loop (RQ's client is
        synchronous); at most once per drain cycle.

        The write is already safe in Redis when this runs: if enqueueing fails, the workers' maintenance tick
        schedules the drain instead, so the citizen still gets their answer."""
        try:
            await asyncio.to_thread(drain, self.rq_connection)
        except RedisError as error:
            log.warning("could not enqueue a drain (%s); workers will schedule it", type(error).__name__)

    async def enqueue_quietly(self, enqueue_job: Callable[..., object], *args: Any) -> bool:
        """Enqueues a job off the event loop; False (logged) when Redis refuses, for work that may be lost rather
        than fail the request it follows."""
        try:
            await asyncio.to_thread(enqueue_job, self.rq_connection, *args)
        except RedisError as error:
            log.warning("could not enqueue %s (%s)", getattr(enqueue_job, "__name__", "a job"), type(error).__name__)
            return False
        return True

    async def watch_postcodes(self, every: float = POSTCODES_RECHECK_SECONDS) -> None:
        """Takes up the postcode snapshot `release` publishes after this process started, without a restart: the
        first one on a first deploy (a PaaS may start web before release), a new geography later. Off the request
        path: one GET of the digest every `every` seconds, the snapshot itself only when the digest changed."""
        while not self.postcodes_stopping:
            await asyncio.sleep(every)
            try:
                if not len(self.postcodes):
                    index, digest = await load_postcodes(self.redis, self.engine, quiet=True)
                elif (digest := await snapshot_digest(self.redis)) is None or digest == self.postcodes_digest:
                    continue
                else:
                    snapshot = await read_snapshot_and_digest(self.redis)
                    if snapshot is None:
                        continue
                    index, digest = snapshot
            except (RedisError, msgspec.DecodeError, msgspec.ValidationError) as error:
                log.warning("could not check the postcode snapshot (%s); will retry", type(error).__name__)
                continue
            except Exception:  # the watch must outlive any surprise, or a first deploy's web never takes sign-ups
                log.exception("could not check the postcode snapshot; will retry")
                continue
            if len(index) and digest != self.postcodes_digest:
                self.postcodes, self.postcodes_digest = index, digest
                log.info("postcode index loaded: %d postal codes", len(index))

    async def close(self) -> None:
        await self.switches.stop()
        await self.nearby.close()
        if self.postcodes_watch is not None:
            self.postcodes_stopping = True
            await stop_background(self.postcodes_watch, grace=2.0)
        await self.redis.aclose()
        self.rq_connection.close()
        await self.engine.dispose()


async def load_postcodes(redis: Redis, engine: AsyncEngine, *,
                         quiet: bool = False) -> tuple[PostcodeIndex, str | None]:
    """The index and its snapshot's digest: from the Redis snapshot when there is one (no SQL, works while
    PostgreSQL is down), else from PostgreSQL; empty before the first release (no tables or no communes yet), when
    sign-ups answer 503 until `WebState.watch_postcodes` finds it."""
    snapshot = await read_snapshot_and_digest(redis)
    if snapshot is not None:
        return snapshot
    try:
        async with async_sessionmaker(engine)() as session:
            index = await build_postcode_index(session)
    except (SQLAlchemyError, OSError) as error:  # no tables yet (release has not run), or PostgreSQL away
        index = PostcodeIndex({})
        if not quiet:
            log.warning("could not read the communes from PostgreSQL (%s)", type(error).__name__)
    if not len(index):
        if not quiet:
            log.error("no communes loaded yet: sign-ups answer 503 until the release command (python -m "
                      "app.release) publishes them; this process takes them up without a restart")
        return index, None
    try:
        return index, await publish_snapshot(redis, index)
    except RedisError as error:  # e.g. Redis at its memory limit: this process has its index all the same
        log.warning("could not publish the postcode snapshot (%s)", type(error).__name__)
        return index, None


async def build_state(settings: Settings) -> WebState:
    redis = Redis.from_url(settings.redis_url, max_connections=256)
    engine = make_engine(settings.database_url)
    secret = settings.secret_key.reveal()
    await warn_if_unsafe(redis)
    memory_guard = MemoryGuard(redis, threshold=settings.redis_memory_limit_fraction)
    postcodes, postcodes_digest = await load_postcodes(redis, engine)
    state = WebState(
        settings=settings,
        redis=redis,
        rq_connection=enqueue.connect(settings.redis_url),
        engine=engine,
        intake=SignupIntake(
            redis,
            secret,
            ip_limit_per_minute=settings.signup_ip_limit_per_minute,
            backlog_limit=settings.signup_backlog_limit,
            memory=memory_guard,
        ),
        signups=SignupQueue(redis, secret),
        postcodes=postcodes,
        postcodes_digest=postcodes_digest,
        signin_limiter=SignInLimiter(
            redis,
            secret,
            ip_per_minute=settings.signin_ip_limit_per_minute,
            email_per_hour=settings.signin_email_limit_per_hour,
        ),
        places=Places(redis, backlog_limit=settings.application_backlog_limit, memory=memory_guard),
        pages=PageCache(redis),
        memory_guard=memory_guard,
        switches=SwitchBoard(SwitchStore(redis), SignupQueue(redis, secret).oldest_age_seconds,
                             queue_age_limit=settings.shed_queue_age_seconds,
                             loop_lag_limit=settings.shed_loop_lag_ms / 1000),
        nearby=Nearby(settings.database_url, redis),
    )
    state.postcodes_watch = asyncio.create_task(state.watch_postcodes())
    await state.switches.start()
    return state
