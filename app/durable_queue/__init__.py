"""A Redis list that loses, doubles and blocks on nothing when consumers die, stall or Redis is full: the shape both
queued write paths share (sign-ups, applications). Its scripts are the `.lua` files beside this module.

A consumer claims a batch into its own in-flight list under a lease (a token with a TTL), renews the lease while
it writes, and acknowledges with the same token: a consumer whose lease ran out and whose batch was taken back can
neither acknowledge nor give back nor bury anything. Recovery of a dead consumer's batch checks the lease and moves
the batch in one script. Every script that shrinks the queue runs under `allow-oom`, so a Redis at its memory limit
still drains. What a batch's write calls for next (e-mails) is filed in the effects list by the acknowledgement
itself, so nothing is lost between the commit and the enqueue.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from app.redis_scripts import script

DRAIN_SCHEDULED_TTL = 15
RECEIPT_TTL = 30 * 86_400
# Long enough for one delivery round (at most a thousand RQ enqueues), short enough to outlive a dead deliverer.
EFFECTS_LOCK_SECONDS = 30
SCRIPTS = Path(__file__).parent


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Every key of one queue, under its prefix (e.g. `renfort:signups:`); no other module spells them."""

    prefix: str

    @property
    def pending(self) -> str:  # list of encoded records, oldest first
        return self.prefix + "pending"

    @property
    def consumers(self) -> str:  # set of the consumers holding a batch
        return self.prefix + "consumers"

    @property
    def dead(self) -> str:  # hash: record key → the record PostgreSQL refused
        return self.prefix + "dead-letters"

    @property
    def dead_reasons(self) -> str:  # hash: record key → why and when (JSON)
        return self.prefix + "dead-reasons"

    @property
    def dead_order(self) -> str:  # sorted set: record key → when it was buried
        return self.prefix + "dead-order"

    @property
    def totals(self) -> str:  # hash of counts since the queue began: accepted (sign-ups), persisted, dead_lettered
        return self.prefix + "totals"

    @property
    def drain_scheduled(self) -> str:  # set while a drain is queued or running
        return self.prefix + "drain-scheduled"

    @property
    def effects(self) -> str:  # list of after-write effects, filed by acknowledgements, delivered by the drain
        return self.prefix + "effects"

    @property
    def effects_lock(self) -> str:  # held by the one consumer delivering effects
        return self.prefix + "effects-lock"

    @property
    def spread(self) -> str:  # at most one extra consumer asked for per second
        return self.prefix + "spread"

    def inflight(self, consumer: str) -> str:
        return self.prefix + "inflight:" + consumer

    def lease(self, consumer: str) -> str:
        return self.prefix + "lease:" + consumer

    def receipt(self, receipt: str) -> str:
        return self.prefix + "receipt:" + receipt

    def dead_owner(self, owner: str) -> str:  # set of the dead letters' keys about one person
        return self.prefix + "dead-owner:" + owner


@dataclass(frozen=True, slots=True)
class Claim:
    consumer: str
    token: str
    records: list[bytes]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: str
    record: bytes
    reason: str
    failed_at: str


class _Why(msgspec.Struct, frozen=True):
    reason: str
    failed_at: str
    owner: str = ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


class DurableQueue:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.keys = QueueKeys(prefix)
        self._claim = script(redis, SCRIPTS, "claim")
        self._renew = script(redis, SCRIPTS, "renew")
        self._acknowledge = script(redis, SCRIPTS, "acknowledge")
        self._requeue = script(redis, SCRIPTS, "requeue")
        self._bury = script(redis, SCRIPTS, "bury")
        self._revive = script(redis, SCRIPTS, "revive")
        self._forget_owner = script(redis, SCRIPTS, "forget_owner")
        self._finish = script(redis, SCRIPTS, "finish")
        self._pop_effect = script(redis, SCRIPTS, "pop_effect")

    async def claim(self, consumer: str, size: int, lease_seconds: int) -> Claim:
        token = secrets.token_hex(8)
        keys = self.keys
        records = await self._claim(
            keys=[keys.pending, keys.inflight(consumer), keys.lease(consumer), keys.consumers],
            args=[size, lease_seconds, consumer, token],
        )
        return Claim(consumer, token, list(records))

    async def renew(self, claim: Claim, lease_seconds: int) -> bool:
        return bool(await self._renew(keys=[self.keys.lease(claim.consumer)], args=[claim.token, lease_seconds]))

    async def acknowledge(self, claim: Claim, saved_receipts: Sequence[str] = (),
                          effects: Sequence[bytes] = ()) -> bool:
        keys = self.keys
        return bool(await self._acknowledge(
            keys=[keys.inflight(claim.consumer), keys.lease(claim.consumer), keys.consumers, keys.effects, keys.totals,
                  *(keys.receipt(receipt) for receipt in saved_receipts)],
            args=[claim.token, claim.consumer, RECEIPT_TTL, *effects],
        ))

    async def requeue(self, claim: Claim) -> int:
        """Gives a batch back to `pending`; -1 when the lease was lost (the batch is back there already)."""
        return await self._move_back(claim.consumer, claim.token)

    async def _move_back(self, consumer: str, token: str) -> int:
        keys = self.keys
        return int(await self._requeue(
            keys=[keys.inflight(consumer), keys.pending, keys.lease(consumer), keys.consumers], args=[consumer, token]
        ))

    async def consumers(self) -> list[str]:
        return sorted(_text(member) for member in await self.redis.smembers(self.keys.consumers))

    async def recover_orphans(self) -> int:
        """Re-drains the batches of consumers whose lease ran out (a worker killed or stalled mid-batch)."""
        recovered = 0
        for consumer in await self.consumers():
            recovered += max(0, await self._move_back(consumer, ""))
        return recovered

    async def bury(self, claim: Claim, record: bytes, *, key: str, owner: str, reason: str) -> bool:
        """Moves one record of the claim to the dead letters; `owner` names the person it is about (for erasure)."""
        keys = self.keys
        now = time.time()
        why = msgspec.json.encode(_Why(reason=reason, failed_at=_iso(now), owner=owner))
        return bool(await self._bury(
            keys=[keys.inflight(claim.consumer), keys.lease(claim.consumer), keys.dead, keys.dead_reasons,
                  keys.dead_order, keys.dead_owner(owner), keys.totals],
            args=[claim.token, key, record, why, now],
        ))

    async def forget_owner(self, owner: str) -> int:
        """Deletes the dead letters about one person (erasure); reads only that person's index."""
        keys = self.keys
        return int(await self._forget_owner(keys=[keys.dead_owner(owner), keys.dead, keys.dead_reasons,
                                                  keys.dead_order]))

    async def totals(self) -> dict[str, int]:
        """Counts since the queue began (they survive process restarts): `persisted`, `dead_lettered`, and
        `accepted` where the accept path keeps it."""
        return {_text(name): int(value) for name, value in (await self.redis.hgetall(self.keys.totals)).items()}

    async def dead_count(self) -> int:
        return int(await self.redis.zcard(self.keys.dead_order))

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        keys = self.keys
        names = [_text(name) for name in await self.redis.zrange(keys.dead_order, 0, limit - 1)]
        if not names:
            return []
        records = await self.redis.hmget(keys.dead, names)
        reasons = await self.redis.hmget(keys.dead_reasons, names)
        letters = []
        for name, record, raw_why in zip(names, records, reasons, strict=True):
            if record is None:
                continue  # revived or forgotten between the two reads
            why = msgspec.json.decode(raw_why, type=_Why) if raw_why else _Why(reason="inconnue", failed_at="")
            letters.append(DeadLetter(key=name, record=_raw(record), reason=why.reason, failed_at=why.failed_at))
        return letters

    async def retry_dead_letters(self) -> int:
        """Puts every dead letter back in the queue, one atomic move each (after ops fixed the cause)."""
        keys = self.keys
        moved = 0
        while names := [_text(name) for name in await self.redis.zrange(keys.dead_order, 0, 499)]:
            reasons = await self.redis.hmget(keys.dead_reasons, names)
            for name, raw_why in zip(names, reasons, strict=True):
                owner = msgspec.json.decode(raw_why, type=_Why).owner if raw_why else ""
                revived = await self._revive(
                    keys=[keys.dead, keys.dead_reasons, keys.dead_order, keys.pending, keys.dead_owner(owner)],
                    args=[name],
                )
                if not revived:
                    await self.redis.zrem(keys.dead_order, name)  # a stray index entry: nothing to move
                moved += int(revived)
        return moved

    async def deliver_effects(self, send: Callable[[bytes], Awaitable[None]], *, limit: int = 1_000) -> int | None:
        """Hands the filed effects to `send`, oldest first, each removed only once sent: a crash in between sends
        one twice (effects are idempotent), never zero times. One consumer delivers at a time (parallel drains
        would otherwise send one head twice), and an effect is removed only while it is still the head, so even a
        deliverer that outlived its lock never removes one nobody sent. Stops at the first that `send` raises
        for. None: another consumer holds the delivery."""
        lock = self.redis.lock(self.keys.effects_lock, timeout=EFFECTS_LOCK_SECONDS, blocking=False)
        if not await lock.acquire():
            return None  # another consumer is delivering them
        delivered = 0
        try:
            while delivered < limit and (effect := await self.redis.lindex(self.keys.effects, 0)) is not None:
                await send(_raw(effect))
                await self._pop_effect(keys=[self.keys.effects], args=[effect])
                delivered += 1
        finally:
            with contextlib.suppress(LockError, RedisError):
                await lock.release()
        return delivered

    async def effects_depth(self) -> int:
        return int(await self.redis.llen(self.keys.effects))

    async def finish_drain(self) -> bool:
        """Clears the drain mark; True when records or effects arrived meanwhile and this consumer should carry
        on. Runs under OOM too."""
        keys = self.keys
        return bool(await self._finish(keys=[keys.drain_scheduled, keys.pending, keys.effects],
                                       args=[DRAIN_SCHEDULED_TTL]))

    async def request_drain(self) -> bool:
        """Marks a drain as scheduled; True when the caller should enqueue one (nobody else has)."""
        return bool(await self.redis.set(self.keys.drain_scheduled, "1", nx=True, ex=DRAIN_SCHEDULED_TTL))

    async def depth(self) -> int:
        return int(await self.redis.llen(self.keys.pending))

    async def inflight(self) -> int:
        return sum([int(await self.redis.llen(self.keys.inflight(consumer))) for consumer in await self.consumers()])

    def accepted_at(self, record: bytes) -> float | None:
        """When a record was queued (epoch seconds), for the oldest-age figure; queues whose records say so
        override it."""
        return None

    async def oldest_age_seconds(self) -> float:
        head = await self.redis.lindex(self.keys.pending, 0)
        when = self.accepted_at(_raw(head)) if head is not None else None
        return 0.0 if when is None else max(0.0, time.time() - when)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
