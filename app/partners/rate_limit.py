"""Per-partner rate limits shared by every web process: a fixed one-minute window counted in Redis by one script,
which also returns the partners' version so that a request costs a single Redis round trip."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from redis.asyncio import Redis

WINDOW_SECONDS = 60
SCRIPT = (Path(__file__).parent / "rate_limit.lua").read_text()


@dataclass(frozen=True, slots=True)
class PartnerKeys:
    """The partners' Redis keys. One hash tag for all of them: the script touches the version and a counter together,
    so they must share a slot on a Redis Cluster."""

    partner_id: int
    version: ClassVar[str] = "{renfort:partners}:version"

    @property
    def requests(self) -> str:
        return f"{{renfort:partners}}:requests:{self.partner_id}"


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    used: int
    reset_seconds: int

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(self.limit - self.used, 0)),
                "X-RateLimit-Reset": str(self.reset_seconds)}


class RateLimiter:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(SCRIPT)

    async def hit(self, partner_id: int, limit: int) -> tuple[str, Quota]:
        """Counts one request; returns the partners' version as Redis holds it, and the partner's quota."""
        keys = PartnerKeys(partner_id)
        version, used, ttl_ms = await self._script(keys=[keys.version, keys.requests],
                                                   args=[WINDOW_SECONDS * 1000])
        text = version.decode() if isinstance(version, bytes) else str(version)
        return text, Quota(limit=limit, used=int(used), reset_seconds=max(math.ceil(int(ttl_ms) / 1000), 1))
