from __future__ import annotations

import asyncio

from litestar import Controller, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.console.controllers import ops_only
from app.deps import Web
from app.metrics.figures import collect
from app.metrics.process_files import prepare


def _process_counts(base: str) -> bytes:
    """The counts of every process of this server run: the one answering, its siblings, and those that died."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(prepare(base)))
    return generate_latest(registry)


class MetricsController(Controller):
    guards = (ops_only,)
    include_in_schema = False

    @get("/metrics")
    async def metrics(self, web: Web) -> Response[bytes]:
        """Prometheus text format, behind OPS_TOKEN (Bearer or Basic); with Redis or PostgreSQL unreachable, what
        the other one says and `renfort_redis_up 0` or `renfort_postgresql_up 0`: a scrape, not an error."""
        snapshot = await collect(web)
        counts = await asyncio.to_thread(_process_counts, web.settings.metrics_dir)  # reads the processes' files
        return Response(counts + snapshot.render().encode(), media_type=CONTENT_TYPE_LATEST)
