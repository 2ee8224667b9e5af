"""The SNU allocation pages (`/snu/referent/affectations`): per cohort and department, the choice deadline and the
launch of a run; a run's state, its preview (placed by rank, young people with their mission, the unplaced with the
reason, the offers' fill), the referent's adjustments, the confirmation and the discard. Open to the department's
referents, national referents and coordinators, and administrators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import RoleRequired, require_current_account
from app.accounts.schemas import Roles
from app.deps import Db
from app.geo.models import Department
from app.http import RowId
from app.legal.consent import check_terms
from app.missions.models import Mission
from app.volunteers import age
from app.youth import allocation_runs as runs
from app.youth import cohorts
from app.youth.cohorts import CohortView
from app.youth.models import AllocationStatus, YoungPerson, YouthAllocation, YouthOffer
from app.youth.pages import MAX_BODY, error_page, form_values
from app.youth.validation import DEPARTMENT
from surge.youth.allocation import CHOICE_LABELS, UNPLACED_LABELS, AdjustmentError, Move, Unassign

HOME = "/snu/referent/affectations"
OUT_OF_SCOPE = "Vous n'êtes pas référent·e de ce département : ses affectations ne vous sont pas ouvertes."
MISSING = "Cette affectation n'existe pas, ou concerne un département dont vous n'êtes pas référent·e."
DONE = {
    "ajustee": "Modification enregistrée : le plan n'est plus garanti optimal.",
    "confirmee": "Affectation confirmée : les contrats d'engagement sont ouverts et les e-mails partent dans "
                 "quelques minutes.",
    "deja-confirmee": "Cette affectation était déjà confirmée : rien n'a été refait.",
    "abandonnee": "Affectation abandonnée : aucune place n'a été attribuée.",
}
ORDINALS = {1: "1er", 2: "2e", 3: "3e", 4: "4e", 5: "5e"}


def may_allocate(roles: Roles, department_code: str | None) -> bool:
    """The department's referents (national ones included), national coordinators and administrators."""
    return roles.national_coordinator or roles.moderates(department_code)


async def allocator(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    account = await require_current_account(connection)
    await check_terms(connection, account)
    if not (account.roles.moderator or account.roles.national_coordinator):
        raise RoleRequired


async def _departments(session: AsyncSession, roles: Roles) -> list[tuple[str, str]]:
    """Theirs, or for those who act everywhere every department that has young people."""
    query = select(Department.code, Department.name)
    if roles.admin or roles.national_referent or roles.national_coordinator:
        query = query.where(Department.code.in_(select(YoungPerson.department_code).distinct()))
    else:
        query = query.where(Department.code.in_(roles.referent_departments))
    return [(code, name) for code, name in await session.execute(query.order_by(Department.code))]


def _id(raw: object) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isascii() and text.isdecimal() and 0 < len(text) < 19 and int(text) > 0 else None


class RunProgress(msgspec.Struct, frozen=True):
    """What the run's page polls while the job solves it (templates/static/waiting.js)."""

    done: bool
    message: str
    status: str


def _handlers() -> dict[int | type[Exception], Callable[[Request[Any, Any, Any], Any], Response[Any]]]:
    back = (HOME, "Revenir aux affectations")
    return {
        runs.RunMissing: lambda request, error: error_page(404, MISSING, back),
        runs.RunRefused: lambda request, error: error_page(409, error.message, back),
    }


async def _run_in_scope(session: AsyncSession, roles: Roles, run_id: int, *, for_update: bool = False
                        ) -> YouthAllocation:
    run = await runs.get_run(session, run_id, for_update=for_update)
    if not may_allocate(roles, run.department_code):
        raise runs.RunMissing  # another department's run: as if it did not exist
    return run


async def _preview_context(session: AsyncSession, run: YouthAllocation) -> dict[str, Any]:
    plan = run.plan or {}
    young_ids = [int(y) for y in plan.get("order", [])]
    names = {i: f"{first} {last}" for i, first, last in await session.execute(
        select(YoungPerson.id, YoungPerson.first_name, YoungPerson.last_name).where(YoungPerson.id.in_(young_ids))
    )} if young_ids else {}
    offer_ids = sorted({int(f["offer_id"]) for f in plan.get("fills", [])}
                       | {int(e["offer_id"]) for e in plan.get("excluded", [])})
    offers = {row.id: row for row in await session.execute(
        select(YouthOffer.id, Mission.title, YouthOffer.start_date, YouthOffer.end_date)
        .join(Mission, Mission.id == YouthOffer.mission_id).where(YouthOffer.id.in_(offer_ids))
    )} if offer_ids else {}
    profile = plan.get("rank_profile", [])
    return {
        "plan": plan,
        "names": names,
        "offers": offers,
        "profile": [(ORDINALS[rank], count) for rank, count in enumerate(profile, start=1)],
        "ordinals": ORDINALS,
        "unplaced_labels": UNPLACED_LABELS,
        "choice_labels": CHOICE_LABELS,
        "eligible": {int(y): sorted(((int(o), int(r)) for o, r in choices.items()), key=lambda pair: pair[1])
                     for y, choices in plan.get("eligible", {}).items()},
        "placed_on": {int(a["young_id"]): int(a["offer_id"]) for a in plan.get("assignments", [])},
    }


class AllocationPages(Controller):
    path = HOME
    guards = [allocator]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False
    exception_handlers = _handlers()

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: Db, cohorte: FromQuery[str | None] = None,
                    departement: FromQuery[str | None] = None) -> Template:
        roles = (await require_current_account(request)).roles
        cohort_list = await cohorts.list_cohorts(db)
        departments = await _departments(db, roles)
        cohort_id = _id(cohorte)
        cohort: CohortView | None = next((c for c in cohort_list if c.id == cohort_id), None) \
            or (cohort_list[0] if cohort_list else None)
        code = str(departement or "").strip().upper()[:3] or (departments[0][0] if departments else "")
        if departement and not (may_allocate(roles, code) and any(code == known for known, _ in departments)):
            return error_page(404, OUT_OF_SCOPE, action=(HOME, "Revenir aux affectations"))
        context: dict[str, Any] = {"cohorts": cohort_list, "departments": departments, "cohort": cohort,
                                   "department": code or None, "runs": [], "deadline": None, "refusal": None,
                                   "labels": runs.STATUS_LABELS}
        if cohort is not None and code:
            deadline = await cohorts.deadline_of(db, cohort.id, code)
            context.update(deadline=deadline, refusal=runs.start_refusal(deadline, age.today()),
                           runs=await runs.runs_of(db, cohort.id, code))
        return Template("youth/affectations.html", context=context, headers=PRIVATE)

    @post("/", request_max_body_size=MAX_BODY)
    async def start(self, request: Request[Any, Any, Any], db: Db) -> Redirect | Template:
        account = await require_current_account(request)
        values = form_values(await request.form())
        cohort_id = _id(values.get("cohorte"))
        code = str(values.get("departement") or "").strip().upper()[:3]
        if cohort_id is None or cohort_id not in {c.id for c in await cohorts.list_cohorts(db)}:
            return error_page(404, "Cette cohorte n'existe pas ou plus.", action=(HOME, "Revenir aux affectations"))
        known = DEPARTMENT.match(code) and await db.get(Department, code) is not None
        if not known or not may_allocate(account.roles, code):
            return error_page(404, OUT_OF_SCOPE, action=(HOME, "Revenir aux affectations"))
        run_id = await runs.start_run(db, cohort_id=cohort_id, department_code=code, requested_by=account.user_id,
                                      today=age.today())
        return Redirect(f"{HOME}/{run_id}", status_code=303)

    async def _run_page(self, db: AsyncSession, run: YouthAllocation, *, info: str | None = None,
                        error: str | None = None, status: int = 200) -> Template:
        cohort = await cohorts.get_cohort(db, run.cohort_id)
        context = {"run": run, "cohort": cohort, "label": runs.STATUS_LABELS[AllocationStatus(run.status)],
                   "waiting": runs.WAITING if run.status == AllocationStatus.RUNNING else None,
                   "info": info, "error": error, "home": HOME, **await _preview_context(db, run)}
        return Template("youth/affectation.html", context=context, status_code=status, headers=PRIVATE)

    @get("/{run_id:int}")
    async def run_page(self, request: Request[Any, Any, Any], run_id: RowId, db: Db,
                       fait: FromQuery[str | None] = None) -> Template:
        run = await _run_in_scope(db, (await require_current_account(request)).roles, run_id)
        return await self._run_page(db, run, info=DONE.get(fait or ""))

    @get("/{run_id:int}/etat")
    async def progress(self, request: Request[Any, Any, Any], run_id: RowId, db: Db) -> Response[RunProgress]:
        run = await _run_in_scope(db, (await require_current_account(request)).roles, run_id)
        label = runs.STATUS_LABELS[AllocationStatus(run.status)]
        running = run.status == AllocationStatus.RUNNING
        return Response(RunProgress(done=not running, message=runs.WAITING if running else f"{label}.",
                                    status=run.status), headers=PRIVATE)

    @post("/{run_id:int}/ajuster", request_max_body_size=MAX_BODY)
    async def adjust(self, request: Request[Any, Any, Any], run_id: RowId, db: Db) -> Redirect | Template:
        roles = (await require_current_account(request)).roles
        values = form_values(await request.form())
        run = await _run_in_scope(db, roles, run_id, for_update=True)
        young_id = _id(values.get("young_id"))
        raw_offer = str(values.get("offer_id") or "").strip()
        offer_id = _id(raw_offer)
        if young_id is None or (raw_offer and offer_id is None):
            return await self._run_page(db, run, error="Choisissez un ou une jeune du plan et une de ses missions.",
                                        status=400)
        change: Move | Unassign = Move(young_id, offer_id) if offer_id is not None else Unassign(young_id)
        try:
            async with db.begin_nested():
                await runs.adjust_run(db, run_id, change)
        except AdjustmentError as refused:
            return await self._run_page(db, run, error=str(refused), status=422)
        return Redirect(f"{HOME}/{run_id}?fait=ajustee", status_code=303)

    @post("/{run_id:int}/confirmer", request_max_body_size=MAX_BODY)
    async def confirm(self, request: Request[Any, Any, Any], run_id: RowId, db: Db) -> Redirect:
        account = await require_current_account(request)
        await _run_in_scope(db, account.roles, run_id, for_update=True)
        confirmed = await runs.confirm_run(db, run_id, confirmed_by=account.user_id)
        return Redirect(f"{HOME}/{run_id}?fait={'confirmee' if confirmed.done_now else 'deja-confirmee'}",
                        status_code=303)

    @post("/{run_id:int}/abandonner", request_max_body_size=MAX_BODY)
    async def discard(self, request: Request[Any, Any, Any], run_id: RowId, db: Db) -> Redirect:
        roles = (await require_current_account(request)).roles
        await _run_in_scope(db, roles, run_id, for_update=True)
        await runs.discard_run(db, run_id)
        return Redirect(f"{HOME}/{run_id}?fait=abandonnee", status_code=303)
