"""Places on a mission, held in Redis so that applying never waits on PostgreSQL and is atomic across every web
process: one Lua script (in `lua/`, beside this module) decides "place" or "wait-list", records the state and
queues the change for PostgreSQL.

Per mission (`MissionKeys`, keys.py): `meta` (capacity, openness, the age rule and the epoch it was read at), `epoch`
(bumped after the commit of any change to the mission's places, openness or age rule: a stale `meta` answers
"unknown" and the caller reads that mission from PostgreSQL once, see service.seed), `holders` (who holds a place),
`waitlist` (arrival order), `status` (volunteer → status), `proposals` (volunteer → the dispatch run that proposed
them), `adults` (the wait-listed's and the proposed's 18th birthdays: a promotion or a proposal's confirmation
checks the age rule without PostgreSQL; every script takes today's date, France's, from its caller) and `closing`
(who is to be told that the mission's end closed their application).
Shared: `sequence` numbers every change (its version; PostgreSQL keeps the highest per application); `engaged`
maps a volunteer to the mission of their live dispatch proposal, so that no run, whatever its timing, proposes
them a second one; per volunteer, the missions they applied or were proposed to, so that deleting an account finds
the changes not drained yet without reading the queue. Every change is pushed to the durable queue as one
`ApplicationEvent`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from app.applications.keys import ENGAGED, PREFIX, SEQUENCE, MissionKeys, volunteer_missions_key
from app.applications.statuses import HOLDING, ApplicationStatus
from app.durable_queue import DRAIN_SCHEDULED_TTL, DurableQueue
from app.redis_memory import MemoryGuard
from app.redis_scripts import source
from app.volunteers import age

__all__ = ["ENGAGED", "HOLDING", "PREFIX", "ApplicationEvent", "Applied", "Closed", "MissionKeys", "Moved", "Places",
           "Proposed", "SavedApplication", "Withdrawn"]

SCRIPTS = Path(__file__).parent / "lua"
INDEX_TTL = 30 * 86_400  # outlasts any backlog: a change still queued is always found
CHUNK = 1_000  # volunteers per script call (PROPOSE, WITHDRAW_RUN): a few milliseconds of Redis time each


class ApplicationEvent(msgspec.Struct, frozen=True):
    """One queued change: written by the scripts (short wire names), decoded by the drain, saved by save_events."""

    mission_id: int = msgspec.field(name="m")
    volunteer_id: int = msgspec.field(name="v")
    status: ApplicationStatus = msgspec.field(name="s")
    version: int = msgspec.field(name="n")
    kind: str = msgspec.field(name="k")  # applied | promoted | accepted | declined | cancelled | proposed | …
    at: float = msgspec.field(name="t")  # epoch seconds, Redis clock
    message: str = msgspec.field(default="", name="msg")  # the volunteer's, when applying
    reason: str = msgspec.field(default="", name="r")  # the organisation's or the coordination's
    run_id: int = msgspec.field(default=0, name="d")  # a proposal's dispatch run
    expires_at: float = msgspec.field(default=0.0, name="x")  # a proposal's expiry, epoch seconds


class ApplicationQueue(DurableQueue):
    """The durable queue of application changes, whose records are `ApplicationEvent`s."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis, PREFIX)

    def accepted_at(self, record: bytes) -> float | None:
        try:
            return msgspec.json.decode(record, type=ApplicationEvent).at
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None

    def describe(self, record: bytes) -> tuple[str, str]:
        """A change's dead-letter key, and whom it is about (for erasure)."""
        event = msgspec.json.decode(record, type=ApplicationEvent)
        return f"{event.mission_id}:{event.volunteer_id}:{event.version}", f"v{event.volunteer_id}"


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # pending | waitlisted | exists | closed | minor | backlogged | unknown
    current: str  # for `exists`: the status already held
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Moved:
    outcome: str  # done | refused | minor (a proposal's confirmation by someone too young) | unknown
    previous: str
    promoted: int
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Proposed:
    outcome: str  # done | closed | unknown | unseeded (`engaged` must be rebuilt first)
    count: int  # proposed by this call
    earlier: int  # proposed earlier by the same run
    engaged: int  # left out: engaged by a live proposal on another mission
    minors: int  # left out: under 18 for a mission closed to minors
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Withdrawn:
    outcome: str  # done | unknown
    count: int  # cancelled by this call
    promoted: int  # from the wait-list
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class Closed:
    outcome: str  # done | online (the mission takes applications: nothing closed) | unknown
    count: int  # closed by this call
    drain_needed: bool


@dataclass(frozen=True, slots=True)
class SavedApplication:
    volunteer_id: int
    status: str
    version: int
    adult_on: date | None = None  # the volunteer's 18th birthday (None: unknown, so too young where it matters)


@dataclass(frozen=True, slots=True)
class LiveProposal:
    """A dispatch proposal (or its confirmation) PostgreSQL holds, not expired yet."""

    mission_id: int
    volunteer_id: int
    expires_at: float


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _iso(day: date | None) -> str:
    return "" if day is None else day.isoformat()


def _head(mission_id: int, today: date | None) -> list[int | str]:
    """The ARGV every mission script starts with (lua/common.lua)."""
    return [mission_id, DRAIN_SCHEDULED_TTL, _iso(today or age.today())]


def _chunks(items: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class Places:
    """The web side of the scripts; one per process."""

    def __init__(self, redis: Redis, *, backlog_limit: int = 1_000_000, memory: MemoryGuard | None = None) -> None:
        self.redis = redis
        self.backlog_limit = backlog_limit
        self.memory = memory  # past its threshold, applying answers "backlogged" instead of filling Redis
        self.queue = ApplicationQueue(redis)
        self._apply = self._mission_script("apply")
        self._transition = self._mission_script("transition")
        self._seed = self._mission_script("seed")
        self._propose = self._mission_script("propose")
        self._withdraw_run = self._mission_script("withdraw_run")
        self._close = self._mission_script("close")
        self._engage = redis.register_script(source(SCRIPTS, "engage"))

    def _mission_script(self, name: str) -> AsyncScript:
        return self.redis.register_script(source(SCRIPTS, "common") + source(SCRIPTS, name))

    def _keys(self, mission_id: int, *volunteer_ids: int) -> list[str]:
        """The KEYS of a mission script (lua/common.lua), then the volunteers' mission indexes."""
        mission = MissionKeys(mission_id)
        queue = self.queue.keys
        return [mission.meta, mission.holders, mission.waitlist, mission.status, mission.epoch, mission.proposals,
                SEQUENCE, queue.pending, queue.drain_scheduled, ENGAGED, mission.adults,
                *(volunteer_missions_key(volunteer_id) for volunteer_id in volunteer_ids)]

    async def apply(self, mission_id: int, volunteer_id: int, message: str, *, adult_on: date | None,
                    today: date | None = None) -> Applied:
        """`adult_on`: the volunteer's 18th birthday (None: unknown, so too young for a mission closed to minors)."""
        if self.memory is not None and await self.memory.over_limit():
            return Applied("backlogged", "", False)
        reply = await self._apply(keys=self._keys(mission_id, volunteer_id), args=[
            *_head(mission_id, today), volunteer_id, message, self.backlog_limit, INDEX_TTL, _iso(adult_on)])
        outcome, extra = _text(reply[0]), _text(reply[1])
        if outcome in (ApplicationStatus.PENDING, ApplicationStatus.WAITLISTED):
            return Applied(outcome, "", extra == "1")
        return Applied(outcome, extra, False)

    async def move(self, mission_id: int, volunteer_id: int, *, target: ApplicationStatus,
                   allowed: Sequence[ApplicationStatus], kind: str, reason: str = "", today: date | None = None
                   ) -> Moved:
        reply = await self._transition(keys=self._keys(mission_id), args=[
            *_head(mission_id, today), volunteer_id, target, ",".join(allowed), kind, reason])
        return Moved(_text(reply[0]), _text(reply[1]), int(reply[2]), _text(reply[3]) == "1")

    async def propose(self, mission_id: int, run_id: int, expires_at: float, volunteer_ids: Sequence[int], *,
                      adult_on: Mapping[int, date], today: date | None = None) -> Proposed:
        """At most CHUNK volunteers per call (the caller chunks, to check the run between calls). `adult_on`: their
        18th birthdays (one missing: too young for a mission closed to minors)."""
        if len(volunteer_ids) > CHUNK:
            raise ValueError(f"at most {CHUNK} volunteers per call")
        people: list[int | str] = []
        for volunteer_id in volunteer_ids:
            people.extend([volunteer_id, _iso(adult_on.get(volunteer_id))])
        reply = await self._propose(keys=self._keys(mission_id, *volunteer_ids), args=[
            *_head(mission_id, today), run_id, expires_at, INDEX_TTL, *people])
        return Proposed(_text(reply[0]), int(reply[1]), int(reply[2]), int(reply[3]), int(reply[4]),
                        _text(reply[5]) == "1")

    async def withdraw_run(self, mission_id: int, run_id: int, volunteer_ids: Sequence[int], *, kind: str,
                           reason: str, today: date | None = None) -> Withdrawn:
        count = promoted = 0
        drain = False
        for chunk in _chunks(volunteer_ids):
            reply = await self._withdraw_run(keys=self._keys(mission_id), args=[
                *_head(mission_id, today), run_id, kind, reason, *chunk])
            if _text(reply[0]) == "unknown":
                return Withdrawn("unknown", count, promoted, drain)
            count, promoted = count + int(reply[1]), promoted + int(reply[2])
            drain = drain or _text(reply[3]) == "1"
        return Withdrawn("done", count, promoted, drain)

    async def close(self, mission_id: int, volunteer_ids: Sequence[int], *, allowed: Sequence[ApplicationStatus],
                    kind: str, reason: str, today: date | None = None) -> Closed:
        """The applications of an offline mission in one of the `allowed` statuses become cancelled, and their
        volunteers are filed in `closing` (see closing_mails), in the same script."""
        count, drain = 0, False
        keys = [*self._keys(mission_id), MissionKeys(mission_id).closing]
        for chunk in _chunks(volunteer_ids):
            reply = await self._close(keys=keys, args=[
                *_head(mission_id, today), ",".join(allowed), kind, reason, INDEX_TTL, *chunk])
            if _text(reply[0]) != "done":
                return Closed(_text(reply[0]), count, drain)
            count, drain = count + int(reply[1]), drain or _text(reply[2]) == "1"
        return Closed("done", count, drain)

    async def mission_statuses(self, mission_id: int) -> dict[int, str]:
        """Every application's status on this mission, as Redis holds it (empty when Redis does not know it)."""
        raw = await self.redis.hgetall(MissionKeys(mission_id).status)
        return {int(_text(volunteer)): _text(status) for volunteer, status in raw.items()}

    async def closing_mails(self, mission_id: int) -> dict[int, str]:
        """The volunteers to tell that the mission's end closed their application → the closing's kind."""
        raw = await self.redis.hgetall(MissionKeys(mission_id).closing)
        return {int(_text(volunteer)): _text(kind) for volunteer, kind in raw.items()}

    async def closing_left(self, mission_ids: Sequence[int]) -> set[int]:
        """Those of these missions with people filed in `closing` and not told yet."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id in mission_ids:
                pipe.exists(MissionKeys(mission_id).closing)
            found = await pipe.execute()
        return {mission_id for mission_id, exists in zip(mission_ids, found, strict=True) if exists}

    async def told(self, mission_id: int, volunteer_ids: Iterable[int]) -> None:
        """Their e-mails are queued: they leave `closing`."""
        fields = [str(volunteer_id) for volunteer_id in volunteer_ids]
        if fields:
            await self.redis.hdel(MissionKeys(mission_id).closing, *fields)

    async def engaged_seeded(self) -> bool:
        """Whether `engaged` is whole (else the dispatch rebuilds it from PostgreSQL before proposing anyone)."""
        return await self.redis.hget(ENGAGED, "seeded") == b"1"

    async def rebuild_engaged(self, proposals: Sequence[LiveProposal], runs: dict[int, float],
                              run_missions: Iterable[int]) -> int:
        """Engages again the volunteers of the live proposals PostgreSQL holds and of those Redis made for the runs
        (run → expiry) still live on their missions, Redis's own state winning; then marks `engaged` whole."""
        by_mission: dict[int, list[LiveProposal]] = {mission_id: [] for mission_id in run_missions}
        for proposal in proposals:
            by_mission.setdefault(proposal.mission_id, []).append(proposal)
        run_args: list[int | float] = [len(runs)]
        for run_id, expires_at in runs.items():
            run_args.extend([run_id, expires_at])
        engaged = 0
        for mission_id, live in by_mission.items():
            keys = MissionKeys(mission_id)
            for start in range(0, max(len(live), 1), CHUNK):
                pairs: list[int | float] = []
                for proposal in live[start:start + CHUNK]:
                    pairs.extend([proposal.volunteer_id, proposal.expires_at])
                engaged += int(await self._engage(keys=[keys.status, keys.proposals, ENGAGED],
                                                  args=[mission_id, *run_args, *pairs]))
        await self.redis.hset(ENGAGED, "seeded", "1")
        return engaged

    async def engaged_among(self, volunteer_ids: Sequence[int], *, now: float) -> set[int]:
        """Those of these volunteers engaged by a live dispatch proposal (or a confirmation younger than its expiry)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for chunk in _chunks(volunteer_ids):
                pipe.hmget(ENGAGED, [str(volunteer_id) for volunteer_id in chunk])
            values = [value for chunk in await pipe.execute() for value in chunk]
        found: set[int] = set()
        for volunteer_id, value in zip(volunteer_ids, values, strict=True):
            if value is not None:
                expires_at = _text(value).partition(":")[2]
                if float(expires_at) > now:
                    found.add(volunteer_id)
        return found

    async def engagement(self, volunteer_id: int) -> int | None:
        """The mission of this volunteer's live dispatch engagement, as Redis holds it (expired or not)."""
        value = await self.redis.hget(ENGAGED, str(volunteer_id))
        return int(_text(value).partition(":")[0]) if value else None

    async def epoch(self, mission_id: int) -> str:
        return _text(await self.redis.get(MissionKeys(mission_id).epoch) or b"0")

    async def changed(self, mission_ids: Iterable[int]) -> None:
        """After the commit of a change to these missions' places or openness: Redis reads them again at next use."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id in mission_ids:
                pipe.incr(MissionKeys(mission_id).epoch)
            await pipe.execute()

    async def knows(self, mission_id: int) -> bool:
        """Whether Redis holds this mission's application states and its applicants' birthdays (else a seed reads them
        from PostgreSQL)."""
        keys = MissionKeys(mission_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.status)
            pipe.hget(keys.meta, "ages")
            states, ages = await pipe.execute()
        return bool(states) and ages == b"1"

    async def seed(self, mission_id: int, *, capacity: int, state: str, epoch: str, highest_version: int,
                   saved: list[SavedApplication], open_to_minors: bool = False, start_date: date | None = None,
                   today: date | None = None) -> bool:
        """`state`: "1" taking applications, "w" online but full, "0" offline. `saved` (with the birthdays) when
        `knows` said no. One call, however many applications (the script loops over its arguments; nothing is
        unpacked), so the mission is seeded atomically."""
        args: list[str | int] = [*_head(mission_id, today), capacity, state, epoch, highest_version,
                                 "1" if open_to_minors else "0", _iso(start_date)]
        for application in saved:
            args.extend([application.volunteer_id, application.status, application.version,
                         _iso(application.adult_on)])
        return _text(await self._seed(keys=self._keys(mission_id), args=args)) == "1"

    async def statuses(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """The current status of each (mission, volunteer) Redis knows, ahead of PostgreSQL by at most one drain."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id, volunteer_id in pairs:
                pipe.hget(MissionKeys(mission_id).status, str(volunteer_id))
            values = await pipe.execute()
        return {pair: _text(value) for pair, value in zip(pairs, values, strict=True) if value}

    async def queued_missions(self, volunteer_id: int) -> set[int]:
        """The missions this volunteer applied or was proposed to lately: a superset of those with a change still
        queued or in flight, i.e. not yet in PostgreSQL (one set read, whatever the backlog)."""
        return {int(_text(member)) for member in await self.redis.smembers(volunteer_missions_key(volunteer_id))}

    async def taken(self, mission_id: int) -> int | None:
        """Places held right now, or None when Redis does not know the mission, or knew it before its last change."""
        keys = MissionKeys(mission_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.meta, "epoch")
            pipe.get(keys.epoch)
            pipe.scard(keys.holders)
            epoch, version, held = await pipe.execute()
        if epoch is None or epoch != (version or b"0"):
            return None
        return int(held)
