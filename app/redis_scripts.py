"""Lua scripts live in `.lua` files next to the module that owns them; each is read from disk once per process and
registered on a client (redis-py then runs it by EVALSHA, loading it again after a Redis restart)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from redis.commands.core import AsyncScript


@cache
def source(folder: Path, name: str) -> str:
    return (folder / f"{name}.lua").read_text()


def script(redis: Any, folder: Path, name: str) -> AsyncScript:
    """`folder`: the owner module's folder (`Path(__file__).parent`); `name`: the file's name without `.lua`."""
    return redis.register_script(source(folder, name))
