"""Per-job runtime: RQ runs each job in a fresh event loop, so a job builds its own engine and Redis client
instead of reusing a pooled one from another loop, and disposes of them when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.after_commit import Clients
from app.db.base import make_engine
from app.settings import Settings, get_settings
from queues.connection import sync_redis

T = TypeVar("T")


@dataclass
class JobContext:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    rq_connection: SyncRedis

    @property
    def clients(self) -> Clients:
        """For the after-commit actions of the job's transactions: `unit_of_work(context.engine, context.clients)`."""
        return Clients(self.redis, self.rq_connection)


@asynccontextmanager
async def job_context() -> AsyncIterator[JobContext]:
    settings = get_settings()
    # One connection kept for the job's life: a drain writes many batches and should not reconnect for each.
    engine = make_engine(settings.database_url, pool_size=1)
    redis = Redis.from_url(settings.redis_url)
    rq_connection = sync_redis(settings.redis_url)
    try:
        yield JobContext(settings=settings, engine=engine, redis=redis, rq_connection=rq_connection)
    finally:
        await engine.dispose()
        await redis.aclose()
        rq_connection.close()


def run_job(body: Callable[[JobContext], Awaitable[T]]) -> T:
    async def main() -> T:
        async with job_context() as context:
            return await body(context)

    return asyncio.run(main())
