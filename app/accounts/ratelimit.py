"""Sign-in request limits, shared by every web process: fixed-window counters in Redis, checked in one Lua call.

Keys hold HMAC digests of the address and the e-mail, never the values themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from app.volunteers.signup_queue import digest

PREFIX = "renfort:signin:rate:"

# The per-IP counter first; the per-e-mail one only counts requests that got past it.
CHECK = """
local ip_limit, email_limit = tonumber(ARGV[1]), tonumber(ARGV[3])
if ip_limit > 0 then
  local count = redis.call('INCR', KEYS[1])
  if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
  if count > ip_limit then return {'ip', redis.call('TTL', KEYS[1])} end
end
if email_limit > 0 then
  local count = redis.call('INCR', KEYS[2])
  if count == 1 then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
  if count > email_limit then return {'email', redis.call('TTL', KEYS[2])} end
end
return {'ok', 0}
"""

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
        self._check = redis.register_script(CHECK)

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
