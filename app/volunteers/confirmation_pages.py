"""The link of the `confirm_email` e-mail (`/inscription/confirmer?jeton=`): GET shows a page with one button, POST
confirms, so that link previewers and mail scanners that open links never confirm for the person."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Template

from app.accounts.controllers import PRIVATE
from app.deps import Db, Web
from app.volunteers import confirmation

MAX_BODY = 4_096


def _done(*, already: bool) -> Template:
    return Template("inscription_confirmer_fait.html", context={"already": already}, headers=PRIVATE)


class EmailConfirmationPages(Controller):
    path = confirmation.PATH
    include_in_schema = False

    @get("/")
    async def confirm_form(self, web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        if await confirmation.is_confirmed(db, web.settings.secret_key.reveal(), jeton, time.time()):
            return _done(already=True)
        return Template("inscription_confirmer.html", context={"token": jeton}, headers=PRIVATE)

    @post("/", request_max_body_size=MAX_BODY)
    async def confirm(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        token = str((await request.form()).get("jeton") or "")
        confirmed = await confirmation.confirm(db, web.settings.secret_key.reveal(), token, time.time())
        return _done(already=not confirmed)
