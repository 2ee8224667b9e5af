"""The accept path's single Redis call, shared by every sign-up arriving in the same event-loop tick.

A sign-up is accepted by one Lua script (`accept.lua`) that replays an idempotency key for the same body, counts
the address's minute, bounds the queue, dedupes the e-mail, queues the record and writes its receipt, atomically.
Under load, the per-call cost of the Redis client dominates the web tier's CPU, so the requests that reach this
point in the same tick join one script call: no added wait (the flush runs right after the tick's other
callbacks), one round trip for all. Before it, a per-process look at Redis's memory (at most a second old) turns
new sign-ups away with a 503 once Redis passes its memory threshold, so the queue never fills Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from redis.asyncio import Redis

from app.redis_memory import MemoryGuard
from app.redis_scripts import script
from app.volunteers.schemas import QueuedSignup
from app.volunteers.signup_queue import DRAIN_SCHEDULED_TTL, KEYS, RECEIPT_TTL, SignupKeys

IDEMPOTENCY_TTL = 86_400
BODY_TIME = datetime.fromtimestamp(0, UTC)  # what a body digest puts in place of the arrival time
EMAIL_MARK_TTL = 365 * 86_400


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: str  # accepted | replay | conflict | backlogged
    receipt: str
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class _Waiting:
    keys: tuple[str, str, str, str]
    values: tuple[str, str, bytes, bytes, str]
    future: asyncio.Future[Accepted]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def body_digest(record: QueuedSignup) -> str:
    """What an idempotency key is bound to: the sign-up's content, not its receipt or the time it arrived."""
    content = msgspec.structs.replace(record, receipt="", accepted_at=BODY_TIME, consent_at=None, terms_version=None)
    return hashlib.sha256(msgspec.json.encode(content)).hexdigest()[:32]


class SignupIntake:
    def __init__(self, redis: Redis, secret: str, *, ip_limit_per_minute: int, backlog_limit: int,
                 memory: MemoryGuard | None = None) -> None:
        self.redis = redis
        self.keys = SignupKeys(secret)
        self.ip_limit_per_minute = ip_limit_per_minute
        self.backlog_limit = backlog_limit
        self.memory = memory
        self._script = script(redis, Path(__file__).parent, "accept")
        self._waiting: list[_Waiting] = []
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def accept(self, record: QueuedSignup, *, client_ip: str, idempotency_key: str | None) -> Accepted:
        if self.memory is not None and await self.memory.over_limit():
            return Accepted("backlogged", "", False)
        repeat = QueuedSignup(receipt=record.receipt, email_normalized=record.email_normalized,
                              accepted_at=record.accepted_at, duplicate=True)
        mark = self.keys.email_mark(record.email_normalized)
        keys = (mark, self.keys.idempotency(idempotency_key) if idempotency_key else mark, KEYS.receipt(record.receipt),
                self.keys.rate(client_ip, int(time.time() // 60)))
        values = ("1" if idempotency_key else "0", body_digest(record) if idempotency_key else "",
                  msgspec.json.encode(record), msgspec.json.encode(repeat), record.receipt)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append(_Waiting(keys, values, future))
        return await future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run(batch))  # errors are handed to each waiting request in _run
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        keys: list[str] = [KEYS.pending, KEYS.drain_scheduled, KEYS.totals]
        args: list[bytes | str | int] = [self.ip_limit_per_minute, self.backlog_limit, RECEIPT_TTL, IDEMPOTENCY_TTL,
                                         EMAIL_MARK_TTL, DRAIN_SCHEDULED_TTL]
        for waiting in batch:
            keys.extend(waiting.keys)
            args.extend(waiting.values)
        try:
            reply = await self._script(keys=keys, args=args)
        except BaseException as error:
            for waiting in batch:
                if not waiting.future.done():
                    waiting.future.set_exception(error)
            return
        drain = _text(reply[-1]) == "1"  # then exactly one accepted request of the batch enqueues the drain
        for index, waiting in enumerate(batch):
            outcome, value = _text(reply[2 * index]), _text(reply[2 * index + 1])
            enqueues_drain = drain and outcome == "accepted"
            drain = drain and not enqueues_drain
            if not waiting.future.done():
                waiting.future.set_result(Accepted(outcome, value, enqueues_drain))
