"""Application pages: apply and cancel (volunteers), the applicants of a mission with decisions, messages and the
CSV export (managers)."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import privileged, require_account, signed_in
from app.accounts.sessions import update_account
from app.applications import exports, service
from app.applications.schemas import OUTCOME_MESSAGES
from app.applications.validation import manager_message
from app.db.base import unit_of_work
from app.deps import Db, Web
from app.http import RowId
from app.state import WebState
from app.volunteers.profile import volunteer_and_adult_on
from queues import enqueue

MAX_BODY = 16_384
SENDING = re.compile(r"[A-Za-z0-9_-]{16}")  # what secrets.token_urlsafe(12) makes
DECISION_DONE = {"accepter": "acceptée(s)", "refuser": "refusée(s)", "terminer": "marquée(s) réalisée(s)"}


async def _volunteer(request: Request[Any, Any, Any], web: WebState) -> tuple[int, date] | None:
    """The signed-in person's volunteer id and 18th birthday: from the session, or, for a session opened before the
    sign-up was saved (or before sessions kept the birthday), looked up once and kept in the session."""
    account = require_account(request)
    if account.volunteer_id is not None and account.adult_on is not None:
        return account.volunteer_id, account.adult_on
    async with unit_of_work(web.engine, web.clients) as session:
        found = await volunteer_and_adult_on(session, account.user_id)
    if found is not None:
        roles = msgspec.structs.replace(account.roles, volunteer=True)
        update_account(request, msgspec.structs.replace(account, volunteer_id=found[0], adult_on=found[1],
                                                        roles=roles))
    return found


async def _volunteer_id(request: Request[Any, Any, Any], web: WebState) -> int | None:
    found = await _volunteer(request, web)
    return None if found is None else found[0]


def _ids(values: list[str]) -> list[int]:
    return [int(value) for value in values if value.isdecimal() and len(value) < 19]


class ApplyPages(Controller):
    path = "/missions/{mission_id:int}"
    include_in_schema = False

    @post("/candidater", guards=[signed_in], request_max_body_size=MAX_BODY)
    async def apply(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web) -> Redirect:
        """The rush path: the session (Redis), one Lua call, no SQL while the mission is unchanged."""
        volunteer = await _volunteer(request, web)
        if volunteer is None:
            return Redirect("/mon-espace/candidatures?resultat=benevole", status_code=303)
        form = await request.form()
        volunteer_id, adult_on = volunteer
        outcome = await service.apply(web.places, web.engine, mission_id, volunteer_id, form.get("message"),
                                      adult_on=adult_on)
        if outcome.drain_needed:
            await web.request_drain(enqueue.drain_applications)
        return Redirect(f"/mon-espace/candidatures?mission={mission_id}&resultat={outcome.outcome}", status_code=303)

    @get("/candidatures", guards=[privileged])
    async def applicants(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db,
                         info: FromQuery[str | None] = None) -> Template:
        mission, applications = await service.of_mission(db, web.redis, mission_id, require_account(request).roles)
        counts: dict[str, int] = {}
        for application in applications:
            counts[application.status_label] = counts.get(application.status_label, 0) + 1
        context = {"mission": mission, "applications": applications, "counts": counts, "info": info,
                   "sending": secrets.token_urlsafe(12),
                   "taken": await service.taken_places(web.places, web.engine, mission_id)}
        return Template("candidatures_mission.html", context=context, headers=PRIVATE)

    @post("/candidatures/decision", guards=[privileged], request_max_body_size=MAX_BODY)
    async def decide(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db) -> Redirect:
        form = await request.form()
        decision = str(form.get("decision") or "")
        if decision not in service.DECISIONS:
            raise NotFoundException
        done, refused, drain = await service.decide(
            web.places, web.engine, db, mission_id, roles=require_account(request).roles, decision=decision,
            volunteer_ids=_ids(form.getall("volunteer", [])), reason=str(form.get("reason") or ""),
        )
        if drain:
            await web.request_drain(enqueue.drain_applications)
        info = f"{done} candidature(s) {DECISION_DONE[decision]}"
        if refused:
            info += f", {refused} ignorée(s) : leur statut ne le permet pas"
        return Redirect(f"/missions/{mission_id}/candidatures?info={quote(info + '.')}", status_code=303)

    @post("/candidatures/message", guards=[privileged], request_max_body_size=MAX_BODY)
    async def message(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db) -> Redirect:
        form = await request.form()
        _, applications = await service.of_mission(db, web.redis, mission_id, require_account(request).roles)
        chosen = set(_ids(form.getall("volunteer", [])))
        body = manager_message(form.get("body"))
        recipients = [application.volunteer_id for application in applications if application.volunteer_id in chosen]
        # The form's one-time number: a second click (or a reload of the POST) sends nothing twice.
        sending = str(form.get("envoi") or "")
        if not body or not recipients:
            info = "Écrivez un message et cochez au moins une personne."
        elif not SENDING.fullmatch(sending) or not await web.redis.set(
            f"renfort:applications:message-sent:{sending}", b"1", nx=True, ex=86_400
        ):
            info = "Ce message est déjà parti : il n'a pas été envoyé une seconde fois."
        else:
            items = [(mission_id, volunteer_id, "application_message", f"message:{mission_id}:{volunteer_id}:{sending}",
                      body) for volunteer_id in recipients]
            await asyncio.to_thread(partial(enqueue.send_application_mails, web.rq_connection, items,
                                            sender_user_id=require_account(request).user_id))
            info = f"Message envoyé à {len(recipients)} personne(s)."
        return Redirect(f"/missions/{mission_id}/candidatures?info={quote(info)}", status_code=303)

    @post("/candidatures/export", guards=[privileged], request_max_body_size=MAX_BODY)
    async def export(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db) -> Redirect:
        account = require_account(request)
        mission, _ = await service.of_mission(db, web.redis, mission_id, account.roles)  # checks the manager
        token = exports.new_token()
        await exports.register(web.redis, token, account.user_id, mission_id)
        await asyncio.to_thread(enqueue.export_applicants, web.rq_connection, token, mission.organisation_id)
        return Redirect(f"/exports/{token}", status_code=303)


class VolunteerApplicationPages(Controller):
    include_in_schema = False

    @get("/mon-espace/candidatures", guards=[signed_in])
    async def mine(self, request: Request[Any, Any, Any], web: Web, db: Db, resultat: FromQuery[str | None] = None,
                   mission: FromQuery[int | None] = None) -> Template:
        volunteer_id = await _volunteer_id(request, web)
        applications = [] if volunteer_id is None else await service.of_volunteer(db, web.redis, volunteer_id)
        context = {"applications": applications, "outcome": OUTCOME_MESSAGES.get(resultat or ""),
                   "outcome_kind": resultat, "volunteer": volunteer_id is not None,
                   "just_applied": mission is not None and all(a.mission_id != mission for a in applications)}
        return Template("mes_candidatures.html", context=context, headers=PRIVATE)

    @post("/mon-espace/candidatures/{mission_id:int}/{action:str}", guards=[signed_in],
          request_max_body_size=MAX_BODY)
    async def answer(self, request: Request[Any, Any, Any], mission_id: RowId, action: FromPath[str],
                     web: Web) -> Redirect:
        """Cancel an application, or confirm a coordinator's proposal."""
        if action not in service.VOLUNTEER_ANSWERS:
            raise NotFoundException
        volunteer_id = await _volunteer_id(request, web)
        if volunteer_id is None:
            return Redirect("/mon-espace/candidatures?resultat=benevole", status_code=303)
        outcome, drain = await service.answer(web.places, web.engine, mission_id, volunteer_id, action)
        if drain:
            await web.request_drain(enqueue.drain_applications)
        return Redirect(f"/mon-espace/candidatures?resultat={outcome}", status_code=303)


class ExportPages(Controller):
    path = "/exports"
    include_in_schema = False

    @get("/{token:str}", guards=[privileged])
    async def status(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web, db: Db) -> Template:
        export = await _own_export(request, token, web, db)
        return Template("export.html", context={"export": export, "token": token}, headers=PRIVATE)

    @get("/{token:str}/candidatures.csv", guards=[privileged])
    async def download(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web,
                       db: Db) -> Response[bytes]:
        export = await _own_export(request, token, web, db)
        if export.status != "ready":
            raise exports.ExportMissing
        filename = f"candidatures-mission-{export.mission_id}.csv"
        return Response(await exports.content(web.redis, token), media_type="text/csv; charset=utf-8",
                        headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{filename}"'})


async def _own_export(request: Request[Any, Any, Any], token: str, web: WebState, db: AsyncSession) -> Any:
    """The requester's export, while they still manage the mission's organisation (a revoked manager downloads
    nothing more, even from a link they kept)."""
    account = require_account(request)
    export = await exports.find(web.redis, token, account.user_id)
    await service.require_manager(db, export.mission_id, account.roles)
    return export
