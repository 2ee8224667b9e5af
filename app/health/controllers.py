from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Response, get
from redis.exceptions import RedisError
from sqlalchemy import text

from app.deps import Web
from app.redis_memory import RedisMemory, read_memory
from app.state import WebState
from queues.enqueue import queued_jobs

CHECK_TIMEOUT = 2.0
SATURATED = "saturée"
UNKNOWN = "inconnue"
NO_LIMIT = "sans limite"


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
    except Exception as error:
        return f"indisponible ({type(error).__name__})"
    return "ok"


async def _ping_database(web: WebState) -> None:
    async with web.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def queue_figures(web: WebState) -> dict[str, float]:
    signups, applications = web.signups, web.places.queue
    signups_oldest = round(await signups.oldest_age_seconds(), 3)
    signups_dead = await signups.dead_count()
    return {
        "signups_pending": await signups.depth(),
        "signups_in_flight": await signups.inflight(),
        "signups_oldest_pending_seconds": signups_oldest,
        "signups_dead_letters": signups_dead,
        # The sign-up queue's figures under their first names, which dashboards already scrape.
        "oldest_pending_seconds": signups_oldest,
        "dead_letters": signups_dead,
        "applications_pending": await applications.depth(),
        "applications_in_flight": await applications.inflight(),
        "applications_oldest_pending_seconds": round(await applications.oldest_age_seconds(), 3),
        "applications_dead_letters": await applications.dead_count(),
        "jobs_queued": await asyncio.to_thread(queued_jobs, web.rq_connection),
        # Set aside while pause_jobs is on (app/switches/jobs.py): queued again once it is off.
        "jobs_held": await web.switches.store.held_jobs(),
    }


async def memory_within_timeout(web: WebState) -> RedisMemory | None:
    try:
        return await asyncio.wait_for(read_memory(web.redis), CHECK_TIMEOUT)
    except (RedisError, OSError, TimeoutError):
        return None


def memory_state(web: WebState, memory: RedisMemory | None) -> str:
    if memory is None or memory.max_bytes is None:
        return UNKNOWN
    if memory.fraction is None:
        return NO_LIMIT
    return SATURATED if memory.fraction >= web.settings.redis_memory_limit_fraction else "ok"


def _rounded(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction, 4)


def _memory_body(memory: RedisMemory) -> dict[str, Any]:
    return {
        "memory": {
            "used_bytes": memory.used_bytes,
            "max_bytes": memory.max_bytes,
            "fraction": _rounded(memory.fraction),
            "policy": memory.policy,
        },
        "persistence": {"aof_enabled": memory.aof_enabled, "appendfsync": memory.appendfsync},
    }


class HealthController(Controller):
    include_in_schema = False

    @get("/health")
    async def health(self) -> dict[str, str]:
        """The process is alive and serving; says nothing of its dependencies."""
        return {"status": "ok"}

    @get("/ready")
    async def ready(self, web: Web) -> Response[dict[str, Any]]:
        """503 only when PostgreSQL or Redis is unreachable. A Redis near its memory limit, or dead letters, are
        for ops to act on, not an outage: they are reported with a 200."""
        database = await _check(_ping_database(web))
        redis = await _check(web.redis.ping())
        body: dict[str, Any] = {"status": "ok", "postgresql": database, "redis": redis}
        if redis == "ok":
            memory = await memory_within_timeout(web)
            body["redis_memory"] = memory_state(web, memory)
            if memory is not None:
                body.update(_memory_body(memory))
            body["queue"] = await queue_figures(web)
        ready = database == "ok" and redis == "ok"
        if not ready:
            body["status"] = "indisponible"
        return Response(body, status_code=200 if ready else 503)
