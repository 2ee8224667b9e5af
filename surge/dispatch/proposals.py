"""The jobs' side of a run's proposals: commit (make them), withdraw (cancel a run) and expire (lapse unanswered).

Every change goes through the applications' Redis scripts (app/applications/capacity.py), one mission at a time:
places are held exactly as applying holds them, so a proposal never oversells, and each change is versioned and
queued for the applications drain, which writes it idempotently and queues the e-mail it calls for. A commit can
therefore run again after a crash: the script proposes nobody twice and counts those it proposed before. Nobody
holds two live proposals, whatever the timing of two runs: the script claims each volunteer in Redis's `engaged`,
which every run sees at once, where PostgreSQL would know only after the drain.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications.capacity import CHUNK, LiveProposal, Places, Proposed, Withdrawn
from app.applications.models import Application
from app.applications.service import move, seed
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from app.missions.service import MissionNotFound
from app.volunteers import age
from surge.dispatch.models import DispatchRun

LOCK_SECONDS = 900
CANCELLED_REASON = "Mobilisation annulée par la coordination."
EXPIRED_REASON = "Proposition expirée sans réponse."
EXPIRY_BATCH = 5_000

# Volunteers of the plan who confirmed a proposal of another dispatch of a live emergency: they are left out. (Live
# proposals, and confirmations younger than their proposal's expiry, are Redis's `engaged`: it knows them at once,
# PostgreSQL only after the drain.)
CONFIRMED_ELSEWHERE = text("""
SELECT DISTINCT a.volunteer_id FROM applications a
JOIN dispatch_runs r ON r.id = a.dispatch_run_id
JOIN emergencies e ON e.id = r.emergency_id
WHERE a.volunteer_id = ANY(CAST(:ids AS bigint[])) AND a.dispatch_run_id <> :run
  AND a.status = 'accepted' AND e.status = 'live'
""")


# The plan's volunteers as they are now (deleted since: absent), for the age rule.
BIRTH_DATES = text("SELECT id, birth_date FROM volunteers WHERE id = ANY(CAST(:ids AS bigint[]))")


class RunBusy(Exception):
    """Another job holds this run (a commit still running): retry later."""


def lock_key(run_id: int) -> str:
    return f"renfort:dispatch:run:{run_id}:lock"


def _chunks(items: Sequence[int]) -> list[Sequence[int]]:
    return [items[start:start + CHUNK] for start in range(0, len(items), CHUNK)]


def _groups(missions: Sequence[int], volunteers: Sequence[int], order: Sequence[int]) -> list[tuple[int, list[int]]]:
    """The plan's pairs per mission, missions in `order` (priority first) then any other."""
    per_mission: dict[int, list[int]] = {mission_id: [] for mission_id in order}
    for mission_id, volunteer_id in zip(missions, volunteers, strict=True):
        per_mission.setdefault(mission_id, []).append(volunteer_id)
    return [(mission_id, ids) for mission_id, ids in per_mission.items() if ids]


async def seed_engaged(engine: AsyncEngine, places: Places) -> int:
    """Rebuilds Redis's `engaged` (lost with a Redis restart without AOF) from the live proposals and confirmations
    PostgreSQL holds and from those Redis made for the runs still live; returns how many volunteers it engaged."""
    now = datetime.now(UTC)
    async with unit_of_work(engine) as session:
        live = [LiveProposal(mission_id, volunteer_id, expires_at.timestamp())
                for mission_id, volunteer_id, expires_at in await session.execute(
                    select(Application.mission_id, Application.volunteer_id, Application.expires_at)
                    .where(Application.dispatch_run_id.is_not(None), Application.expires_at > now,
                           Application.status.in_((Status.PROPOSED, Status.ACCEPTED)))) if expires_at]
        runs = {run_id: expires_at.timestamp() for run_id, expires_at in await session.execute(
            select(DispatchRun.id, DispatchRun.expires_at).where(DispatchRun.expires_at > now)) if expires_at}
        run_missions = set((await session.execute(
            select(func.unnest(DispatchRun.planned_missions)).where(DispatchRun.expires_at > now).distinct()
        )).scalars())
    return await places.rebuild_engaged(live, runs, run_missions)


async def _propose(engine: AsyncEngine, places: Places, mission_id: int, run_id: int, expires_at: float,
                   volunteers: Sequence[int], adult_on: Mapping[int, date]) -> Proposed | None:
    """PROPOSE, re-reading the mission from PostgreSQL when Redis does not know it (or knew it before its last
    change) and rebuilding `engaged` when Redis lost it; None when the mission no longer exists or stays unknown.
    The script checks the age rule as the mission has it now, with the birthdays read at the commit."""
    for _ in range(4):
        proposed = await places.propose(mission_id, run_id, expires_at, volunteers, adult_on=adult_on,
                                        today=age.today())
        if proposed.outcome == "unseeded":
            await seed_engaged(engine, places)
        elif proposed.outcome == "unknown":
            try:
                await seed(places, engine, mission_id)
            except MissionNotFound:
                return None
        else:
            return proposed
    return None


async def _withdraw(engine: AsyncEngine, places: Places, mission_id: int, run_id: int,
                    volunteers: Sequence[int]) -> Withdrawn | None:
    for _ in range(3):
        withdrawn = await places.withdraw_run(mission_id, run_id, volunteers, kind="dispatch_cancelled",
                                              reason=CANCELLED_REASON)
        if withdrawn.outcome != "unknown":
            return withdrawn
        try:
            await seed(places, engine, mission_id)
        except MissionNotFound:
            return None
    return None


class _Lock:
    def __init__(self, redis: Redis, run_id: int) -> None:
        self.redis, self.key, self.token = redis, lock_key(run_id), secrets.token_hex(8)

    async def take(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, ex=LOCK_SECONDS))

    async def release(self) -> None:
        if await self.redis.get(self.key) == self.token.encode():
            await self.redis.delete(self.key)


async def commit_run(engine: AsyncEngine, places: Places, redis: Redis, run_id: int, *, ttl_seconds: int,
                     request_drain: Callable[[], object]) -> dict[str, int]:
    """committing → committed: proposes the plan's pairs. One job at a time per run (a Redis lock); re-runnable."""
    lock = _Lock(redis, run_id)
    if not await lock.take():
        raise RunBusy  # another job is committing this run (or died holding the lock): RQ retries later
    try:
        return await _commit(engine, places, run_id, ttl_seconds, request_drain)
    finally:
        await lock.release()


async def _commit(engine: AsyncEngine, places: Places, run_id: int, ttl_seconds: int,
                  request_drain: Callable[[], object]) -> dict[str, int]:
    async with unit_of_work(engine) as session:
        run = await session.get(DispatchRun, run_id, with_for_update=True)
        if run is None or run.status != "committing":
            return {"proposed": 0}
        if run.expires_at is None:  # fixed once, so a re-run gives the same expiry
            run.expires_at = datetime.now(UTC) + timedelta(seconds=ttl_seconds)
        expires_at = run.expires_at.timestamp()
        confirmed = set((await session.execute(CONFIRMED_ELSEWHERE, {"ids": list(set(run.planned_volunteers)),
                                                                     "run": run_id})).scalars())
        order = [int(m["id"]) for m in run.preview.get("missions", [])]
        groups = _groups(run.planned_missions, run.planned_volunteers, order)
        adult_on = {volunteer_id: age.adult_on(birth_date) for volunteer_id, birth_date in await session.execute(
            BIRTH_DATES, {"ids": list(set(run.planned_volunteers))})}
    if not await places.engaged_seeded():
        await seed_engaged(engine, places)
    proposed = earlier = engaged = skipped = young = 0
    for index, (mission_id, volunteers) in enumerate(groups):
        if index and index % 100 == 0 and not await _still(engine, run_id, "committing"):
            return {"proposed": proposed + earlier, "stopped": 1}  # cancelled meanwhile: the withdrawal follows
        wanted = [v for v in volunteers if v not in confirmed and v in adult_on]  # deleted since: skipped
        engaged += sum(v in confirmed for v in volunteers)
        skipped += sum(v not in confirmed and v not in adult_on for v in volunteers)
        for chunk in _chunks(wanted):
            batch = await _propose(engine, places, mission_id, run_id, expires_at, chunk, adult_on)
            if batch is None or batch.outcome != "done":
                skipped += len(chunk)
                continue
            proposed += batch.count
            earlier += batch.earlier
            engaged += batch.engaged
            young += batch.minors
            skipped += len(chunk) - batch.count - batch.earlier - batch.engaged
            if batch.drain_needed:
                request_drain()  # at once, so PostgreSQL fills while the rest is proposed
    async with unit_of_work(engine) as session:
        run = await session.get(DispatchRun, run_id, with_for_update=True)
        if run is not None and run.status == "committing":
            run.status = "committed"
            run.committed_at = datetime.now(UTC)
            run.counts = {**run.counts, "proposed": proposed + earlier, "not_proposed": skipped,
                          "engaged_elsewhere": engaged, "too_young": young}
    # `not_proposed` counts the `too_young` too (under 18 for a mission closed to minors, as things stand now).
    return {"proposed": proposed + earlier, "new": proposed, "not_proposed": skipped, "engaged_elsewhere": engaged,
            "too_young": young}


async def _still(engine: AsyncEngine, run_id: int, status: str) -> bool:
    async with unit_of_work(engine) as session:
        return await session.scalar(select(DispatchRun.status).where(DispatchRun.id == run_id)) == status


async def withdraw_run(engine: AsyncEngine, places: Places, redis: Redis, run_id: int, *,
                       request_drain: Callable[[], object]) -> dict[str, int]:
    """A cancelled run's proposals still waiting for an answer become cancelled (their places go back). Waits for a
    commit still running (`RunBusy`, retried), so nothing it proposes afterwards escapes the withdrawal."""
    lock = _Lock(redis, run_id)
    if not await lock.take():
        raise RunBusy
    try:
        async with unit_of_work(engine) as session:
            run = await session.get(DispatchRun, run_id)
            if run is None or run.status != "cancelled":
                return {"withdrawn": 0}
            groups = _groups(run.planned_missions, run.planned_volunteers, [])
        withdrawn = 0
        for mission_id, volunteers in groups:
            batch = await _withdraw(engine, places, mission_id, run_id, volunteers)
            if batch is None:
                continue
            withdrawn += batch.count
            if batch.drain_needed or batch.promoted:
                request_drain()
        async with unit_of_work(engine) as session:
            run = await session.get(DispatchRun, run_id, with_for_update=True)
            if run is not None:
                run.counts = {**run.counts, "withdrawn": int(run.counts.get("withdrawn", 0)) + withdrawn}
        return {"withdrawn": withdrawn}
    finally:
        await lock.release()


async def expire_proposals(engine: AsyncEngine, places: Places, *, now: datetime,
                           request_drain: Callable[[], object]) -> dict[str, int]:
    """Proposals past their expiry become cancelled, a batch at a time (the scheduler calls again)."""
    async with unit_of_work(engine) as session:
        rows = (await session.execute(
            select(Application.mission_id, Application.volunteer_id)
            .where(Application.status == Status.PROPOSED, Application.expires_at <= now)
            .order_by(Application.expires_at).limit(EXPIRY_BATCH)
        )).all()
    expired = 0
    drain = False
    for mission_id, volunteer_id in rows:
        try:
            moved, needs = await move(places, engine, mission_id, volunteer_id, target=Status.CANCELLED,
                                      allowed=(Status.PROPOSED,), kind="expired", reason=EXPIRED_REASON)
        except MissionNotFound:
            continue
        drain = drain or needs
        expired += moved.outcome == "done"
    if drain:
        request_drain()
    return {"expired": expired}
