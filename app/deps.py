"""Providers shared by every controller."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from app.state import WebState


def provide_web(state: State) -> WebState:
    web: WebState = state.web
    return web


# Handlers declare `web: Web`: the dependency is named explicitly, as Litestar 3 will require.
Web = NamedDependency[WebState]
