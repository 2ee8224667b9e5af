"""Sign-in request limits, shared by every web process: fixed-window counters in Redis, checked in one Lua call
(`signin_limits.lua`).

Keys hold HMAC digests of the address and the e-mail, never the values themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from app.redis_scripts import script
from app.volunteers.signup_queue import digest

PREFIX = "renfort:signin:rate:"

IP_WINDOW = 60
EMAIL_WINDOW = 3600


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # ok | ip | email
    retry_after: int


class SignInLimiter:
    def __init__(self, redis: Redis, secret: str, *, ip_per_minute: int, email_per_hour: int) -> None:
        self.secret = secret
        self.ip_per_minute = ip_per_minute
        self.email_per_hour = email_per_hour
        self._check = script(redis, Path(__file__).parent, "signin_limits")

    async def check(self, *, client_ip: str, email_normalized: str) -> Verdict:
        now = int(time.time())
        keys = [
            f"{PREFIX}ip:{digest(self.secret, client_ip)}:{now // IP_WINDOW}",
            f"{PREFIX}email:{digest(self.secret, email_normalized)}:{now // EMAIL_WINDOW}",
        ]
        outcome, ttl = await self._check(
            keys=keys, args=[self.ip_per_minute, IP_WINDOW, self.email_per_hour, EMAIL_WINDOW]
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        return Verdict(outcome=outcome, retry_after=max(1, int(ttl)))
