"""Providers shared by every controller."""

from __future__ import annotations

from litestar.datastructures import State

from app.state import WebState


def provide_web(state: State) -> WebState:
    web: WebState = state.web
    return web
