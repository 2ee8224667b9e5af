"""`/statistiques`: the public figures, read from Redis only (app/statistics/cache.py) — no SQL on a visit."""

from __future__ import annotations

from datetime import datetime

from litestar import Controller, get
from litestar.response import Template

from app.deps import Web
from app.formats import SMALL_COUNT, when
from app.statistics import cache, charts, figures
from app.statistics.schemas import Statistics

# No shared caching: the page carries the visitor's header (and CSRF cookie); a signed-in visitor's is made private by
# app.accounts.navigation.private_when_signed_in. The "being computed" answer must not outlive its minute.
PENDING = {"Cache-Control": "no-store"}


def _charts(document: Statistics) -> dict[str, tuple[charts.Chart, charts.Chart]]:
    drawn = {}
    for series in document.series:
        measure = figures.BY_KEY[series.key]
        drawn[series.key] = (
            charts.monthly(series.months, kind="bar", title=measure.new, unit=measure.unit),
            charts.monthly(series.months, kind="line", title=measure.cumulative, unit=measure.unit),
        )
    return drawn


class StatisticsPages(Controller):
    include_in_schema = False

    @get("/statistiques")
    async def statistics(self, web: Web) -> Template:
        document = await cache.read(web.redis)
        if document is None:
            await cache.request_refresh(web.redis, web.rq_connection)
            return Template("statistiques.html", context={"document": None}, headers=PENDING)
        computed = datetime.fromisoformat(document.computed_at)
        context = {
            "document": document, "measures": figures.BY_KEY, "charts": _charts(document),
            "computed_day": when(computed, "date"), "computed_time": when(computed, "time"),
            "small_count": SMALL_COUNT, "every_minutes": cache.REFRESH_SECONDS // 60,
        }
        return Template("statistiques.html", context=context)
