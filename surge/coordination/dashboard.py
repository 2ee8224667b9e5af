"""The dashboard's figures as msgspec Structs, assembled for the emergencies a coordinator may coordinate.

Each emergency's figures (SQL: figures.py and the public page's counters) are cached in Redis (app/cache) under an
explicit key per emergency — they are the same for every coordinator allowed to see them — fresh for FRESH_SECONDS:
the first poll that finds them stale rebuilds them under a lock, on its own database session, while the others keep
the previous copy. The queue figures are a few Redis reads, taken live at every poll.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles
from app.applications.capacity import PREFIX as APPLICATIONS_PREFIX
from app.cache import CacheKeys, Policy, shared
from app.durable_queue import DurableQueue
from app.formats import decimal, when
from app.maps.render import Choropleth, choropleth
from app.maps.shapes import department_codes
from app.volunteers.signup_queue import SignupQueue
from surge.coordination import figures
from surge.dispatch.runs import STATUS_LABELS as RUN_LABELS
from surge.emergencies import service
from surge.emergencies.models import Emergency
from surge.emergencies.page import counters

PREFIX = "renfort:coordination:figures:"  # one entry per emergency slug, beside nothing else
VERSION_KEY = PREFIX + "version"  # never bumped: the figures age by time only
FRESH_SECONDS = 4  # below the page's 5 s poll, so each poll sees figures at most one period old
KEEP_SECONDS = 120
# Inline: the figures are computed on the polling coordinator's own session, which holds a pooled connection already.
POLICY = Policy(fresh_seconds=FRESH_SECONDS, keep_seconds=KEEP_SECONDS, rebuild_in_background=False)
SHOWN = ("live", "draft")  # closed emergencies are listed, not measured
RUN_COUNTS = {"planning": "en calcul", "planned": "prête(s) à engager", "failed": "en échec",
              "committing": "en cours d'envoi", "committed": "envoyée(s)", "cancelled": "annulée(s)"}


class DepartmentFigures(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    population: int
    volunteers: int
    volunteers_per_thousand: float
    places_filled: int
    filled_per_thousand: float


class RunFigures(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    status: str
    label: str
    created_at: str  # Paris time, "26/11 14:05"
    planned: int
    proposed: int
    waiting: int  # proposals not answered yet
    accepted: int  # accepted (or already done)
    declined: int
    cancelled: int  # withdrawn with the run, or lapsed unanswered


class EmergencyFigures(msgspec.Struct, frozen=True, kw_only=True):
    slug: str
    title: str
    status: str
    status_label: str
    national: bool
    minutes: list[str]  # "HH:MM" (Paris) of each bucket, the current minute last
    per_minute: list[int]  # saved sign-ups of this emergency by the minute they were accepted
    last_hour: int
    volunteers: int
    missions: int
    places_open: int
    places_filled: int
    coverage: list[DepartmentFigures]
    runs_by_status: dict[str, int]
    runs_summary: str  # the same, in French
    runs: list[RunFigures]
    computed_at: str  # ISO 8601, UTC
    coverage_map: Choropleth | None = None  # volunteers per 1,000 inhabitants, every department of the scope


class QueueFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Platform-wide: the queues are shared by every emergency."""

    signups_queued: int  # accepted, waiting in Redis to be saved
    signups_in_flight: int  # being written by a worker
    oldest_queued_seconds: float
    applications_queued: int  # application changes waiting to be written


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    updated_at: str  # ISO 8601, UTC
    queue: QueueFigures
    emergencies: list[EmergencyFigures]


def _minute_label(epoch_minute: int) -> str:
    return when(datetime.fromtimestamp(epoch_minute * 60, UTC), "time")


def _department(row: figures.DepartmentCoverage) -> DepartmentFigures:
    return DepartmentFigures(code=row.code, name=row.name, population=row.population, volunteers=row.volunteers,
                             volunteers_per_thousand=row.per_thousand(row.volunteers),
                             places_filled=row.places_filled, filled_per_thousand=row.per_thousand(row.places_filled))


def _run(outcome: figures.RunOutcome) -> RunFigures:
    answers = outcome.answers
    return RunFigures(
        id=outcome.id, status=outcome.status, label=RUN_LABELS.get(outcome.status, outcome.status),
        created_at=when(outcome.created_at, "short"), planned=outcome.planned,
        proposed=outcome.proposed, waiting=answers.get("proposed", 0),
        accepted=answers.get("accepted", 0) + answers.get("done", 0), declined=answers.get("declined", 0),
        cancelled=answers.get("cancelled", 0),
    )


def _runs_summary(by_status: dict[str, int]) -> str:
    if not by_status:
        return "Aucune mobilisation pour l'instant."
    parts = [f"{by_status[status]} {label}" for status, label in RUN_COUNTS.items() if status in by_status]
    return f"{sum(by_status.values())} mobilisation(s) : {' · '.join(parts)}."


def paris_time(iso: str) -> str:
    return when(datetime.fromisoformat(iso), "time_seconds")


async def compute(session: AsyncSession, emergency: Emergency, *, now: datetime) -> EmergencyFigures:
    first, per_minute = await figures.signups_per_minute(session, emergency.slug, now=now)
    totals = await counters(session, emergency.slug)
    coverage = await figures.coverage(session, emergency.slug, list(emergency.departments))
    # A national emergency's table shows its best-covered departments; its map shows every department.
    mapped = coverage if emergency.departments else await figures.coverage(session, emergency.slug, department_codes())
    by_status, runs = await figures.dispatch_runs(session, emergency.id)
    return EmergencyFigures(
        slug=emergency.slug, title=emergency.title, status=emergency.status,
        status_label=service.STATUS_LABELS[emergency.status], national=not emergency.departments,
        minutes=[_minute_label(first + index) for index in range(figures.MINUTES)], per_minute=per_minute,
        last_hour=sum(per_minute), volunteers=totals.volunteers, missions=totals.missions,
        places_open=totals.places_open, places_filled=totals.places_filled,
        coverage=[_department(row) for row in coverage], runs_by_status=by_status,
        runs_summary=_runs_summary(by_status), runs=[_run(run) for run in runs],
        computed_at=now.isoformat(), coverage_map=_coverage_map(mapped, emergency.departments),
    )


def _coverage_map(rows: list[figures.DepartmentCoverage], scope: list[str]) -> Choropleth:
    return choropleth({row.code: row.per_thousand(row.volunteers) for row in rows},
                      caption="Bénévoles inscrits depuis la page de l'urgence, par département de résidence",
                      unit="bénévoles pour 1 000 habitants", scope=scope, shown=lambda value: decimal(value, 2),
                      resolution=0.01,
                      no_data="pas de population connue", outside="hors du périmètre de l'urgence")


async def emergency_figures(session: AsyncSession, redis: Redis, emergency: Emergency) -> EmergencyFigures:
    async def build() -> bytes:
        return msgspec.json.encode(await compute(session, emergency, now=datetime.now(UTC)))

    keys = CacheKeys.of(VERSION_KEY, PREFIX, emergency.slug)
    return msgspec.json.decode(await shared(redis, POLICY).get(keys, build), type=EmergencyFigures)


async def queue_figures(redis: Redis, signups: SignupQueue) -> QueueFigures:
    return QueueFigures(
        signups_queued=await signups.depth(), signups_in_flight=await signups.inflight(),
        oldest_queued_seconds=round(await signups.oldest_age_seconds(), 1),
        applications_queued=await DurableQueue(redis, APPLICATIONS_PREFIX).depth(),
    )


async def emergencies_of(session: AsyncSession, roles: Roles) -> tuple[list[Emergency], list[Emergency]]:
    """(measured: live then drafts, closed) among the emergencies this coordinator may coordinate."""
    emergencies = await service.visible_to(session, roles)
    shown = sorted((e for e in emergencies if e.status in SHOWN), key=lambda e: SHOWN.index(e.status))
    return shown, [e for e in emergencies if e.status not in SHOWN]


async def dashboard(session: AsyncSession, redis: Redis, signups: SignupQueue, shown: list[Emergency]) -> Dashboard:
    # One session cannot run two queries at once: the emergencies are measured one after the other.
    measured = [await emergency_figures(session, redis, emergency) for emergency in shown]
    return Dashboard(updated_at=datetime.now(UTC).isoformat(), queue=await queue_figures(redis, signups),
                     emergencies=measured)
