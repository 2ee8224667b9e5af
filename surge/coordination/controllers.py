"""`/coordination`: the dashboard page, and `/coordination/donnees`, the same figures as JSON for the page to poll."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from litestar.response import Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import coordinator, require_account
from app.deps import Db, Web
from surge.coordination.dashboard import Dashboard, dashboard, emergencies_of, paris_time
from surge.coordination.figures import NATIONAL_TOP

POLL_SECONDS = 5


class CoordinationDashboard(Controller):
    path = "/coordination"
    include_in_schema = False
    guards = [coordinator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def page(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        shown, closed = await emergencies_of(db, require_account(request).roles)
        figures = await dashboard(db, web.redis, web.signups, shown)
        # Inside <script type="application/json">: no "<" may close the element early.
        initial = msgspec.json.encode(figures).decode().replace("<", "\\u003c")
        context = {"dashboard": figures, "closed": closed, "initial": initial, "poll_ms": POLL_SECONDS * 1000,
                   "updated": paris_time(figures.updated_at), "national_top": NATIONAL_TOP}
        return Template("coordination.html", context=context, headers=PRIVATE)

    @get("/donnees")
    async def data(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Response[Dashboard]:
        shown, _ = await emergencies_of(db, require_account(request).roles)
        return Response(await dashboard(db, web.redis, web.signups, shown), headers=PRIVATE)
