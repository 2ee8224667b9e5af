"""The referents' follow-up of the SNU (`/snu/referent`): per cohort and department, what waits for them and for the
young people, reminders by e-mail and the CSV export, both done by workers."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import moderator, require_account, require_current_account
from app.accounts.schemas import Roles
from app.applications import exports
from app.deps import Db, Web
from app.geo.models import Department
from app.volunteers import age
from app.youth import agreements, cohorts, dashboard
from app.youth import export as youth_export
from app.youth.cohorts import CohortNotFound, CohortView
from app.youth.models import AgreementParty, YoungPerson, YouthOffer
from app.youth.pages import MAX_BODY, error_page, form_values
from queues import enqueue

HOME = "/snu/referent"
DONE = {"relances": "Relances demandées : les e-mails partent dans quelques minutes, une fois par jour au plus pour "
                    "chaque personne."}
SIGN_LINK_SECONDS = 3600  # a link on the page, minted at each view
OUT_OF_SCOPE = "Vous n'êtes pas référent·e de ce département : son suivi ne vous est pas ouvert."


async def _departments(session: AsyncSession, roles: Roles) -> list[tuple[str, str]]:
    """The departments a referent follows: theirs, or for national referents and administrators every department
    that has young people or offers."""
    if roles.admin or roles.national_referent:
        codes = union(select(YoungPerson.department_code), select(YouthOffer.department_code)).subquery()
        query = select(Department.code, Department.name).where(Department.code.in_(select(codes.c[0])))
    else:
        query = select(Department.code, Department.name).where(Department.code.in_(roles.referent_departments))
    return [(code, name) for code, name in await session.execute(query.order_by(Department.code))]


def _scope(values: dict[str, Any], cohort_list: list[CohortView], departments: list[tuple[str, str]],
           roles: Roles) -> tuple[CohortView | None, str | None]:
    """The cohort and department asked for, else the first of each; a department out of scope gives None."""
    raw_cohort = str(values.get("cohorte") or "")
    cohort = next((item for item in cohort_list if str(item.id) == raw_cohort), None)
    cohort = cohort or (cohort_list[0] if cohort_list else None)
    code = str(values.get("departement") or "").strip().upper()[:3]
    if not code:
        return cohort, departments[0][0] if departments else None
    return cohort, code if roles.moderates(code) and any(code == known for known, _ in departments) else None


class ReferentPages(Controller):
    path = HOME
    guards = [moderator]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: Db, web: Web, fait: FromQuery[str | None] = None,
                    cohorte: FromQuery[str | None] = None, departement: FromQuery[str | None] = None) -> Template:
        account = await require_current_account(request)
        cohort_list = await cohorts.list_cohorts(db)
        departments = await _departments(db, account.roles)
        cohort, code = _scope({"cohorte": cohorte, "departement": departement}, cohort_list, departments,
                              account.roles)
        if departement and code is None:
            return error_page(404, OUT_OF_SCOPE, action=(HOME, "Revenir au suivi"))
        board, sign_links = None, {}
        if cohort is not None and code is not None:
            deadline = await cohorts.deadline_of(db, cohort.id, code)
            board = await dashboard.dashboard(db, cohort_id=cohort.id, department_code=code, deadline=deadline,
                                              today=age.today())
            # The department's referents sign each agreement from here (no e-mail per agreement).
            expires_at = int(time.time()) + SIGN_LINK_SECONDS
            sign_links = {row.agreement_id: agreements.signature_url("", web.settings.secret_key.reveal(),
                                                                     row.agreement_id, AgreementParty.REFERENT,
                                                                     expires_at)
                          for row in board.awaiting_signature.rows
                          if row.agreement_id is not None and AgreementParty.REFERENT in row.unsigned}
        context = {"cohorts": cohort_list, "departments": departments, "cohort": cohort, "department": code,
                   "board": board, "done": DONE.get(fait or ""), "party_labels": dashboard.PARTY_LABELS,
                   "limit": dashboard.LIST_LIMIT, "sign_links": sign_links}
        return Template("youth/referent.html", context=context, headers=PRIVATE)

    async def _checked(self, request: Request[Any, Any, Any], db: AsyncSession) -> tuple[int, str, Roles] | Template:
        account = await require_current_account(request)
        values = form_values(await request.form())
        cohort_list = await cohorts.list_cohorts(db)
        departments = await _departments(db, account.roles)
        raw_cohort = str(values.get("cohorte") or "")
        cohort = next((item for item in cohort_list if str(item.id) == raw_cohort), None)
        _, code = _scope(values, cohort_list, departments, account.roles)
        if cohort is None or code is None or not values.get("departement"):
            return error_page(404, OUT_OF_SCOPE, action=(HOME, "Revenir au suivi"))
        return cohort.id, code, account.roles

    @post("/relances", request_max_body_size=MAX_BODY)
    async def remind(self, request: Request[Any, Any, Any], db: Db, web: Web) -> Redirect | Template:
        checked = await self._checked(request, db)
        if isinstance(checked, Template):
            return checked
        cohort_id, code, _ = checked
        await asyncio.to_thread(partial(enqueue.send_youth_reminders, web.rq_connection, cohort_id, code))
        return Redirect(f"{HOME}?cohorte={cohort_id}&departement={code}&fait=relances", status_code=303)

    @post("/exports", request_max_body_size=MAX_BODY)
    async def export(self, request: Request[Any, Any, Any], db: Db, web: Web) -> Redirect | Template:
        checked = await self._checked(request, db)
        if isinstance(checked, Template):
            return checked
        cohort_id, code, _ = checked
        token = exports.new_token()
        await exports.register_request(web.redis, token, exports.ExportRequest(
            require_account(request).user_id, 0, kind=exports.YOUTH, cohort_id=cohort_id, department_code=code))
        await asyncio.to_thread(enqueue.export_youth, web.rq_connection, token)
        return Redirect(f"{HOME}/exports/{token}", status_code=303)

    async def _own_export(self, request: Request[Any, Any, Any], token: str, web: Any) -> exports.ExportRequest:
        """The requester's export, while they are still referent of its department."""
        account = await require_current_account(request)
        export = await exports.find(web.redis, token, account.user_id, exports.YOUTH)
        if not account.roles.moderates(export.department_code):
            raise exports.ExportMissing
        return export

    @get("/exports/{token:str}")
    async def export_status(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web) -> Template:
        export = await self._own_export(request, token, web)
        context = {"export": export, "token": token, "download": exports.DOWNLOADS[exports.YOUTH].format(token=token),
                   "back": f"{HOME}?cohorte={export.cohort_id}&departement={export.department_code}"}
        return Template("youth/export.html", context=context, headers=PRIVATE)

    @get("/exports/{token:str}/etat")
    async def export_progress(self, request: Request[Any, Any, Any], token: FromPath[str],
                              web: Web) -> Response[exports.ExportProgress]:
        export = await self._own_export(request, token, web)
        return Response(exports.progress(token, export), headers=PRIVATE)

    @get("/exports/{token:str}/jeunes.csv")
    async def export_download(self, request: Request[Any, Any, Any], token: FromPath[str], web: Web,
                              db: Db) -> Response[bytes]:
        export = await self._own_export(request, token, web)
        if export.status != "ready":
            raise exports.ExportMissing
        try:
            name = (await cohorts.get_cohort(db, export.cohort_id)).name
        except CohortNotFound:
            name = "cohorte"
        filename = youth_export.filename(name, export.department_code)
        return Response(await exports.content(web.redis, token), media_type="text/csv; charset=utf-8",
                        headers={**PRIVATE, "Content-Disposition": f'attachment; filename="{filename}"'})
