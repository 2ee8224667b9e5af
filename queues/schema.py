"""A worker drains only into the database its code was written for: its schema, and its geography.

A PaaS may start the new workers before `release` runs (Scalingo's postdeploy comes after them), or an old worker
may restart after a newer release migrated: either way the worker waits, saying why, until the database's Alembic
revision is the head this code ships and the geography it validates against is loaded (sign-ups name communes that
must exist), then starts. Nothing is lost meanwhile: the writes wait in Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from app.db.base import make_engine
from app.geo import dataset
from app.geo.models import ReferenceData
from app.geo.service import DATASET

log = logging.getLogger("renfort.worker")
MIGRATIONS = Path(__file__).resolve().parent.parent / "app" / "db" / "migrations"
CHECK_SECONDS = 2.0  # how soon a waiting worker starts once the migrations are in
LOG_SECONDS = 30.0  # how often it says it is still waiting


def expected_heads() -> frozenset[str]:
    """The revision(s) this code's migrations end at."""
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


@dataclass(frozen=True)
class DatabaseState:
    heads: frozenset[str]  # Alembic revision(s); empty when there is no schema at all
    geography: str | None  # the geography version `release` recorded, when the schema is current


def _heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def read_state(database_url: str, expected: frozenset[str]) -> DatabaseState:
    engine = make_engine(database_url, pool_size=0)
    try:
        async with engine.connect() as connection:
            heads = frozenset(await connection.run_sync(_heads))
            geography = None
            if heads == expected:  # only then is reference_data the table this code knows
                query = select(ReferenceData.version).where(ReferenceData.name == DATASET)
                geography = await connection.scalar(query)
            return DatabaseState(heads, geography)
    finally:
        await engine.dispose()


def why_not_ready(state: DatabaseState, expected: frozenset[str], known: frozenset[str],
                  geography: str) -> str | None:
    """None when the database is the one this code expects, else what to tell ops."""
    current = state.heads
    if current == expected:
        if state.geography == geography:
            return None
        return (f"the schema is current but the geography {geography} is not loaded yet (found: "
                f"{state.geography or 'none'}); waiting for the release command")
    wanted = ", ".join(sorted(expected))
    if not current:
        return f"the database has no schema yet; waiting for the release command to migrate it to {wanted}"
    found = ", ".join(sorted(current))
    if current - known:
        return (f"the database is at revision {found}, which this code does not know (a newer release migrated "
                f"it?); waiting for it to be at {wanted} rather than writing into a schema this code was not "
                "written for")
    return f"the database is at revision {found}, this code expects {wanted}; waiting for the release command"


def wait_for_schema(database_url: str, *, check_every: float = CHECK_SECONDS, log_every: float = LOG_SECONDS,
                    clock: Callable[[], float] = time.monotonic) -> None:
    """Returns once the database is at this code's head revision with its geography loaded; until then checks every
    `check_every` seconds, logs every `log_every` seconds, and never raises for a database that is away (it is only
    waited for)."""
    expected = expected_heads()
    known = known_revisions()
    geography = dataset.version()
    last_log = -log_every
    waited = False
    while True:
        try:
            reason = why_not_ready(asyncio.run(read_state(database_url, expected)), expected, known, geography)
        except (SQLAlchemyError, OSError) as error:
            reason = f"cannot read the schema revision ({type(error).__name__}); waiting for PostgreSQL"
        if reason is None:
            if waited:
                log.info("the database is at %s with geography %s: the worker starts", ", ".join(sorted(expected)),
                         geography)
            return
        if clock() - last_log >= log_every:
            log.warning("the worker does not start yet: %s", reason)
            last_log = clock()
        waited = True
        time.sleep(check_every)
