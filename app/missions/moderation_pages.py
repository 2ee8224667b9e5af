"""The referents' mission queue (`/moderation/missions`) and the mission templates (`/modeles-missions`): written by
admins and coordinators, validated by admins and national referents."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy import select

from app.accounts.controllers import PRIVATE
from app.accounts.guards import RoleRequired, moderator, require_account, require_current_account
from app.deps import Db
from app.http import RowId
from app.legal.consent import check_terms
from app.missions import moderation, templates
from app.missions.validation import TEXT_FIELDS, MissionInvalid
from app.reference import DOMAINS
from surge.emergencies.models import Emergency

MAX_BODY = 32_768
TEMPLATES = "/modeles-missions"


async def template_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admins and coordinators, with their roles as PostgreSQL holds them now."""
    account = await require_current_account(connection)
    await check_terms(connection, account)
    if not templates.editor(account.roles):
        raise RoleRequired


async def template_reader(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The editors, and the national referents who validate (roles as PostgreSQL holds them now)."""
    account = await require_current_account(connection)
    await check_terms(connection, account)
    roles = account.roles
    if not (templates.editor(roles) or templates.reviewer(roles)):
        raise RoleRequired


class MissionModerationPages(Controller):
    path = "/moderation/missions"
    include_in_schema = False
    guards = [moderator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def queue(self, request: Request[Any, Any, Any], db: Db) -> Template:
        queue = await moderation.queue(db, require_account(request).roles)
        slugs = {item.mission.emergency_slug for items in queue.values() for item in items} - {None}
        titles = dict((await db.execute(select(Emergency.slug, Emergency.title)
                                        .where(Emergency.slug.in_(slugs)))).all()) if slugs else {}
        return Template("moderation_missions.html", context={"queue": queue, "emergency_titles": titles},
                        headers=PRIVATE)

    @post("/{mission_id:int}/{decision:str}", request_max_body_size=MAX_BODY)
    async def decide(self, request: Request[Any, Any, Any], mission_id: RowId, decision: FromPath[str],
                     db: Db) -> Redirect:
        action = moderation.DECISIONS.get(decision)
        if action is None:
            raise NotFoundException
        form = await request.form()
        await moderation.decide(db, mission_id, action=action, reason=form.get("reason"),
                                read_version=form.get("version"), account=require_account(request))
        return Redirect("/moderation/missions", status_code=303)


def _form(values: dict[str, Any], errors: dict[str, str], action: str, status: int = 200) -> Template:
    context = {"values": values, "errors": errors, "action": action, "domains": DOMAINS}
    return Template("modele_form.html", context=context, status_code=status, headers=PRIVATE)


async def _values(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    values = {field: form.get(field) or "" for field in TEXT_FIELDS}
    values["activities"] = form.getall("activities", [])  # one checkbox per chosen activity
    return values


class MissionTemplatePages(Controller):
    """One guard per handler, so that each request reads the roles once."""

    path = TEMPLATES
    include_in_schema = False

    @get("/", guards=[template_reader])
    async def index(self, request: Request[Any, Any, Any], db: Db) -> Template:
        account = require_account(request)
        context = {"templates": await templates.listing(db), "roles": account.roles, "user_id": account.user_id,
                   "editor": templates.editor(account.roles)}
        return Template("modeles_missions.html", context=context, headers=PRIVATE)

    @get("/nouveau", guards=[template_editor])
    async def new(self) -> Template:
        return _form({}, {}, f"{TEMPLATES}/nouveau")

    @post("/nouveau", guards=[template_editor], request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        values = await _values(request)
        try:
            await templates.create(db, values, user_id=require_account(request).user_id)
        except MissionInvalid as invalid:
            return _form(values, invalid.errors, f"{TEMPLATES}/nouveau", 422)
        return Redirect(TEMPLATES, status_code=303)

    @get("/{template_id:int}/modifier", guards=[template_editor])
    async def edit(self, template_id: RowId, db: Db) -> Template:
        template = await templates.get(db, template_id)
        return _form(templates.form_values(template), {}, f"{TEMPLATES}/{template_id}/modifier")

    @post("/{template_id:int}/modifier", guards=[template_editor], request_max_body_size=MAX_BODY)
    async def save(self, request: Request[Any, Any, Any], template_id: RowId, db: Db) -> Template | Redirect:
        values = await _values(request)
        try:
            await templates.edit(db, template_id, values, user_id=require_account(request).user_id)
        except MissionInvalid as invalid:
            return _form(values, invalid.errors, f"{TEMPLATES}/{template_id}/modifier", 422)
        return Redirect(TEMPLATES, status_code=303)

    @post("/{template_id:int}/{decision:str}", guards=[template_reader])
    async def decide(self, request: Request[Any, Any, Any], template_id: RowId, decision: FromPath[str],
                     db: Db) -> Redirect:
        action = templates.ACTIONS.get(decision)
        if action is None:
            raise NotFoundException
        account = require_account(request)
        await templates.transition(db, template_id, action, roles=account.roles, user_id=account.user_id)
        return Redirect(TEMPLATES, status_code=303)
