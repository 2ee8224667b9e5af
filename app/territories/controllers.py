"""Territory pages (`/departements/{code}`, `/villes/{insee}`), the city page editor of local authorities
(`/villes/{insee}/modifier`), its moderation queue (`/moderation/territoires`) and the organisations directory
(`/organisations`)."""

from __future__ import annotations

import re
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import moderator, privileged, require_account
from app.accounts.sessions import current_account
from app.deps import Db, Web
from app.missions import search
from app.missions.schemas import MissionPage
from app.missions.validation import MissionInvalid
from app.organisations.validation import TYPE_LABELS
from app.territories import directory, figures, service
from app.territories.service import CityPageInvalid, CityPageRefused

DEPARTMENT = re.compile(r"0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-8]|98[4-9]")
COMMUNE = re.compile(r"[0-9][0-9AB][0-9]{3}")
MISSIONS_SHOWN = 10
COMMUNE_RADIUS_KM = 20  # one of search.RADII_KM
MAX_BODY = 32_768
NOTICES = {"soumise": "Votre page est envoyée aux référent·es du département : elle sera en ligne une fois validée.",
           "decidee": "Votre décision est enregistrée."}


def _error(request: Request[Any, Any, Any], status: int, message: str,
           action: tuple[str, str] | None = None) -> Template:
    signed_in = current_account(request) is not None
    context = {"status": status, "message": message, "action": action, "errors": {}, "back": None,
               "signed_in": signed_in, "signup": False}
    return Template("error.html", context=context, status_code=status, headers=PRIVATE)


def _code(raw: str, pattern: re.Pattern[str]) -> str:
    """The code as the geography spells it (2A, not 2a); anything else is a 404 before any SQL."""
    code = raw.strip().upper()
    if len(code) > 5 or not pattern.fullmatch(code):
        raise NotFoundException
    return code


async def _missions(db: Db, web: Web, query: search.SearchQuery) -> MissionPage | None:
    try:
        return await search.search(db, web.redis, query)
    except MissionInvalid:  # a commune without town-hall coordinates: no search around it
        return None


class TerritoryPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/departements/{code:str}")
    async def department(self, request: Request[Any, Any, Any], code: FromPath[str], web: Web,
                         db: Db) -> Template | Redirect:
        normalised = _code(code, DEPARTMENT)
        if normalised != code:
            return Redirect(f"/departements/{normalised}", status_code=301)
        view = await figures.department(db, web.redis, normalised)
        if view is None:
            return _error(request, 404, "Ce département n'existe pas : vérifiez son numéro, par exemple 69 ou 2A.")
        missions = await _missions(db, web, search.SearchQuery(department=normalised, per_page=MISSIONS_SHOWN,
                                                               sort="priority"))
        context = {"view": view, "missions": missions, "missions_link": f"/missions?department={normalised}"}
        return Template("departement.html", context=context)

    @get("/villes/{insee:str}")
    async def city(self, request: Request[Any, Any, Any], insee: FromPath[str], web: Web,
                   db: Db) -> Template | Redirect:
        normalised = _code(insee, COMMUNE)
        if normalised != insee:
            return Redirect(f"/villes/{normalised}", status_code=301)
        view = await figures.commune(db, web.redis, normalised)
        if view is None:
            return _error(request, 404, "Cette commune n'existe pas : vérifiez son code INSEE, par exemple 69123.")
        missions = await _missions(db, web, search.SearchQuery(commune_code=normalised,
                                                               radius_km=COMMUNE_RADIUS_KM, per_page=MISSIONS_SHOWN))
        account = current_account(request)
        editor = account is not None and any(account.roles.manages(i) for i in view.authorities)
        context = {"view": view, "missions": missions, "radius": COMMUNE_RADIUS_KM, "editor": editor,
                   "missions_link": f"/missions?commune_code={normalised}&radius_km={COMMUNE_RADIUS_KM}"}
        return Template("ville.html", context=context)

    @get("/villes/{insee:str}/modifier", guards=[privileged])
    async def edit(self, request: Request[Any, Any, Any], insee: FromPath[str], db: Db,
                   info: str | None = None) -> Template:
        code = _code(insee, COMMUNE)
        try:
            editor = await service.editor(db, code, require_account(request))
        except CityPageRefused as refused:
            return _error(request, refused.status, refused.message)
        page = editor.page
        values = {"text": page.proposed_text if page else "",
                  "missions": [str(i) for i in page.proposed_mission_ids] if page else []}
        return _editor(editor, values, {}, NOTICES.get(info or ""))

    @post("/villes/{insee:str}/modifier", guards=[privileged], request_max_body_size=MAX_BODY)
    async def save(self, request: Request[Any, Any, Any], insee: FromPath[str], db: Db) -> Template | Redirect:
        code = _code(insee, COMMUNE)
        form = await request.form()
        chosen = [str(value) for value in form.getall("missions", [])]
        account = require_account(request)
        try:
            await service.propose(db, code, account, text=form.get("text"), mission_ids=chosen)
        except CityPageRefused as refused:
            return _error(request, refused.status, refused.message)
        except CityPageInvalid as invalid:
            editor = await service.editor(db, code, account)
            return _editor(editor, {"text": form.get("text") or "", "missions": chosen}, invalid.errors, None, 400)
        return Redirect(f"/villes/{code}/modifier?info=soumise", status_code=303)


def _editor(editor: service.Editor, values: dict[str, Any], errors: dict[str, str], notice: str | None,
            status: int = 200) -> Template:
    context = {"editor": editor, "values": values, "errors": errors, "notice": notice,
               "review_labels": service.REVIEW_LABELS, "max_promoted": figures.PROMOTED_MAX,
               "text_length": service.TEXT_LENGTH}
    return Template("territoire_modifier.html", context=context, status_code=status, headers=PRIVATE)


class CityPageModeration(Controller):
    path = "/moderation/territoires"
    include_in_schema = False
    guards = [moderator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def queue(self, request: Request[Any, Any, Any], db: Db, info: str | None = None) -> Template:
        waiting = await service.queue(db, require_account(request).roles)
        return Template("territoire_moderation.html", headers=PRIVATE,
                        context={"waiting": waiting, "notice": NOTICES.get(info or ""), "errors": {}})

    @post("/{insee:str}/{decision:str}", request_max_body_size=MAX_BODY)
    async def decide(self, request: Request[Any, Any, Any], insee: FromPath[str], decision: FromPath[str],
                     db: Db) -> Template | Redirect:
        code, action = _code(insee, COMMUNE), service.DECISIONS.get(decision)
        if action is None:
            raise NotFoundException
        form = await request.form()
        back = ("/moderation/territoires", "Revenir à la modération des pages")
        try:
            await service.decide(db, code, action=action, reason=form.get("reason"), read_version=form.get("version"),
                                 account=require_account(request))
        except CityPageRefused as refused:
            return _error(request, refused.status, refused.message, back)
        except CityPageInvalid as invalid:
            return _error(request, 400, next(iter(invalid.errors.values())), back)
        return Redirect("/moderation/territoires?info=decidee", status_code=303)


class OrganisationDirectory(Controller):
    path = "/organisations"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        params = {key: request.query_params.get(key) or "" for key in ("q", "departement", "type", "page")}
        try:
            query = directory.parse(params)
            page: directory.DirectoryPage | None = await directory.search(db, web.redis, query)
            errors: dict[str, str] = {}
        except directory.DirectoryInvalid as invalid:
            page, errors = None, invalid.errors
        kept = {key: value for key, value in params.items() if value and key != "page" and key not in errors}
        context = {"page": page, "errors": errors, "params": params, "kept": kept, "types": TYPE_LABELS,
                   "departments": await directory.departments(db, web.redis),
                   "numbers": directory.page_numbers(page.page, page.pages) if page else []}
        return Template("organisations_annuaire.html", context=context, status_code=400 if errors else 200)
