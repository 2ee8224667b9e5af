from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, MediaType, Response, get
from sqlalchemy import text

from app.deps import Web
from app.state import WebState
from queues.enqueue import queued_jobs

CHECK_TIMEOUT = 2.0


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
    signups = web.signups
    return {
        "signups_pending": await signups.depth(),
        "signups_in_flight": await signups.inflight(),
        "oldest_pending_seconds": round(await signups.oldest_age_seconds(), 3),
        "dead_letters": await signups.dead_count(),
        "jobs_queued": await asyncio.to_thread(queued_jobs, web.rq_connection),
    }


class HealthController(Controller):
    include_in_schema = False

    @get("/health")
    async def health(self) -> dict[str, str]:
        """The process is alive and serving; says nothing of its dependencies."""
        return {"status": "ok"}

    @get("/ready")
    async def ready(self, web: Web) -> Response[dict[str, Any]]:
        database = await _check(_ping_database(web))
        redis = await _check(web.redis.ping())
        body: dict[str, Any] = {"status": "ok", "postgresql": database, "redis": redis}
        if redis == "ok":
            body["queue"] = await queue_figures(web)
        ready = database == "ok" and redis == "ok"
        if not ready:
            body["status"] = "indisponible"
        return Response(body, status_code=200 if ready else 503)

    @get("/metrics", media_type=MediaType.TEXT)
    async def metrics(self, web: Web) -> str:
        """Prometheus text format."""
        figures = await queue_figures(web)
        lines = []
        for name, value in figures.items():
            lines += [f"# TYPE renfort_{name} gauge", f"renfort_{name} {value}"]
        return "\n".join(lines) + "\n"
