"""Mission pages (`/missions`, `/missions/{id}-{slug}`, the managers' forms, copies and status buttons, the
priority flag) and the search API."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import (
    SignInRequired,
    organisation_manager,
    privileged,
    require_account,
    require_current_account,
)
from app.accounts.schemas import Roles, SignedIn
from app.accounts.sessions import current_account
from app.applications import service as applications
from app.confirm import Confirmation, confirmed
from app.confirm import page as confirmation_page
from app.deps import Db, Web
from app.http import RowId, wants_json
from app.missions import moderation, publishing, search, search_links, service, templates
from app.missions.exceptions import MissionTransitionRefused
from app.missions.schemas import MissionPage, MissionRead
from app.missions.validation import FIELDS, MAX_ADDRESSES, TEXT_FIELDS, MissionInvalid
from app.partners import tracking
from app.reference import DOMAINS
from app.state import WebState
from app.volunteers import age

MAX_BODY = 32_768
MODERATION_QUEUE = "/moderation/missions"
SENT_BACK = "relecture"
NOTICES = {SENT_BACK: "Vos modifications changent le contenu de la mission : elle n'est plus en ligne et attend à "
                      "nouveau la validation du ou de la référent·e de son département.",
           "structure": "La mission n'est pas publiée : la structure doit d'abord être validée par les référent·es "
                        "de son département.",
           "dates": "La mission n'est pas publiée : indiquez d'abord une date de début ou son rythme (bouton "
                    "« Modifier »)."}
# What the manager confirms before an action that cannot be undone: (question, consequence, button).
CONFIRMATIONS = {
    "cancel": ("Voulez-vous vraiment annuler la mission « {title} » ?",
               "Elle ne sera plus proposée aux bénévoles ; les candidatures en cours sont closes et chaque personne "
               "est prévenue par e-mail.", "Confirmer l'annulation"),
    "finish": ("Voulez-vous vraiment terminer la mission « {title} » ?",
               "Elle ne sera plus proposée aux bénévoles et ne pourra plus être rouverte ; les candidatures en cours "
               "sont closes.", "Confirmer : terminer la mission"),
}


def _commune_codes(web: WebState, values: dict[str, Any]) -> list[str]:
    """The communes the form names so far (chosen, or the only one of a postal code), for its emergency list."""
    codes = []
    for row in range(1, MAX_ADDRESSES + 1):
        chosen = str(values.get(f"commune_code_{row}") or "")
        choices = web.postcodes.communes(str(values.get(f"postal_code_{row}") or "").replace(" ", ""))
        if chosen in {choice.code for choice in choices}:
            codes.append(chosen)
        elif len(choices) == 1:
            codes.append(choices[0].code)
    return codes


async def _form(web: WebState, db: AsyncSession, organisation_id: int, values: dict[str, Any],
                errors: dict[str, str], action: str, *, status: int = 200, kept_emergency: str | None = None,
                locked: dict[str, Any] | None = None, template_id: int | None = None, reason: str | None = None,
                offered: list[templates.TemplateRead] | None = None) -> Template:
    """`locked`: the text a template fixes, shown read-only and not sent back (the server keeps it anyway);
    `offered`: the validated templates a new mission may start from."""
    communes = {row: web.postcodes.communes(str(values.get(f"postal_code_{row}") or "").replace(" ", ""))
                for row in range(1, MAX_ADDRESSES + 1)}
    emergencies = await service.emergency_choices(db, organisation_id, _commune_codes(web, values), kept_emergency)
    context = {"values": values, "errors": errors, "action": action, "domains": DOMAINS, "rows": MAX_ADDRESSES,
               "communes": {row: choices for row, choices in communes.items() if len(choices) > 1},
               "emergencies": emergencies, "locked": locked, "template_id": template_id, "reason": reason,
               "offered": offered or []}
    return Template("mission_form.html", context=context, status_code=status, headers=PRIVATE)


async def _values(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    values = {field: form.get(field) or "" for field in FIELDS}
    values["activities"] = form.getall("activities", [])  # one checkbox per chosen activity
    return values


def _values_of(mission: MissionRead) -> dict[str, Any]:
    values: dict[str, Any] = {field: getattr(mission, field, "") for field in FIELDS if hasattr(mission, field)}
    values["activities"] = list(mission.activities)
    for row, address in enumerate(mission.addresses, 1):
        values.update({f"address_line_{row}": address.address_line, f"postal_code_{row}": address.postal_code,
                       f"commune_code_{row}": address.commune_code})
    return {key: "" if value is None else value for key, value in values.items()}


def _locked(values: dict[str, Any]) -> dict[str, Any]:
    text = {field: values.get(field) for field in TEXT_FIELDS}
    text["domain_label"] = DOMAINS.get(str(text["domain"]), "")
    return text


def _action(decision: str) -> str:
    action = publishing.ACTIONS.get(decision)
    if action is None:
        raise NotFoundException
    return action


def _buttons(status: str) -> list[tuple[str, str, bool]]:
    """(path segment, label, cannot be undone) of the state actions the mission page offers."""
    return [(segment, publishing.BUTTONS[action], action in publishing.FINAL)
            for segment, action in publishing.allowed(status).items()]


def _refused_notice(status: str, decision: str | None) -> str | None:
    """Why the action just tried did nothing, from the status as it is now (never text from the query string)."""
    action = publishing.ACTIONS.get(decision or "")
    if action is None or action in publishing.allowed(status).values():
        return None
    return service.refused_message(status, action)


async def _confirm_or_back(db: AsyncSession, mission_id: int, decision: str, action: str,
                           roles: Roles) -> Template | Redirect:
    """The confirmation page of an action that cannot be undone, or back to the mission when its status no longer
    allows the action."""
    mission = (await service.edit_form(db, mission_id, roles)).mission
    if action not in publishing.allowed(mission.status).values():
        return Redirect(f"{mission.path}?refus={decision}", status_code=303)
    if action not in publishing.FINAL:
        return Redirect(mission.path, status_code=303)
    question, consequence, button = CONFIRMATIONS[action]
    return confirmation_page(Confirmation(
        question=question.format(title=mission.title), consequence=consequence,
        action=f"/missions/{mission.id}/statut/{decision}", button=button, back=(mission.path, "Revenir à la mission"),
    ))


def _template_number(raw: object) -> int | None:
    text = str(raw or "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdecimal()) or len(text) > 18:
        raise MissionInvalid({"modele": templates.NOT_OFFERED})
    return int(text)


class MissionApi(Controller):
    path = "/api/v1/missions"

    @get("/", responses={200: ResponseSpec(data_container=MissionPage, description="Missions en ligne")})
    async def search(self, request: Request[Any, Any, Any], web: Web) -> Response[bytes]:
        # The cached JSON as stored (no Db: a hit needs no database session); see search.search_json.
        body = await search.search_json(web.engine, web.redis, search.parse_query(request.query_params, web.postcodes))
        return Response(body, media_type=MediaType.JSON)


class MissionPages(Controller):
    path = "/missions"
    include_in_schema = False

    @get("/")
    async def search(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        params = dict(request.query_params)
        pagination = None
        try:
            query = search.parse_query(params, web.postcodes)
            found = await search.search(db, web.redis, query)
            page: MissionPage | None = found
            errors: dict[str, str] = {}
            pagination = search_links.pagination(self.path, query, found.pages, search.MAX_PAGE)
        except MissionInvalid as invalid:
            page, errors = None, invalid.errors
        context = {"page": page, "errors": errors, "params": params, "domains": DOMAINS, "radii": search.RADII_KM,
                   "pagination": pagination}
        return Template("missions.html", context=context, status_code=422 if errors else 200)

    @get("/{reference:str}")
    async def show(self, request: Request[Any, Any, Any], reference: FromPath[str], web: Web, db: Db,
                   info: FromQuery[str | None] = None, refus: FromQuery[str | None] = None,
                   apiengagement_id: FromQuery[str | None] = None) -> Template | Redirect:
        number, _, slug = reference.partition("-")
        if not (number.isascii() and number.isdecimal()) or len(number) > 18:
            raise NotFoundException

        async def current() -> SignedIn | None:
            try:
                return await require_current_account(request)
            except SignInRequired:  # the account is gone: a visitor like any other
                return None

        view = await service.mission_page(db, int(number), current_account(request), current)
        mission = view.mission
        if slug != mission.slug:
            return Redirect(mission.path, status_code=301)
        if apiengagement_id is not None:  # sent by a partner's tracked link (app/partners/tracking.py)
            return tracking.landing(web.settings.secret_key.reveal(), apiengagement_id, mission.path,
                                    secure=web.settings.base_url.startswith("https://"))
        # A partner's mission has no places of ours: its page links to the partner's site instead.
        taken = 0 if mission.partner_id is not None else await applications.taken_places(web.places, web.engine,
                                                                                         mission.id)
        account = current_account(request)
        own = (await applications.own_application(db, web.redis, mission.id, account.volunteer_id)
               if account is not None and account.volunteer_id is not None else None)
        context = {"mission": mission, "view": view, "manager": view.manager, "account": account, "own": own,
                   "actions": _buttons(mission.status), "places_left": max(0, mission.places - taken),
                   "editable": mission.status in service.EDITABLE, "duplicable": mission.status != "suspended",
                   "notice": (NOTICES.get(info or "") or _refused_notice(mission.status, refus)) if view.manager
                   else None}
        private = not mission.online or view.manager or view.moderator or view.prioritiser or account is not None
        return Template("mission.html", context=context, headers=PRIVATE if private else None)

    @get("/{mission_id:int}/modifier", guards=[privileged])
    async def edit(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db) -> Template:
        saved = await service.edit_form(db, mission_id, require_account(request).roles)
        values = _values_of(saved.mission)
        return await _form(web, db, saved.mission.organisation_id, values, {}, f"/missions/{mission_id}/modifier",
                           kept_emergency=saved.mission.emergency_slug, reason=saved.status_reason,
                           locked=_locked(values) if saved.from_template else None)

    @post("/{mission_id:int}/modifier", guards=[privileged], request_max_body_size=MAX_BODY)
    async def save(
        self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db
    ) -> Template | Redirect:
        values = await _values(request)
        roles = require_account(request).roles
        try:
            saved = await service.update_mission(db, web.places, mission_id, data=values, postcodes=web.postcodes,
                                                 roles=roles, trusted_after=web.settings.trusted_organisation_missions)
        except MissionInvalid as invalid:
            form = await service.edit_form(db, mission_id, roles)
            locked = _locked(_values_of(form.mission)) if form.from_template else None
            return await _form(web, db, form.mission.organisation_id, values, invalid.errors,
                               f"/missions/{mission_id}/modifier", status=422,
                               kept_emergency=form.mission.emergency_slug, locked=locked, reason=form.status_reason)
        return Redirect(f"{saved.mission.path}?info={SENT_BACK}" if saved.sent_back else saved.mission.path,
                        status_code=303)

    @get("/{mission_id:int}/statut/{decision:str}", guards=[privileged])
    async def confirm(
        self, request: Request[Any, Any, Any], mission_id: RowId, decision: FromPath[str], db: Db
    ) -> Template | Redirect:
        """A link to an action that cannot be undone: its confirmation page (a GET never changes anything)."""
        return await _confirm_or_back(db, mission_id, decision, _action(decision), require_account(request).roles)

    @post("/{mission_id:int}/statut/{decision:str}", guards=[privileged], request_max_body_size=MAX_BODY)
    async def decide(
        self, request: Request[Any, Any, Any], mission_id: RowId, decision: FromPath[str], web: Web, db: Db
    ) -> Template | Redirect:
        action = _action(decision)
        roles = require_account(request).roles
        if action in publishing.FINAL and not confirmed(await request.form()):
            return await _confirm_or_back(db, mission_id, decision, action, roles)
        try:
            mission = await service.transition(db, mission_id, action=action, roles=roles,
                                               trusted_after=web.settings.trusted_organisation_missions)
        except MissionTransitionRefused as refused:
            if refused.notice is None or wants_json(request):
                raise
            # Back to the mission, which says why from its status as it is now.
            path = (await service.edit_form(db, mission_id, roles)).mission.path
            query = f"refus={decision}" if refused.notice == "etat" else f"info={refused.notice}"
            return Redirect(f"{path}?{query}", status_code=303)
        return Redirect(mission.path, status_code=303)

    @post("/{mission_id:int}/dupliquer", guards=[privileged])
    async def duplicate(self, request: Request[Any, Any, Any], mission_id: RowId, db: Db) -> Redirect:
        copy = await service.duplicate(db, mission_id, roles=require_account(request).roles, today=age.today())
        return Redirect(f"/missions/{copy.id}/modifier", status_code=303)

    @post("/{mission_id:int}/priorite", guards=[privileged], request_max_body_size=MAX_BODY)
    async def priority(self, request: Request[Any, Any, Any], mission_id: RowId, db: Db) -> Redirect:
        form = await request.form()
        mission = await moderation.set_priority(db, mission_id, priority=form.get("priority") == "1",
                                                roles=require_account(request).roles)
        back = MODERATION_QUEUE if form.get("from") == "moderation" else mission.path
        return Redirect(back, status_code=303)


class OrganisationMissionPages(Controller):
    path = "/organisations/{organisation_id:int}/missions"
    include_in_schema = False

    @get("/nouvelle", guards=[organisation_manager("organisation_id")])
    async def new(self, organisation_id: RowId, web: Web, db: Db, modele: FromQuery[str | None] = None) -> Template:
        action = f"/organisations/{organisation_id}/missions/nouvelle"
        template_id = _template_number(modele)
        if template_id is None:
            return await _form(web, db, organisation_id, {}, {}, action, offered=await templates.validated(db))
        values = templates.text_values(await templates.offered(db, template_id))
        return await _form(web, db, organisation_id, values, {}, action, locked=_locked(values),
                           template_id=template_id)

    @post("/nouvelle", guards=[organisation_manager("organisation_id")], request_max_body_size=MAX_BODY)
    async def create(
        self, request: Request[Any, Any, Any], organisation_id: RowId, web: Web, db: Db
    ) -> Template | Redirect:
        values = await _values(request)
        action = f"/organisations/{organisation_id}/missions/nouvelle"
        template_id = _template_number((await request.form()).get("modele"))
        try:
            mission = await service.create(db, organisation_id, data=values, postcodes=web.postcodes,
                                           template_id=template_id)
        except MissionInvalid as invalid:
            locked = None
            if template_id is not None and "modele" not in invalid.errors:
                values.update(templates.text_values(await templates.offered(db, template_id)))
                locked = _locked(values)
            return await _form(web, db, organisation_id, values, invalid.errors, action, status=422, locked=locked,
                               template_id=template_id if locked else None)
        return Redirect(mission.path, status_code=303)
