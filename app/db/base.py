"""Declarative base and engine factory shared by the web process, workers and scripts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool

from app.db.after_commit import Clients, pending, run_after_commit

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(database_url: str, *, pool_size: int = 5) -> AsyncEngine:
    """An engine owned by one event loop: web processes keep a pool; each job builds a small one of its own (RQ runs
    it in a fresh loop) and disposes of it at the end; one-off scripts pass 0 for no pool at all."""
    # hide_parameters: a database error's message never carries the bound values (names, e-mails, phones) into a
    # log line or a Sentry event.
    if pool_size == 0:
        return create_async_engine(database_url, poolclass=NullPool, hide_parameters=True)
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
                               hide_parameters=True)


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine, clients: Clients | None = None) -> AsyncIterator[AsyncSession]:
    """One transaction, for requests, jobs and scripts: commits on success, rolls back on error, then runs the
    after-commit actions the work registered (app/db/after_commit.py) with `clients`."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        async with session.begin():
            yield session
            if clients is None and pending(session):
                raise RuntimeError("after-commit actions registered in a transaction whose owner runs none")
        if clients is not None:
            await run_after_commit(session, clients)
