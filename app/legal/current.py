"""Which version of each legal text is current, as Redis holds it, so that the sign-up path, the guards and the
legal pages learn it without SQL.

One hash (`LegalKeys.current`): a field per kind with its current version, and `terms_major` with the latest terms
version everyone must have accepted. The release step writes it, every publication raises it after its commit.
Each web process keeps a copy of it at most a second old, and of the texts it rendered (a published version never
changes), both per Redis client: a new app starts with fresh copies.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from redis.asyncio import Redis

from app.legal.kinds import Kind
from app.redis_scripts import script

FRESH_SECONDS = 1.0
TERMS_MAJOR = "terms_major"


@dataclass(frozen=True, slots=True)
class LegalKeys:
    current: str = "renfort:legal:current"


KEYS = LegalKeys()


@dataclass(frozen=True, slots=True)
class Versions:
    current: dict[Kind, int]
    terms_major: int

    @property
    def terms(self) -> int | None:
        return self.current.get(Kind.TERMS)

    def fields(self) -> list[str | int]:
        pairs: list[str | int] = []
        for kind, version in self.current.items():
            pairs.extend((kind.value, version))
        if self.terms_major:
            pairs.extend((TERMS_MAJOR, self.terms_major))
        return pairs


@dataclass(frozen=True, slots=True)
class Rendered:
    """One version of a text as its page shows it (settings substituted, markup turned into escaped HTML)."""

    kind: Kind
    version: int
    title: str
    html: str
    published_at: Any
    major: bool


def _decode(raw: dict[Any, Any]) -> Versions | None:
    values = {(k.decode() if isinstance(k, bytes) else str(k)): int(v) for k, v in raw.items()}
    current = {kind: values[kind.value] for kind in Kind if kind.value in values}
    if not current:
        return None
    return Versions(current, values.get(TERMS_MAJOR, 1))


@dataclass(slots=True)
class LegalCopy:
    """The per-process copies for one Redis client."""

    redis: Redis
    versions: Versions | None = None
    read_at: float = float("-inf")
    texts: dict[tuple[Kind, int], Rendered] = field(default_factory=dict)
    reading: asyncio.Future[Versions | None] | None = None

    async def get(self) -> Versions | None:
        """The current versions, read again from Redis when the copy is over a second old; None when Redis has
        none (then the callers that may use PostgreSQL load them, see app/legal/service.py)."""
        if time.monotonic() - self.read_at <= FRESH_SECONDS:
            return self.versions
        if self.reading is None:  # the requests arriving meanwhile share this one read
            self.reading = asyncio.ensure_future(self._read())
        reading = self.reading
        try:
            return await asyncio.shield(reading)
        finally:
            if reading.done() and self.reading is reading:
                self.reading = None

    async def _read(self) -> Versions | None:
        started = time.monotonic()
        self.versions = _decode(await self.redis.hgetall(KEYS.current))
        self.read_at = started
        return self.versions

    def forget(self) -> None:
        self.read_at = float("-inf")

    async def publish(self, versions: Versions) -> None:
        await script(self.redis, Path(__file__).parent, "raise")(keys=[KEYS.current], args=versions.fields())
        self.forget()


_copies: WeakKeyDictionary[Redis, LegalCopy] = WeakKeyDictionary()


def copy_of(redis: Redis) -> LegalCopy:
    found = _copies.get(redis)
    if found is None:
        found = _copies[redis] = LegalCopy(redis)
    return found


async def terms_version(redis: Redis) -> int | None:
    """The current terms version, for the sign-up path (Redis only); None when Redis does not know it, and the drain
    then records the version in force when the sign-up was accepted."""
    versions = await copy_of(redis).get()
    return versions.terms if versions is not None else None
