"""Places on a mission, held in Redis so that applying never waits on PostgreSQL and is atomic across every web
process: one Lua script decides "place" or "wait-list", records the state and queues the change for PostgreSQL.

Per mission `m` (keys under `renfort:applications:m<id>:`):
- `meta`: hash of capacity (places), open ("1" while the mission takes applications, "w" while it is online but
  full, so that only the wait-list moves up, "0" offline) and the epoch it was read at;
- `epoch`: a counter bumped after the commit of any change to this mission's places or openness (its own edit or
  status, its organisation's moderation, its scheduled end): a stale `meta` answers "unknown" and the web reads
  that mission from PostgreSQL once (see service.seed) — other missions keep serving without SQL;
- `holders`: set of the volunteers holding a place (pending, accepted, done, proposed);
- `waitlist`: sorted set, volunteer → arrival number; the first is promoted when a place frees up;
- `status`: hash, volunteer → the application's current status;
- `proposals`: hash, volunteer → the dispatch run that proposed them this mission (see PROPOSE).
Every change gets a number from `renfort:applications:seq` (its version) and is pushed to the durable queue
`renfort:applications:pending` as one JSON event; PostgreSQL keeps, per application, the highest version seen.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from app.durable_queue import DRAIN_SCHEDULED_TTL, DurableQueue

PREFIX = "renfort:applications:"
SEQUENCE = PREFIX + "seq"
HOLDING = ("pending", "accepted", "done", "proposed")

# Shared by the scripts: numbering and queueing one change, and promoting wait-listed volunteers into free places.
_COMMON = """
local function push(mission, volunteer, status, kind, message, reason)
  local version = redis.call('INCR', KEYS[6])
  local now = redis.call('TIME')
  redis.call('RPUSH', KEYS[7], cjson.encode({m = tonumber(mission), v = tonumber(volunteer), s = status,
    n = version, k = kind, msg = message, r = reason, t = tonumber(now[1]) + tonumber(now[2]) / 1000000}))
  return version
end
local function promote(mission)
  local meta = redis.call('HMGET', KEYS[1], 'capacity', 'open')
  local promoted = 0
  if not meta[1] or (meta[2] ~= '1' and meta[2] ~= 'w') then return 0 end
  while redis.call('SCARD', KEYS[2]) < tonumber(meta[1]) do
    local first = redis.call('ZPOPMIN', KEYS[3])
    if #first == 0 then break end
    redis.call('SADD', KEYS[2], first[1])
    redis.call('HSET', KEYS[4], first[1], 'pending')
    push(mission, first[1], 'pending', 'promoted', '', '')
    promoted = promoted + 1
  end
  return promoted
end
local function drain_needed()
  if redis.call('SET', KEYS[8], '1', 'NX', 'EX', ARGV[#ARGV]) then return '1' end
  return '0'
end
local function fresh()
  local meta = redis.call('HMGET', KEYS[1], 'capacity', 'epoch')
  return meta[1] and meta[2] == (redis.call('GET', KEYS[5]) or '0')
end
"""

# ARGV: mission, volunteer, message, backlog bound, drain TTL → {outcome, current status or drain flag}
APPLY = _COMMON + """
if not fresh() then return {'unknown', ''} end
local current = redis.call('HGET', KEYS[4], ARGV[2])
if current and current ~= 'cancelled' then return {'exists', current} end
if redis.call('HGET', KEYS[1], 'open') ~= '1' then return {'closed', ''} end
if redis.call('LLEN', KEYS[7]) >= tonumber(ARGV[4]) then return {'backlogged', ''} end
local status = 'waitlisted'
if redis.call('SCARD', KEYS[2]) < tonumber(redis.call('HGET', KEYS[1], 'capacity')) then
  redis.call('SADD', KEYS[2], ARGV[2])
  status = 'pending'
end
redis.call('HSET', KEYS[4], ARGV[2], status)
local version = push(ARGV[1], ARGV[2], status, 'applied', ARGV[3], '')
if status == 'waitlisted' then redis.call('ZADD', KEYS[3], version, ARGV[2]) end
return {status, drain_needed()}
"""

# ARGV: mission, volunteer, target status, allowed current statuses (comma-separated), kind, reason, drain TTL
# → {outcome ('done' or 'refused'), previous status, promoted count, drain flag}
TRANSITION = _COMMON + """
if not fresh() then return {'unknown', '', 0, '0'} end
local current = redis.call('HGET', KEYS[4], ARGV[2])
if not current or not string.find(',' .. ARGV[4] .. ',', ',' .. current .. ',', 1, true) then
  return {'refused', current or '', 0, '0'}
end
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
push(ARGV[1], ARGV[2], ARGV[3], ARGV[5], '', ARGV[6])
local promoted = 0
if ARGV[3] == 'cancelled' or ARGV[3] == 'declined' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  if redis.call('SREM', KEYS[2], ARGV[2]) == 1 then promoted = promote(ARGV[1]) end
end
return {'done', current, promoted, drain_needed()}
"""

# ARGV: mission, capacity, open, epoch (the mission's, read before PostgreSQL), highest saved version, then
# (volunteer, status, version) triples of the saved applications, used only when Redis holds no state for this
# mission (first use, or Redis lost it); drain TTL
SEED = _COMMON + """
if ARGV[4] ~= (redis.call('GET', KEYS[5]) or '0') then return 'stale' end  -- changed since it was read: read again
redis.call('HSET', KEYS[1], 'capacity', ARGV[2], 'open', ARGV[3], 'epoch', ARGV[4])
if tonumber(redis.call('GET', KEYS[6]) or '0') < tonumber(ARGV[5]) then redis.call('SET', KEYS[6], ARGV[5]) end
if redis.call('EXISTS', KEYS[4]) == 0 then
  for i = 6, #ARGV - 1, 3 do
    local volunteer, status = ARGV[i], ARGV[i + 1]
    redis.call('HSET', KEYS[4], volunteer, status)
    if status == 'waitlisted' then redis.call('ZADD', KEYS[3], ARGV[i + 2], volunteer)
    elseif status == 'pending' or status == 'accepted' or status == 'done' or status == 'proposed' then
      redis.call('SADD', KEYS[2], volunteer)
    end
  end
end
if promote(ARGV[1]) > 0 then return drain_needed() end
return '0'
"""


# A coordinator's dispatch, one mission at a time. ARGV: mission, run, expiry (epoch seconds), then the volunteers,
# then the drain TTL → {outcome, proposed now, proposed earlier by this run, drain flag}. A volunteer is proposed
# only if they never had an application on this mission (whatever became of it: nobody is pushed back onto a mission
# they left or declined) and a place is free, so a proposal never oversells and running the script again for the
# same run proposes nobody twice.
PROPOSE = _COMMON + """
if not fresh() then return {'unknown', 0, 0, '0'} end
if redis.call('HGET', KEYS[1], 'open') ~= '1' then return {'closed', 0, 0, '0'} end
local capacity = tonumber(redis.call('HGET', KEYS[1], 'capacity'))
local proposed, earlier = 0, 0
for i = 4, #ARGV - 1 do
  local volunteer = ARGV[i]
  local current = redis.call('HGET', KEYS[4], volunteer)
  if current then
    if current == 'proposed' and redis.call('HGET', KEYS[9], volunteer) == ARGV[2] then earlier = earlier + 1 end
  elseif redis.call('SCARD', KEYS[2]) < capacity then
    redis.call('SADD', KEYS[2], volunteer)
    redis.call('HSET', KEYS[4], volunteer, 'proposed')
    redis.call('HSET', KEYS[9], volunteer, ARGV[2])
    local version = redis.call('INCR', KEYS[6])
    local now = redis.call('TIME')
    redis.call('RPUSH', KEYS[7], cjson.encode({m = tonumber(ARGV[1]), v = tonumber(volunteer), s = 'proposed',
      n = version, k = 'proposed', msg = '', r = '', d = tonumber(ARGV[2]), x = tonumber(ARGV[3]),
      t = tonumber(now[1]) + tonumber(now[2]) / 1000000}))
    proposed = proposed + 1
  end
end
if proposed > 0 then return {'done', proposed, earlier, drain_needed()} end
return {'done', 0, earlier, '0'}
"""

# Cancelling a run, one mission at a time. ARGV: mission, run, kind, reason, then the volunteers, then the drain TTL
# → {outcome, cancelled, promoted, drain flag}. Only proposals still waiting for an answer and made by this run (or
# of unknown run, after Redis lost its state) are cancelled; the freed places go to the wait-list.
WITHDRAW_RUN = _COMMON + """
if not fresh() then return {'unknown', 0, 0, '0'} end
local cancelled = 0
for i = 5, #ARGV - 1 do
  local volunteer = ARGV[i]
  if redis.call('HGET', KEYS[4], volunteer) == 'proposed' then
    local run = redis.call('HGET', KEYS[9], volunteer)
    if not run or run == ARGV[2] then
      redis.call('HSET', KEYS[4], volunteer, 'cancelled')
      redis.call('SREM', KEYS[2], volunteer)
      push(ARGV[1], volunteer, 'cancelled', ARGV[3], '', ARGV[4])
      cancelled = cancelled + 1
    end
  end
end
local promoted = promote(ARGV[1])
if cancelled > 0 then return {'done', cancelled, promoted, drain_needed()} end
return {'done', 0, promoted, '0'}
"""


class ApplicationEvent(msgspec.Struct, frozen=True):
    """One queued change, as the scripts encode it."""

    m: int  # mission id
    v: int  # volunteer id
    s: str  # the status it sets
    n: int  # its version
    k: str  # applied | promoted | accepted | declined | cancelled | done | withdrawn | proposed | confirmed | …
    t: float  # when, epoch seconds (Redis clock)
    msg: str = ""
    r: str = ""
    d: int = 0  # a proposal's dispatch run
    x: float = 0.0  # a proposal's expiry, epoch seconds


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # pending | waitlisted | exists | closed | backlogged | unknown
    current: str  # for `exists`: the status already held
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Moved:
    outcome: str  # done | refused | unknown
    previous: str
    promoted: int
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Batch:
    outcome: str  # done | closed | unknown
    count: int  # proposed (PROPOSE) or cancelled (WITHDRAW_RUN) by this call
    other: int  # proposed earlier by the same run (PROPOSE) or promoted from the wait-list (WITHDRAW_RUN)
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class SavedApplication:
    volunteer_id: int
    status: str
    version: int


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Places:
    """The web side of the scripts; one per process."""

    def __init__(self, redis: Redis, *, backlog_limit: int = 1_000_000) -> None:
        self.redis = redis
        self.backlog_limit = backlog_limit
        self.queue = DurableQueue(redis, PREFIX)
        self._apply = redis.register_script(APPLY)
        self._transition = redis.register_script(TRANSITION)
        self._seed = redis.register_script(SEED)
        self._propose = redis.register_script(PROPOSE)
        self._withdraw_run = redis.register_script(WITHDRAW_RUN)

    def _keys(self, mission_id: int) -> list[str]:
        base = f"{PREFIX}m{mission_id}:"
        return [base + "meta", base + "holders", base + "waitlist", base + "status", base + "epoch", SEQUENCE,
                self.queue.pending, self.queue.drain_scheduled]

    async def apply(self, mission_id: int, volunteer_id: int, message: str) -> Applied:
        reply = await self._apply(keys=self._keys(mission_id),
                                  args=[mission_id, volunteer_id, message, self.backlog_limit, DRAIN_SCHEDULED_TTL])
        outcome, extra = _text(reply[0]), _text(reply[1])
        if outcome in ("pending", "waitlisted"):
            return Applied(outcome, "", extra == "1")
        return Applied(outcome, extra, False)

    async def move(self, mission_id: int, volunteer_id: int, *, target: str, allowed: tuple[str, ...], kind: str,
                   reason: str = "") -> Moved:
        args: list[str | int] = [mission_id, volunteer_id, target, ",".join(allowed), kind, reason,
                                 DRAIN_SCHEDULED_TTL]
        reply = await self._transition(keys=self._keys(mission_id), args=args)
        return Moved(_text(reply[0]), _text(reply[1]), int(reply[2]), _text(reply[3]) == "1")

    async def propose(self, mission_id: int, run_id: int, expires_at: float, volunteer_ids: Sequence[int]) -> Batch:
        args: list[str | int | float] = [mission_id, run_id, expires_at, *volunteer_ids, DRAIN_SCHEDULED_TTL]
        reply = await self._propose(keys=[*self._keys(mission_id), self._proposals(mission_id)], args=args)
        return Batch(_text(reply[0]), int(reply[1]), int(reply[2]), _text(reply[3]) == "1")

    async def withdraw_run(self, mission_id: int, run_id: int, volunteer_ids: Sequence[int], *, kind: str,
                           reason: str) -> Batch:
        args: list[str | int] = [mission_id, run_id, kind, reason, *volunteer_ids, DRAIN_SCHEDULED_TTL]
        reply = await self._withdraw_run(keys=[*self._keys(mission_id), self._proposals(mission_id)], args=args)
        return Batch(_text(reply[0]), int(reply[1]), int(reply[2]), _text(reply[3]) == "1")

    def _proposals(self, mission_id: int) -> str:
        return f"{PREFIX}m{mission_id}:proposals"

    async def epoch(self, mission_id: int) -> str:
        return _text(await self.redis.get(self._keys(mission_id)[4]) or b"0")

    async def changed(self, mission_ids: Iterable[int]) -> None:
        """After the commit of a change to these missions' places or openness: Redis reads them again at next use."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id in mission_ids:
                pipe.incr(self._keys(mission_id)[4])
            await pipe.execute()

    async def knows(self, mission_id: int) -> bool:
        """Whether Redis holds this mission's application states (else a seed rebuilds them from PostgreSQL)."""
        return bool(await self.redis.exists(self._keys(mission_id)[3]))

    async def seed(self, mission_id: int, *, capacity: int, state: str, epoch: str, highest_version: int,
                   saved: list[SavedApplication]) -> bool:
        """`state`: "1" taking applications, "w" online but full, "0" offline."""
        args: list[str | int] = [mission_id, capacity, state, epoch, highest_version]
        for application in saved:
            args.extend([application.volunteer_id, application.status, application.version])
        args.append(DRAIN_SCHEDULED_TTL)
        return _text(await self._seed(keys=self._keys(mission_id), args=args)) == "1"

    async def statuses(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """The current status of each (mission, volunteer) Redis knows, ahead of PostgreSQL by at most one drain."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id, volunteer_id in pairs:
                pipe.hget(self._keys(mission_id)[3], str(volunteer_id))
            values = await pipe.execute()
        return {pair: _text(value) for pair, value in zip(pairs, values, strict=True) if value}

    async def queued_missions(self, volunteer_id: int) -> set[int]:
        """The missions with a change of this volunteer still queued or in flight, i.e. not yet in PostgreSQL."""
        lists = [self.queue.pending] + [self.queue.inflight_key(name) for name in await self.queue.consumers()]
        found: set[int] = set()
        for key in lists:
            start = 0
            while chunk := await self.redis.lrange(key, start, start + 9_999):
                for raw in chunk:
                    event = msgspec.json.decode(raw, type=ApplicationEvent)
                    if event.v == volunteer_id:
                        found.add(event.m)
                start += len(chunk)
        return found

    async def taken(self, mission_id: int) -> int | None:
        """Places held right now, or None when Redis does not know the mission, or knew it before its last change."""
        keys = self._keys(mission_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys[0], "epoch")
            pipe.get(keys[4])
            pipe.scard(keys[1])
            epoch, version, held = await pipe.execute()
        if epoch is None or epoch != (version or b"0"):
            return None
        return int(held)
