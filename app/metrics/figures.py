"""What a scrape reads live, in the process that answers it: every queue's depth and oldest age (sign-ups,
applications, e-mails, jobs), the write queues' counts since they began (kept in Redis by their owners, so they
survive process restarts), Redis memory, dispatch runs by status, and whether Redis and PostgreSQL answer.

Each source has its own time limit and its own failure: Redis or PostgreSQL down (or slow) gives what the other
one says, plus `renfort_redis_up 0` or `renfort_postgresql_up 0`; a scrape never fails for it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from app.applications.keys import SEQUENCE
from app.health.controllers import SATURATED, memory_state, memory_within_timeout, queue_figures
from app.redis_memory import RedisMemory
from app.state import WebState
from queues.connection import job_figures
from queues.mail_keys import DROPPED
from surge.dispatch.models import STATUSES

log = logging.getLogger("renfort.metrics")
REDIS_SECONDS = 3.0
POSTGRES_SECONDS = 2.0
# A dropped e-mail's field is "<kind>:<reason>", both written by the outbox: anything else is not made a label.
DROPPED_FIELD = re.compile(r"([a-z_]{1,40}):([a-z_]{1,20})")


@dataclass
class _Family:
    kind: str  # gauge | counter
    documentation: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Snapshot:
    """The families of one scrape, in Prometheus's text format (whole numbers written as such)."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def _add(self, kind: str, name: str, documentation: str, value: float, labels: dict[str, str]) -> None:
        family = self._families.setdefault(name, _Family(kind, documentation))
        family.samples.append((labels, value))

    def gauge(self, name: str, documentation: str, value: float, **labels: str) -> None:
        self._add("gauge", name, documentation, value, labels)

    def counter(self, name: str, documentation: str, value: float, **labels: str) -> None:
        self._add("counter", name + "_total", documentation, value, labels)

    def render(self) -> str:
        lines = []
        for name, family in self._families.items():
            lines += [f"# HELP {name} {family.documentation}", f"# TYPE {name} {family.kind}"]
            for labels, value in family.samples:
                tags = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
                lines.append(f"{name}{{{tags}}} {_number(value)}" if tags else f"{name} {_number(value)}")
        return "\n".join(lines) + "\n"


async def collect(web: WebState) -> Snapshot:
    snapshot = Snapshot()
    redis_up, postgresql_up = await asyncio.gather(_within(_redis(web, snapshot), REDIS_SECONDS, "Redis"),
                                                   _within(_postgresql(web, snapshot), POSTGRES_SECONDS, "PostgreSQL"))
    snapshot.gauge("renfort_redis_up", "1 when Redis answered this scrape.", int(redis_up))
    snapshot.gauge("renfort_postgresql_up", "1 when PostgreSQL answered this scrape.", int(postgresql_up))
    return snapshot


async def _within(section: Any, seconds: float, what: str) -> bool:
    """Runs one source's section; what it added before failing stays in the snapshot."""
    try:
        await asyncio.wait_for(section, seconds)
    except Exception as error:  # whatever it is, the scrape goes on: the source is reported down
        log.warning("metrics: %s did not answer (%s)", what, type(error).__name__)
        return False
    return True


async def _redis(web: WebState, snapshot: Snapshot) -> None:
    await web.redis.ping()
    figures = await queue_figures(web)
    for name, value in figures.items():
        # Their first names, which dashboards and the runbook already use.
        snapshot.gauge(f"renfort_{name}", f"{name.replace('_', ' ')} (see renfort_queue_* for every queue).", value)
    jobs = await asyncio.to_thread(job_figures, web.rq_connection)
    depth = {"signups": figures["signups_pending"], "applications": figures["applications_pending"],
             "mail": jobs.mail_queued, "jobs": jobs.queued}
    oldest = {"signups": figures["signups_oldest_pending_seconds"],
              "applications": figures["applications_oldest_pending_seconds"],
              "mail": jobs.mail_oldest_seconds, "jobs": jobs.oldest_queued_seconds}
    for queue, value in depth.items():
        snapshot.gauge("renfort_queue_depth", "Records or jobs waiting, per queue (mail: e-mail jobs among the jobs).",
                       value, queue=queue)
        snapshot.gauge("renfort_queue_oldest_age_seconds", "Age of the oldest record or job waiting, per queue.",
                       oldest[queue], queue=queue)
    snapshot.gauge("renfort_queue_depth_estimated", "1 when the e-mail count is scaled from the head of a long "
                   "job queue rather than counted.", int(jobs.mail_estimated), queue="mail")
    for name, value in (("scheduled", jobs.scheduled), ("failed", jobs.failed), ("started", jobs.started)):
        snapshot.gauge(f"renfort_jobs_{name}", f"RQ jobs in the {name} registry.", value)
    await _totals(web, snapshot, figures)
    await _dropped_mail(web, snapshot)
    memory = await memory_within_timeout(web)
    if memory is not None:
        _memory(web, snapshot, memory)


async def _totals(web: WebState, snapshot: Snapshot, figures: dict[str, float]) -> None:
    signups, applications = await web.signups.totals(), await web.places.queue.totals()
    # Every queued application change is numbered from this sequence: it is the applications' accepted count.
    applications["accepted"] = int(await web.redis.get(SEQUENCE) or 0)
    for queue, totals in (("signups", signups), ("applications", applications)):
        snapshot.gauge("renfort_queue_in_flight", "Records held by a drain consumer, per write queue.",
                       figures[f"{queue}_in_flight"], queue=queue)
        snapshot.gauge("renfort_queue_dead_letters", "Records in the dead letters now, per write queue.",
                       figures[f"{queue}_dead_letters"], queue=queue)
        for name, what in (("accepted", "queued by the accept path"), ("persisted", "written to PostgreSQL"),
                           ("dead_lettered", "moved to the dead letters")):
            snapshot.counter(f"renfort_queue_{name}", f"Records {what} since the queue began, per write queue.",
                             totals.get(name, 0), queue=queue)


async def _dropped_mail(web: WebState, snapshot: Snapshot) -> None:
    for name, count in (await web.redis.hgetall(DROPPED)).items():
        match = DROPPED_FIELD.fullmatch(name.decode() if isinstance(name, bytes) else str(name))
        if match:
            snapshot.counter("renfort_mail_dropped", "E-mails not sent, by kind and reason (lapsed, given_up, ...).",
                             int(count), kind=match[1], reason=match[2])


def _memory(web: WebState, snapshot: Snapshot, memory: RedisMemory) -> None:
    snapshot.gauge("renfort_redis_memory_used_bytes", "Redis used_memory.", memory.used_bytes)
    if memory.max_bytes is not None:
        snapshot.gauge("renfort_redis_memory_max_bytes", "Redis maxmemory (0: no limit).", memory.max_bytes)
    if memory.fraction is not None:
        snapshot.gauge("renfort_redis_memory_fraction", "Redis used over maxmemory.", round(memory.fraction, 4))
    snapshot.gauge("renfort_redis_memory_saturated", "1 past REDIS_MEMORY_LIMIT_FRACTION: writes get 503.",
                   int(memory_state(web, memory) == SATURATED))
    if memory.aof_enabled is not None:
        snapshot.gauge("renfort_redis_aof_enabled", "1 when Redis appends to its AOF.", int(memory.aof_enabled))
    # Text settings as labels of a constant, the usual Prometheus shape for "info" figures.
    snapshot.gauge("renfort_redis_settings", "Redis memory policy and fsync setting, as labels.", 1,
                   maxmemory_policy=memory.policy or "unknown", appendfsync=memory.appendfsync or "unknown")


async def _postgresql(web: WebState, snapshot: Snapshot) -> None:
    async with web.engine.connect() as connection:
        # The server gives up too, so a slow query never outlives the scrape that asked for it.
        await connection.execute(text("SET LOCAL statement_timeout = 1500"))
        rows = (await connection.execute(text("SELECT status, count(*) FROM dispatch_runs GROUP BY status"))).all()
    counts = {str(status): int(count) for status, count in rows}
    for status in STATUSES:
        snapshot.gauge("renfort_dispatch_runs", "Dispatch runs by status.", counts.get(status, 0), status=status)
