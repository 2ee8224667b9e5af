"""The `release` step: migrations, reference geography, and the postal-code snapshot web processes start from.

Idempotent: run it at every deploy (`python -m app.release`).
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from alembic import command
from alembic.config import Config
from redis.asyncio import Redis

from app.db.base import make_engine, unit_of_work
from app.geo.index import publish_snapshot
from app.geo.service import build_postcode_index, load_reference_data
from app.legal.release import publish_legal_texts
from app.main import ROOT
from app.observability import configure_logging
from app.settings import Settings, get_settings

log = logging.getLogger("renfort.release")
# One release at a time: platforms that run the hook on every instance start several at once.
RELEASE_LOCK = 7_212_020_300


def migrate(settings: Settings) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "app" / "db" / "migrations"))
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, "head")


async def load_geography(settings: Settings) -> int:
    engine = make_engine(settings.database_url, pool_size=0)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with unit_of_work(engine) as session:
            count = await load_reference_data(session)
        async with unit_of_work(engine) as session:
            index = await build_postcode_index(session)
        await publish_snapshot(redis, index)
    finally:
        await engine.dispose()
        await redis.aclose()
    return count


async def release(settings: Settings) -> int:
    """Migrations then geography, under a session-level advisory lock: a second release started meanwhile waits for
    the first, then finds everything applied and does nothing."""
    lock = await asyncpg.connect(settings.sync_database_url)
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", RELEASE_LOCK)
        await asyncio.to_thread(migrate, settings)  # Alembic runs its own event loop
        count = await load_geography(settings)
        await publish_legal_texts(settings)
        return count
    finally:
        await lock.close()  # ends the session, and the lock with it


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    count = asyncio.run(release(settings))
    log.info("release done: migrations applied, %s", f"{count} communes loaded" if count else "geography up to date")


if __name__ == "__main__":
    main()
