"""The SNU's administration: cohorts (`/administration/snu/sejours`, administrators and national coordinators) and
the referents' invitations of young people (`/snu/referent/invitations`, referents of the department)."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import RoleRequired, moderator, require_current_account
from app.deps import Db
from app.geo.models import Department
from app.legal.consent import check_terms
from app.text_rules import TextFields, TextRefused
from app.volunteers.validation import _name, parse_email
from app.youth import cohorts, service
from app.youth.cohorts import CohortNotFound, CohortView
from app.youth.pages import MAX_BODY, error_page, form_values
from app.youth.validation import DEPARTMENT, YouthInvalid, validate_cohort

ADMIN = "/administration/snu/sejours"
DONE = {"enregistree": "Cohorte enregistrée."}
NOT_FOUND = "Cette cohorte n'existe pas ou plus."


async def cohort_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Administrators and national coordinators, with their roles as PostgreSQL holds them now."""
    account = await require_current_account(connection)
    await check_terms(connection, account)
    if not (account.roles.admin or account.roles.national_coordinator):
        raise RoleRequired


def _day(value: date) -> str:
    return value.isoformat()


def _values_of(cohort: CohortView) -> dict[str, Any]:
    return {"name": cohort.name, "stay_start": _day(cohort.stay_start), "stay_end": _day(cohort.stay_end),
            "missions_start": _day(cohort.missions_start), "missions_end": _day(cohort.missions_end),
            "open_for_signup": cohort.open_for_signup,
            "deadlines": "\n".join(f"{code} : {day:%d/%m/%Y}" for code, _, day in cohort.deadlines)}


def _form(action: str, values: dict[str, Any], errors: dict[str, str], cohort: CohortView | None = None,
          status: int = 200) -> Template:
    context = {"action": action, "values": values, "errors": errors, "cohort": cohort}
    return Template("youth/sejour_form.html", context=context, status_code=status, headers=PRIVATE)


class CohortAdministrationPages(Controller):
    path = ADMIN
    guards = [cohort_editor]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False

    @get("/")
    async def index(self, db: Db, fait: FromQuery[str | None] = None) -> Template:
        context = {"cohorts": await cohorts.list_cohorts(db), "done": DONE.get(fait or "")}
        return Template("youth/sejours.html", context=context, headers=PRIVATE)

    @get("/nouvelle")
    async def new_form(self) -> Template:
        return _form(f"{ADMIN}/nouvelle", {}, {})

    @post("/nouvelle", request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Redirect | Template:
        values = form_values(await request.form())
        try:
            await cohorts.save_cohort(db, validate_cohort(values))
        except YouthInvalid as invalid:
            return _form(f"{ADMIN}/nouvelle", values, invalid.errors, status=422)
        return Redirect(f"{ADMIN}?fait=enregistree", status_code=303)

    @get("/{cohort_id:int}")
    async def edit_form(self, cohort_id: int, db: Db) -> Template:
        try:
            cohort = await cohorts.get_cohort(db, cohort_id)
        except CohortNotFound:
            return error_page(404, NOT_FOUND, action=(ADMIN, "Voir les cohortes"))
        return _form(f"{ADMIN}/{cohort_id}", _values_of(cohort), {}, cohort)

    @post("/{cohort_id:int}", request_max_body_size=MAX_BODY)
    async def update(self, cohort_id: int, request: Request[Any, Any, Any], db: Db) -> Redirect | Template:
        values = form_values(await request.form())
        try:
            cohort = await cohorts.get_cohort(db, cohort_id)
            await cohorts.save_cohort(db, validate_cohort(values), cohort_id)
        except CohortNotFound:
            return error_page(404, NOT_FOUND, action=(ADMIN, "Voir les cohortes"))
        except YouthInvalid as invalid:
            return _form(f"{ADMIN}/{cohort_id}", values, invalid.errors, cohort, status=422)
        return Redirect(f"{ADMIN}?fait=enregistree", status_code=303)


INVITATIONS = "/snu/referent/invitations"


class ReferentInvitationPages(Controller):
    """A referent invites a young person of a department they moderate into a cohort. The page answers the same
    whether the address has an account or not: the e-mail says the rest."""

    path = INVITATIONS
    guards = [moderator]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False

    async def _page(self, db: Any, values: dict[str, Any], errors: dict[str, str], *, sent: bool = False,
                    status: int = 200) -> Template:
        context = {"values": values, "errors": errors, "sent": sent, "cohorts": await cohorts.list_cohorts(db)}
        return Template("youth/invitations.html", context=context, status_code=status, headers=PRIVATE)

    @get("/")
    async def form(self, db: Db) -> Template:
        return await self._page(db, {}, {})

    @post("/", request_max_body_size=MAX_BODY)
    async def invite(self, request: Request[Any, Any, Any], db: Db) -> Template:
        account = await require_current_account(request)
        values = form_values(await request.form())
        errors: dict[str, str] = {}
        fields = TextFields(values)
        first_name = _name(fields, "first_name", errors)
        last_name = _name(fields, "last_name", errors)
        email = normalized = ""
        try:
            email, normalized = parse_email(values.get("email"))
        except TextRefused as refused:
            errors["email"] = refused.message
        department = fields.text("department_code", "Département", 8).upper()
        department = department.zfill(2) if department.isdecimal() and len(department) == 1 else department
        if not DEPARTMENT.match(department):
            errors["department_code"] = "Indiquez le numéro du département du ou de la jeune, par exemple 69 ou 2A."
        elif await db.get(Department, department) is None:
            errors["department_code"] = f"Département inconnu : {department}. Écrivez son numéro, par exemple 69 ou 2A."
        elif not account.roles.moderates(department):
            errors["department_code"] = "Vous n'êtes pas référent·e de ce département : vous ne pouvez y inviter " \
                                        "personne."
        raw_cohort = str(values.get("cohort_id") or "")
        cohort_ids = {cohort.id for cohort in await cohorts.list_cohorts(db)}
        cohort_id = int(raw_cohort) if raw_cohort.isdecimal() and len(raw_cohort) < 18 else 0
        if cohort_id not in cohort_ids:
            errors["cohort_id"] = "Choisissez la cohorte."
        errors.update(fields.refused)
        if errors:
            return await self._page(db, values, errors, status=422)
        await service.create_invitation(db, cohort_id=cohort_id, department_code=department, email=email,
                                        email_normalized=normalized, first_name=first_name, last_name=last_name,
                                        invited_by=account.user_id)
        return await self._page(db, {"cohort_id": raw_cohort, "department_code": department}, {}, sent=True)
