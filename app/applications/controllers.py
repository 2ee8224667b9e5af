"""Application pages: apply and cancel (volunteers), the applicants of a mission with decisions, messages and the
CSV export (managers)."""

from __future__ import annotations

import asyncio
import re
import secrets
from datetime import date
from functools import partial
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import privileged, require_account, signed_in
from app.accounts.sessions import update_account
from app.applications import exports, service
from app.applications.schemas import OUTCOME_MESSAGES
from app.applications.statuses import CANCELLABLE
from app.applications.statuses import ApplicationStatus as Status
from app.applications.validation import decline_reason, manager_message
from app.confirm import Confirmation, confirmed
from app.confirm import page as confirmation_page
from app.db.base import unit_of_work
from app.deps import Db, Web
from app.http import RowId
from app.partners import tracking
from app.state import WebState
from app.volunteers.profile import volunteer_and_adult_on
from queues import enqueue

MAX_BODY = 16_384
SENDING = re.compile(r"[A-Za-z0-9_-]{16}")  # what secrets.token_urlsafe(12) makes
CANCEL = "annuler"
DECISION_DONE = {"accepter": "acceptée(s)", "refuser": "refusée(s)", "terminer": "marquée(s) réalisée(s)"}
# The notices of the applicants page, by the code its redirects carry: never text from the address itself.
MESSAGE_NOTICES = {
    "message-vide": "Écrivez un message et cochez au moins une personne.",
    "message-deja-parti": "Ce message est déjà parti : il n'a pas été envoyé une seconde fois.",
}


def _count(raw: str | None) -> int | None:
    return int(raw) if raw is not None and len(raw) <= 6 and raw.isascii() and raw.isdecimal() else None


def _done_notice(code: str | None, count: int | None, ignored: int | None) -> str | None:
    if code in MESSAGE_NOTICES:
        return MESSAGE_NOTICES[code]
    if code == "message-envoye" and count is not None:
        return f"Message envoyé à {count} personne(s)."
    if code in DECISION_DONE and count is not None:
        notice = f"{count} candidature(s) {DECISION_DONE[code]}"
        if ignored:
            notice += f", {ignored} ignorée(s) : leur statut ne le permet pas"
        return notice + "."
    return None


# Decisions confirmed first: (question, consequence, button).
DECISION_CONFIRMATIONS = {
    "refuser": ("Voulez-vous vraiment refuser {count} candidature(s) ?",
                "Chaque personne est prévenue par e-mail, avec le motif s'il est indiqué, et ne pourra plus candidater "
                "à cette mission.", "Confirmer le refus"),
    "terminer": ("Voulez-vous vraiment marquer {count} participation(s) comme réalisée(s) ?",
                 "Ces participations sont closes : elles ne pourront plus être refusées ni modifiées.",
                 "Confirmer : participations réalisées"),
}


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


def _ids(values: list[Any]) -> list[int]:
    """The row ids among a form's values (digits of another script are skipped); a file sent in their place is a
    malformed request, as none of our forms sends one."""
    if not all(isinstance(value, str) for value in values):
        raise ClientException
    return [int(value) for value in values
            if isinstance(value, str) and value.isascii() and value.isdecimal() and len(value) < 19]


class ApplyPages(Controller):
    path = "/missions/{mission_id:int}"
    include_in_schema = False

    @post("/candidater", guards=[signed_in], request_max_body_size=MAX_BODY)
    async def apply(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web) -> Redirect | Template:
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
        if outcome.outcome == "closed":
            elsewhere = await tracking.applied_elsewhere(web.engine, mission_id)  # a partner's mission?
            if elsewhere is not None:
                return elsewhere
        # A visitor a partner sent us (its click's cookie): the partner is credited with this application, once, by
        # a job (no SQL here).
        token = tracking.inbound_token(web.settings.secret_key.reveal(), request.cookies.get(tracking.CLICK_COOKIE))
        credited = token is not None and outcome.outcome in (Status.PENDING, Status.WAITLISTED) and (
            await web.enqueue_quietly(enqueue.credit_partner_click, token, mission_id))
        secure = web.settings.base_url.startswith("https://")
        return Redirect(f"/mon-espace/candidatures?mission={mission_id}&resultat={outcome.outcome}", status_code=303,
                        cookies=[tracking.forget(secure)] if credited else None)

    @get("/candidatures", guards=[privileged])
    async def applicants(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db,
                         fait: FromQuery[str | None] = None, nombre: FromQuery[str | None] = None,
                         ignorees: FromQuery[str | None] = None) -> Template:
        mission, applications = await service.of_mission(db, web.redis, mission_id, require_account(request).roles)
        counts: dict[str, int] = {}
        for application in applications:
            counts[application.status_label] = counts.get(application.status_label, 0) + 1
        decisions = {application.volunteer_id: service.decisions_for(application.status)
                     for application in applications}
        info = _done_notice(fait, _count(nombre), _count(ignorees))
        context = {"mission": mission, "applications": applications, "counts": counts, "info": info,
                   "decisions": decisions, "offered": {choice for allowed in decisions.values() for choice in allowed},
                   "sending": secrets.token_urlsafe(12),
                   "taken": await service.taken_places(web.places, web.engine, mission_id)}
        return Template("candidatures_mission.html", context=context, headers=PRIVATE)

    @post("/candidatures/decision", guards=[privileged], request_max_body_size=MAX_BODY)
    async def decide(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db
                     ) -> Template | Redirect:
        form = await request.form()
        decision = str(form.get("decision") or "")
        if decision not in service.DECISIONS:
            raise NotFoundException
        volunteer_ids = _ids(form.getall("volunteer", []))
        if decision in service.FINAL_DECISIONS and volunteer_ids and not confirmed(form):
            await service.require_manager(db, mission_id, require_account(request).roles)
            reason = decline_reason(form.get("reason"))  # a refused text gets its message now, not after confirming
            question, consequence, button = DECISION_CONFIRMATIONS[decision]
            listing = f"/missions/{mission_id}/candidatures"
            fields = (("decision", decision), ("reason", reason),
                      *(("volunteer", str(volunteer_id)) for volunteer_id in dict.fromkeys(volunteer_ids)))
            return confirmation_page(Confirmation(
                question=question.format(count=len(set(volunteer_ids))), consequence=consequence,
                action=f"{listing}/decision", button=button, back=(listing, "Revenir aux candidatures"),
                fields=fields,
            ))
        done, refused, drain = await service.decide(
            web.places, web.engine, db, mission_id, roles=require_account(request).roles, decision=decision,
            volunteer_ids=volunteer_ids, reason=form.get("reason") or "",  # checked there: a file is refused
        )
        if drain:
            await web.request_drain(enqueue.drain_applications)
        return Redirect(f"/missions/{mission_id}/candidatures?fait={decision}&nombre={done}&ignorees={refused}",
                        status_code=303)

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
            done = "message-vide"
        elif not SENDING.fullmatch(sending) or not await web.redis.set(
            f"renfort:applications:message-sent:{sending}", b"1", nx=True, ex=86_400
        ):
            done = "message-deja-parti"
        else:
            items = [(mission_id, volunteer_id, "application_message", f"message:{mission_id}:{volunteer_id}:{sending}",
                      body) for volunteer_id in recipients]
            await asyncio.to_thread(partial(enqueue.send_application_mails, web.rq_connection, items,
                                            sender_user_id=require_account(request).user_id))
            done = f"message-envoye&nombre={len(recipients)}"
        return Redirect(f"/missions/{mission_id}/candidatures?fait={done}", status_code=303)

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
    async def mine(self, request: Request[Any, Any, Any], web: Web, db: Db,
                   resultat: FromQuery[str | None] = None) -> Template:
        volunteer_id = await _volunteer_id(request, web)
        applications = [] if volunteer_id is None else await service.of_volunteer(db, web.redis, volunteer_id)
        context = {"applications": applications, "outcome": OUTCOME_MESSAGES.get(resultat or ""),
                   "outcome_kind": resultat, "volunteer": volunteer_id is not None}
        return Template("mes_candidatures.html", context=context, headers=PRIVATE)

    @get("/mon-espace/candidatures/{mission_id:int}/{action:str}", guards=[signed_in])
    async def confirm_cancel(self, request: Request[Any, Any, Any], mission_id: RowId, action: FromPath[str],
                             web: Web, db: Db) -> Template | Redirect:
        """The confirmation step before cancelling (or declining a proposal): a page, so it works without JavaScript."""
        if action != CANCEL:
            raise NotFoundException
        volunteer_id = await _volunteer_id(request, web)
        if volunteer_id is None:
            return Redirect("/mon-espace/candidatures?resultat=benevole", status_code=303)
        own = await service.own_application(db, web.redis, mission_id, volunteer_id)
        title = await service.mission_title(db, mission_id)
        if own is None or title is None or own.status not in CANCELLABLE:
            return Redirect("/mon-espace/candidatures?resultat=inchange", status_code=303)
        back = "/mon-espace/candidatures"
        if own.status == Status.PROPOSED:
            return confirmation_page(Confirmation(
                question=f"Voulez-vous vraiment décliner la mission « {title} » ?",
                consequence="La coordination la proposera à une autre personne.",
                action=f"/mon-espace/candidatures/{mission_id}/{CANCEL}", button="Oui, je décline",
                back=(back, "Non, revenir à mes candidatures")))
        return confirmation_page(Confirmation(
            question=f"Voulez-vous vraiment annuler votre candidature à « {title} » ?",
            consequence="Votre place est libérée pour une autre personne. Vous pourrez candidater à nouveau tant que "
                        "la mission reçoit des candidatures.",
            action=f"/mon-espace/candidatures/{mission_id}/{CANCEL}", button="Oui, annuler ma candidature",
            back=(back, "Non, garder ma candidature")))

    @post("/mon-espace/candidatures/{mission_id:int}/{action:str}", guards=[signed_in],
          request_max_body_size=MAX_BODY)
    async def answer(self, request: Request[Any, Any, Any], mission_id: RowId, action: FromPath[str],
                     web: Web) -> Redirect:
        """Cancel an application, or confirm a coordinator's proposal."""
        if action not in service.VOLUNTEER_ANSWERS:
            raise NotFoundException
        if action == CANCEL and not confirmed(await request.form()):
            return Redirect(f"/mon-espace/candidatures/{mission_id}/{CANCEL}", status_code=303)  # ask first
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

    @get("/{token:str}/etat", guards=[privileged])
    async def progress(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web,
                       db: Db) -> Response[exports.ExportProgress]:
        """The waiting page's poll: guarded like the page."""
        export = await _own_export(request, token, web, db)
        return Response(exports.progress(token, export), headers=PRIVATE)

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
