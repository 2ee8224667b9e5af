"""The postal-code → communes index the sign-up path validates against, in memory, with no SQL per request.

Web processes load it at start-up from a Redis snapshot, which `release` publishes from PostgreSQL, so a web
process can start (and keep accepting sign-ups) while PostgreSQL is down.
"""

from __future__ import annotations

import msgspec
from redis.asyncio import Redis

SNAPSHOT_KEY = "renfort:geo:postcodes:v1"


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


async def publish_snapshot(redis: Redis, index: PostcodeIndex) -> None:
    await redis.set(SNAPSHOT_KEY, index.to_bytes())


async def read_snapshot(redis: Redis) -> PostcodeIndex | None:
    blob = await redis.get(SNAPSHOT_KEY)
    return PostcodeIndex.from_bytes(blob.encode() if isinstance(blob, str) else blob) if blob else None
