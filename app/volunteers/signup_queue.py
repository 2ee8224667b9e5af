"""The sign-up queue in Redis: a `DurableQueue` under `renfort:signups:` whose records are `QueuedSignup`s, plus the
keys only the sign-up path has: the e-mail dedupe marks, idempotency keys and per-address counters (`SignupKeys`).
Dead letters are owned by the keyed digest of the e-mail, so erasing a person finds theirs without reading others.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from app.durable_queue import DRAIN_SCHEDULED_TTL, RECEIPT_TTL, DurableQueue, QueueKeys
from app.volunteers.schemas import QueuedSignup

PREFIX = "renfort:signups:"
KEYS = QueueKeys(PREFIX)
PENDING = KEYS.pending
__all__ = ["DRAIN_SCHEDULED_TTL", "KEYS", "PENDING", "PREFIX", "RECEIPT_TTL", "SignupKeys", "SignupQueue", "digest"]


def digest(secret: str, value: str) -> str:
    # Keyed so that Redis key names (and erasure tombstones) reveal nothing about who signed up.
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:40]


@dataclass(frozen=True, slots=True)
class SignupKeys:
    """The sign-up path's own keys beside its queue's, named by keyed digests, never by an address."""

    secret: str

    def email_mark(self, email_normalized: str) -> str:
        return PREFIX + "email:" + digest(self.secret, email_normalized)

    def idempotency(self, key: str) -> str:
        return PREFIX + "idempotency:" + digest(self.secret, key)

    def rate(self, client_ip: str, minute: int) -> str:
        return f"{PREFIX}rate:{digest(self.secret, client_ip)}:{minute}"

    def owner(self, email_normalized: str) -> str:
        """Who a queued record is about, for its dead letter's index and erasure."""
        return digest(self.secret, email_normalized)


class SignupQueue(DurableQueue):
    def __init__(self, redis: Redis, secret: str) -> None:
        super().__init__(redis, PREFIX)
        self.secret = secret
        self.signup_keys = SignupKeys(secret)

    async def receipt_status(self, receipt: str) -> str | None:
        status = await self.redis.get(self.keys.receipt(receipt))
        return status.decode() if isinstance(status, bytes) else status

    async def forget_person(self, email_normalized: str) -> None:
        """Erasure's part in Redis: the person's dead letters and dedupe mark (copies still queued are stopped by
        the drain, against the erasure's tombstone in PostgreSQL)."""
        await self.forget_owner(self.signup_keys.owner(email_normalized))
        await self.redis.delete(self.signup_keys.email_mark(email_normalized))

    def describe(self, record: bytes) -> tuple[str, str]:
        signup = msgspec.json.decode(record, type=QueuedSignup)
        return signup.receipt, self.signup_keys.owner(signup.email_normalized)

    def accepted_at(self, record: bytes) -> float | None:
        try:
            return msgspec.json.decode(record, type=QueuedSignup).accepted_at.timestamp()
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None
