"""Providers shared by every controller."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import unit_of_work
from app.state import WebState


def provide_web(state: State) -> WebState:
    web: WebState = state.web
    return web


async def provide_db(state: State) -> AsyncIterator[AsyncSession]:
    """One transaction per request, for the handlers that declare `db: Db` (never the surge paths): committed when
    the handler returns, rolled back when it raises."""
    web = provide_web(state)
    async with unit_of_work(web.engine, web.clients) as session:  # and then the work registered for after it
        yield session


# Handlers declare `web: Web`: the dependency is named explicitly, as Litestar 3 will require.
Web = NamedDependency[WebState]
Db = NamedDependency[AsyncSession]
