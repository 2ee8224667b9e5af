"""Providers shared by every controller."""

from __future__ import annotations

from litestar.datastructures import State

from app.state import WebState


def provide_web(state: State) -> WebState:
    return state.web  # type: ignore[no-any-return]
