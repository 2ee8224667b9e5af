"""The release step's part: version 1 of every legal text on a database that has none, and the current versions
written to Redis (after a Redis loss too)."""

from __future__ import annotations

from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.legal.current import copy_of
from app.legal.service import load_versions, seed_defaults
from app.settings import Settings


async def publish_legal_texts(settings: Settings) -> int:
    """Returns how many texts were added (0 once they exist)."""
    engine = make_engine(settings.database_url, pool_size=0)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with unit_of_work(engine) as session:
            added = await seed_defaults(session)
            versions = await load_versions(session)
        await copy_of(redis).publish(versions)
    finally:
        await engine.dispose()
        await redis.aclose()
    return added
