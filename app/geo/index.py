"""The postal-code → communes index the sign-up path validates against, in memory, with no SQL per request.

Web processes load it at start-up from a Redis snapshot, which `release` publishes from PostgreSQL, so a web
process can start (and keep accepting sign-ups) while PostgreSQL is down. The snapshot's digest, a key of its own,
lets running processes notice a new snapshot with one small read (app/state.py).
"""

from __future__ import annotations

import hashlib

import msgspec
from redis.asyncio import Redis

SNAPSHOT_KEY = "renfort:geo:postcodes:v1"
SNAPSHOT_DIGEST_KEY = "renfort:geo:postcodes:v1:digest"


class PostcodesUnavailable(Exception):
    """No postal code is known yet (a first deploy whose release has not run): nothing can be validated."""


class CommuneChoice(msgspec.Struct, frozen=True):
    code: str
    name: str


class PostcodeIndex:
    def __init__(self, by_postcode: dict[str, list[CommuneChoice]]) -> None:
        self._by_postcode = {code: tuple(choices) for code, choices in by_postcode.items()}
        self._communes = frozenset(choice.code for choices in by_postcode.values() for choice in choices)

    def __len__(self) -> int:
        return len(self._by_postcode)

    def communes(self, postal_code: str) -> tuple[CommuneChoice, ...]:
        return self._by_postcode.get(postal_code, ())

    def knows_commune(self, commune_code: str) -> bool:
        return commune_code in self._communes

    def to_bytes(self) -> bytes:
        return msgspec.msgpack.encode(self._by_postcode)

    @classmethod
    def from_bytes(cls, blob: bytes) -> PostcodeIndex:
        return cls(msgspec.msgpack.decode(blob, type=dict[str, list[CommuneChoice]]))


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


async def publish_snapshot(redis: Redis, index: PostcodeIndex) -> str:
    """Publishes `index` for every web process; returns its digest."""
    blob = index.to_bytes()
    digest = _digest(blob)
    # The blob first: a process that sees the new digest always finds the new blob. Two plain commands, no MULTI,
    # so the keys may live on different nodes of a cluster.
    await redis.set(SNAPSHOT_KEY, blob)
    await redis.set(SNAPSHOT_DIGEST_KEY, digest)
    return digest


async def read_snapshot(redis: Redis) -> PostcodeIndex | None:
    snapshot = await read_snapshot_and_digest(redis)
    return snapshot[0] if snapshot else None


async def read_snapshot_and_digest(redis: Redis) -> tuple[PostcodeIndex, str] | None:
    """The published index and the digest of what was read; None when there is none, or an empty one."""
    blob = await redis.get(SNAPSHOT_KEY)
    if not blob:
        return None
    index = PostcodeIndex.from_bytes(_bytes(blob))
    return (index, _digest(_bytes(blob))) if len(index) else None


async def snapshot_digest(redis: Redis) -> str | None:
    """The digest of the latest snapshot: a few bytes to read, to tell whether the snapshot changed. None before
    the first publication (or one by a version that wrote no digest)."""
    digest = await redis.get(SNAPSHOT_DIGEST_KEY)
    return _bytes(digest).decode() if digest else None
