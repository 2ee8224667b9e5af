"""Organisation pages: registration and edits (`/organisations/…`), showcase, and the moderation queue."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import current_or_none, moderator, organisation_manager, require_account, signed_in
from app.accounts.sessions import current_account, update_account
from app.deps import Db, Web
from app.http import RowId
from app.legal import service as legal_service
from app.organisations import service, space
from app.organisations.validation import TYPE_LABELS, OrganisationInvalid
from app.state import WebState
from app.territories import showcase

MAX_BODY = 32_768
FIELDS = ("name", "type", "rna", "siret", "address_line", "postal_code", "commune_code", "description", "donation_url")


def form_context(web: WebState, values: dict[str, Any], errors: dict[str, str], action: str) -> dict[str, Any]:
    """What templates/_organisation_fields.html reads."""
    communes = web.postcodes.communes(str(values.get("postal_code") or "").replace(" ", ""))
    return {"values": values, "errors": errors, "action": action, "types": TYPE_LABELS,
            "communes": communes if len(communes) > 1 else ()}


def _form(web: Web, values: dict[str, Any], errors: dict[str, str], action: str, status: int = 200) -> Template:
    return Template("organisation_form.html", context=form_context(web, values, errors, action), status_code=status,
                    headers=PRIVATE)


async def _values(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    return {field: form.get(field) or "" for field in FIELDS}


class OrganisationPages(Controller):
    path = "/organisations"
    include_in_schema = False

    @get("/nouvelle", guards=[signed_in])
    async def new(self, web: Web) -> Template:
        return _form(web, {}, {}, "/organisations/nouvelle")

    @post("/nouvelle", guards=[signed_in], request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template | Redirect:
        values = await _values(request)
        try:
            organisation, account = await service.register(
                db, data=values, postcodes=web.postcodes, account=require_account(request),
                terms_version=(await legal_service.current_versions(db, web.redis)).terms,
            )
        except OrganisationInvalid as invalid:
            return _form(web, values, invalid.errors, "/organisations/nouvelle", status=422)
        update_account(request, account)
        return Redirect(organisation.path, status_code=303)

    @get("/{organisation_id:int}/modifier", guards=[organisation_manager("organisation_id")])
    async def edit(self, organisation_id: RowId, web: Web, db: Db) -> Template:
        organisation = await service.edit_form(db, organisation_id)
        values = {field: getattr(organisation, field) or "" for field in FIELDS}
        return _form(web, values, {}, f"/organisations/{organisation_id}/modifier")

    @post("/{organisation_id:int}/modifier", guards=[organisation_manager("organisation_id")],
          request_max_body_size=MAX_BODY)
    async def save(
        self, request: Request[Any, Any, Any], organisation_id: RowId, web: Web, db: Db
    ) -> Template | Redirect:
        values = await _values(request)
        try:
            organisation = await service.update(db, organisation_id, data=values, postcodes=web.postcodes)
        except OrganisationInvalid as invalid:
            return _form(web, values, invalid.errors, f"/organisations/{organisation_id}/modifier", status=422)
        return Redirect(organisation.path, status_code=303)

    @post("/{organisation_id:int}/soumettre", guards=[organisation_manager("organisation_id")])
    async def submit(self, request: Request[Any, Any, Any], organisation_id: RowId, db: Db) -> Redirect:
        organisation = await service.submit(db, organisation_id)
        if (await request.form()).get("retour") == "structures":  # submitted from « Mes structures »: back to it
            return Redirect("/mon-espace/structures?info=soumise", status_code=303)
        return Redirect(organisation.path, status_code=303)

    @get("/{reference:str}")
    async def show(self, request: Request[Any, Any, Any], reference: FromPath[str], web: Web,
                   db: Db) -> Template | Redirect:
        number, _, slug = reference.partition("-")
        if not (number.isascii() and number.isdecimal()) or len(number) > 18:
            raise NotFoundException
        page = await service.showcase(db, int(number), current_account(request), lambda: current_or_none(request))
        if slug != page.organisation.slug:
            return Redirect(page.organisation.path, status_code=301)
        number_shown = showcase.page_number(request.query_params.get("page"))
        if number_shown is None:
            raise NotFoundException
        pager = None
        if page.manager:
            groups, more = await space.missions_by_status(db, web.places, page.organisation.id, manager=True)
        else:  # the public pages through the online missions
            groups, pager = await showcase.online_missions(db, page.organisation.id, number_shown)
            more = False
        headers = PRIVATE if not page.organisation.online or page.manager else None
        context = {"page": page, "organisation": page.organisation, "groups": groups, "more_missions": more,
                   "pager": pager}
        return Template("organisation.html", context=context, headers=headers)


class ModerationPages(Controller):
    path = "/moderation/organisations"
    include_in_schema = False

    @get("/", guards=[moderator])
    async def queue(self, request: Request[Any, Any, Any], db: Db) -> Template:
        queue = await service.moderation_queue(db, require_account(request).roles)
        context = {"queue": queue, "managed": require_account(request).roles.organisations}
        return Template("moderation_organisations.html", context=context, headers=PRIVATE)

    @post("/{organisation_id:int}/{decision:str}", guards=[moderator], request_max_body_size=MAX_BODY)
    async def decide(
        self, request: Request[Any, Any, Any], organisation_id: RowId, decision: FromPath[str], db: Db
    ) -> Redirect:
        action = service.MODERATION_ACTIONS.get(decision)
        if action is None:
            raise NotFoundException
        reason = (await request.form()).get("reason")
        await service.moderate(db, organisation_id, action=action, reason=reason, roles=require_account(request).roles)
        return Redirect("/moderation/organisations", status_code=303)
