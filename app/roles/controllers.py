"""The administration page of roles, `/administration/roles`: who holds which role where, a form to grant one, a
"Retirer" button per scope, and the latest changes. Admins only (the guard re-reads the roles at each request)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import admin, require_account
from app.deps import Db
from app.formats import when
from app.roles import service
from app.roles.schemas import ACTION_LABELS, ROLE_LABELS, Actor, JournalEntry, Role
from app.roles.scopes import RoleInvalid, RoleRefused, describe, parse_role, parse_scope, requested_scope

PAGE = "/administration/roles"
MAX_BODY = 8_192
# The confirmations a redirect names by code: the address stays out of URLs (and so out of access logs).
DONE = {
    "attribue": "Le rôle est attribué. La personne peut dès maintenant demander un lien de connexion sur la page "
                "« Se connecter » avec cette adresse.",
    "deja": "Cette personne avait déjà ce rôle sur cette portée : rien n'a changé.",
    "retire": "Le rôle est retiré : il ne vaut plus dès la prochaine page que la personne ouvre.",
}
FORM_FIELDS = ("email", "role", "scope", "departments", "region")


def _what(entry: JournalEntry, departments: dict[str, str], regions: dict[str, str]) -> str:
    try:
        where = describe(parse_scope(entry.scope), departments, regions)
    except RoleInvalid:
        where = entry.scope
    role = ROLE_LABELS.get(entry.role, entry.role)
    return f"{ACTION_LABELS.get(entry.action, entry.action).capitalize()} du rôle {role} ({where})"


async def _page(db: AsyncSession, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
                done: str | None = None, refused: str | None = None, status: int = 200) -> Template:
    departments, regions = await service.place_names(db)
    holdings = await service.holders(db)
    entries = [
        {"at": when(entry.at), "actor": entry.actor,
         "subject": entry.subject or "compte supprimé", "what": _what(entry, departments, regions)}
        for entry in await service.journal(db)
    ]
    context = {
        "values": values or {"scope": "national"}, "errors": errors or {}, "done": done, "refused": refused,
        "roles": ROLE_LABELS, "regions": regions, "journal": entries,
        "holdings": {role.value: [holding for holding in holdings if holding.role is role] for role in Role},
        "describe": lambda scope: describe(scope, departments, regions),
    }
    return Template("administration_roles.html", context=context, status_code=status, headers=PRIVATE)


def _actor(request: Request[Any, Any, Any]) -> Actor:
    account = require_account(request)
    return Actor(user_id=account.user_id, label=account.email)


class RoleAdministrationPages(Controller):
    path = PAGE
    include_in_schema = False
    guards = [admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def show(self, db: Db, fait: FromQuery[str | None] = None) -> Template:
        return await _page(db, done=DONE.get(fait or ""))

    @post("/attribuer", request_max_body_size=MAX_BODY)
    async def grant(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        form = await request.form()
        values = {field: form.get(field) or "" for field in FORM_FIELDS}
        try:
            role = parse_role(values["role"])
            scope = requested_scope(values["scope"], departments=values["departments"], region=values["region"])
            change = await service.grant(db, actor=_actor(request), email=values["email"], role=role, scope=scope)
        except RoleRefused as refused:
            errors = {refused.field or "role": refused.message}
            return await _page(db, values=values, errors=errors, status=refused.status)
        return Redirect(f"{PAGE}?fait={'deja' if change is None else 'attribue'}", status_code=303)

    @post("/retirer", request_max_body_size=MAX_BODY)
    async def revoke(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        form = await request.form()
        try:
            role, scope = parse_role(form.get("role")), parse_scope(form.get("scope"))
            await service.revoke(db, actor=_actor(request), email=form.get("email"), role=role, scope=scope)
        except RoleRefused as refused:
            return await _page(db, refused=refused.message, status=refused.status)
        return Redirect(f"{PAGE}?fait=retire", status_code=303)
