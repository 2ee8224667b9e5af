"""`GET /r/{mission_id}/{partner_id}`: the tracked link partners and our own pages use (see tracking.py)."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Redirect

from app.deps import Db, Web
from app.http import client_ip
from app.missions.exceptions import MissionNotFound
from app.partners import tracking

# The redirect depends on nothing but the link, yet each human follow is a new click: never kept by a cache.
NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


class TrackedLinks(Controller):
    path = "/r"
    include_in_schema = False

    @get("/{mission_id:str}/{partner_id:str}")
    async def follow(self, request: Request[Any, Any, Any], mission_id: FromPath[str], partner_id: FromPath[str],
                     web: Web, db: Db) -> Redirect:
        mission = tracking.row_id(mission_id)
        if mission is None:
            raise MissionNotFound
        target = await tracking.resolve(db, mission, tracking.row_id(partner_id))
        if target is None:
            raise MissionNotFound
        secret = web.settings.secret_key.reveal()
        counted = target.direction is not None and not tracking.is_bot(request.headers.get("user-agent", "")) and (
            tracking.is_navigation(request.headers.get("sec-fetch-dest"))) and (
            await tracking.within_limit(web.redis, secret, client_ip(request, web.settings.trusted_proxy_hops),
                                        time.time()))
        location = await tracking.follow(db, target, secret=secret, counted=counted)
        return Redirect(location, status_code=302, headers=NO_STORE)
