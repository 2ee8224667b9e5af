"""The accept path's single Redis call, shared by every sign-up arriving in the same event-loop tick.

A sign-up is accepted by one Lua script that checks the idempotency key, the per-address rate limit and the queue
bound, dedupes the e-mail, queues the record and writes its receipt, atomically. Under load, the per-call cost
of the Redis client dominates the web tier's CPU, so the requests that reach this point in the same tick join
one script call: no added wait (the flush runs right after the tick's other callbacks), one round trip for all.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from app.volunteers.schemas import QueuedSignup
from app.volunteers.signup_queue import (
    DRAIN_SCHEDULED,
    DRAIN_SCHEDULED_TTL,
    PENDING,
    PREFIX,
    digest,
    email_mark,
    receipt_key,
)

RECEIPT_TTL = 30 * 86_400
IDEMPOTENCY_TTL = 86_400
EMAIL_MARK_TTL = 365 * 86_400
FIELDS_PER_SIGNUP = 7

ACCEPT = """
local limit, backlog = tonumber(ARGV[1]), tonumber(ARGV[2])
local depth, pushed, out = redis.call('LLEN', KEYS[1]), 0, {}
for i = 7, #ARGV, 7 do
  local email, idem, receipt_key, rate = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local record, duplicate, receipt = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local outcome, value = 'accepted', receipt
  local previous = idem ~= '' and redis.call('GET', idem)
  if previous then
    outcome, value = 'replay', previous
  else
    local count = 0
    if limit > 0 then
      count = redis.call('INCR', rate)
      if count == 1 then redis.call('EXPIRE', rate, 60) end
    end
    if limit > 0 and count > limit then
      outcome = 'rate_limited'
    elseif depth >= backlog then
      outcome = 'backlogged'
    else
      if redis.call('SET', email, receipt, 'NX', 'EX', ARGV[5]) then
        redis.call('RPUSH', KEYS[1], record)
      else
        redis.call('RPUSH', KEYS[1], duplicate)
      end
      redis.call('SET', receipt_key, 'queued', 'EX', ARGV[3])
      if idem ~= '' then redis.call('SET', idem, receipt, 'EX', ARGV[4]) end
      depth, pushed = depth + 1, pushed + 1
    end
  end
  out[#out + 1] = outcome
  out[#out + 1] = value
end
local drain = '0'
if pushed > 0 and redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[6]) then drain = '1' end
out[#out + 1] = drain
return out
"""


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: str  # accepted | replay | rate_limited | backlogged
    receipt: str
    drain_needed: bool


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class SignupIntake:
    def __init__(self, redis: Redis, secret: str, *, ip_limit_per_minute: int, backlog_limit: int) -> None:
        self.redis = redis
        self.secret = secret
        self.ip_limit_per_minute = ip_limit_per_minute
        self.backlog_limit = backlog_limit
        self._script = redis.register_script(ACCEPT)
        self._waiting: list[tuple[list[bytes | str], asyncio.Future[Accepted]]] = []
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks

    async def accept(self, record: QueuedSignup, *, client_ip: str, idempotency_key: str | None) -> Accepted:
        duplicate = QueuedSignup(
            receipt=record.receipt,
            email_normalized=record.email_normalized,
            accepted_at=record.accepted_at,
            duplicate=True,
        )
        fields: list[bytes | str] = [
            email_mark(self.secret, record.email_normalized),
            PREFIX + "idempotency:" + digest(self.secret, idempotency_key) if idempotency_key else "",
            receipt_key(record.receipt),
            f"{PREFIX}rate:{digest(self.secret, client_ip)}:{int(time.time() // 60)}",
            msgspec.json.encode(record),
            msgspec.json.encode(duplicate),
            record.receipt,
        ]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((fields, future))
        return await future

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._run(batch))  # errors are handed to each waiting request in _run
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[list[bytes | str], asyncio.Future[Accepted]]]) -> None:
        args: list[bytes | str | int] = [
            self.ip_limit_per_minute,
            self.backlog_limit,
            RECEIPT_TTL,
            IDEMPOTENCY_TTL,
            EMAIL_MARK_TTL,
            DRAIN_SCHEDULED_TTL,
        ]
        for fields, _ in batch:
            args.extend(fields)
        try:
            reply = await self._script(keys=[PENDING, DRAIN_SCHEDULED], args=args)
        except BaseException as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        drain = _text(reply[-1]) == "1"  # then exactly one accepted request of the batch enqueues the drain
        for index, (_, future) in enumerate(batch):
            outcome, value = _text(reply[2 * index]), _text(reply[2 * index + 1])
            enqueues_drain = drain and outcome == "accepted"
            drain = drain and not enqueues_drain
            if not future.done():
                future.set_result(Accepted(outcome, value, enqueues_drain))
