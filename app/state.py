"""What a web process holds for its lifetime, built once at start-up: clients, queue, reference index."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from app.accounts.ratelimit import SignInLimiter
from app.applications.capacity import Places
from app.db.after_commit import Clients
from app.db.base import make_engine
from app.geo.index import PostcodeIndex, publish_snapshot, read_snapshot
from app.geo.service import build_postcode_index
from app.redis_memory import MemoryGuard, warn_if_unsafe
from app.settings import Settings
from app.volunteers.intake import SignupIntake
from app.volunteers.signup_queue import SignupQueue
from queues import enqueue
from surge.emergencies.page import PageCache

log = logging.getLogger("renfort.web")


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

    async def close(self) -> None:
        await self.redis.aclose()
        self.rq_connection.close()
        await self.engine.dispose()


async def load_postcodes(redis: Redis, engine: AsyncEngine) -> PostcodeIndex:
    """From the Redis snapshot when there is one (no SQL, works while PostgreSQL is down), else from PostgreSQL."""
    index = await read_snapshot(redis)
    if index is None:
        async with async_sessionmaker(engine)() as session:
            index = await build_postcode_index(session)
        try:
            await publish_snapshot(redis, index)
        except RedisError as error:  # e.g. Redis at its memory limit: this process has its index all the same
            log.warning("could not publish the postcode snapshot (%s)", type(error).__name__)
    if not len(index):
        log.error("no communes loaded: run the release command (python -m app.release)")
    return index


async def build_state(settings: Settings) -> WebState:
    redis = Redis.from_url(settings.redis_url, max_connections=256)
    engine = make_engine(settings.database_url)
    secret = settings.secret_key.reveal()
    await warn_if_unsafe(redis)
    memory_guard = MemoryGuard(redis, threshold=settings.redis_memory_limit_fraction)
    return WebState(
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
        postcodes=await load_postcodes(redis, engine),
        signin_limiter=SignInLimiter(
            redis,
            secret,
            ip_per_minute=settings.signin_ip_limit_per_minute,
            email_per_hour=settings.signin_email_limit_per_hour,
        ),
        places=Places(redis, backlog_limit=settings.application_backlog_limit, memory=memory_guard),
        pages=PageCache(redis),
        memory_guard=memory_guard,
    )
