"""Mission pages (`/missions`, `/missions/{id}-{slug}`, the managers' forms) and the search API."""

from __future__ import annotations

from typing import Any

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import organisation_manager, privileged, require_account
from app.accounts.sessions import current_account
from app.applications import service as applications
from app.deps import Db, Web
from app.http import RowId
from app.missions import search, service
from app.missions.schemas import MissionPage, MissionRead
from app.missions.validation import FIELDS, MAX_ADDRESSES, MissionInvalid
from app.reference import DOMAINS

MAX_BODY = 32_768


def _form(web: Web, values: dict[str, Any], errors: dict[str, str], action: str, status: int = 200) -> Template:
    communes = {row: web.postcodes.communes(str(values.get(f"postal_code_{row}") or "").replace(" ", ""))
                for row in range(1, MAX_ADDRESSES + 1)}
    context = {"values": values, "errors": errors, "action": action, "domains": DOMAINS, "rows": MAX_ADDRESSES,
               "communes": {row: choices for row, choices in communes.items() if len(choices) > 1}}
    return Template("mission_form.html", context=context, status_code=status, headers=PRIVATE)


async def _values(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    return {field: form.get(field) or "" for field in FIELDS}


def _values_of(mission: MissionRead) -> dict[str, Any]:
    values: dict[str, Any] = {field: getattr(mission, field, "") for field in FIELDS if hasattr(mission, field)}
    values["activities"] = ", ".join(mission.activities)
    for row, address in enumerate(mission.addresses, 1):
        values.update({f"address_line_{row}": address.address_line, f"postal_code_{row}": address.postal_code,
                       f"commune_code_{row}": address.commune_code})
    return {key: "" if value is None else value for key, value in values.items()}


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
        try:
            page: MissionPage | None = await search.search(db, web.redis, search.parse_query(params, web.postcodes))
            errors: dict[str, str] = {}
        except MissionInvalid as invalid:
            page, errors = None, invalid.errors
        context = {"page": page, "errors": errors, "params": params, "domains": DOMAINS}
        return Template("missions.html", context=context, status_code=422 if errors else 200)

    @get("/{reference:str}")
    async def show(self, request: Request[Any, Any, Any], reference: FromPath[str], web: Web, db: Db
                   ) -> Template | Redirect:
        number, _, slug = reference.partition("-")
        if not number.isdecimal() or len(number) > 18:
            raise NotFoundException
        account = current_account(request)
        mission, manager = await service.mission_page(db, int(number), account)
        if slug != mission.slug:
            return Redirect(mission.path, status_code=301)
        taken = await applications.taken_places(web.places, web.engine, mission.id)  # live, from Redis
        context = {"mission": mission, "manager": manager, "actions": service.ACTIONS, "account": account,
                   "places_left": max(0, mission.places - taken)}
        return Template("mission.html", context=context, headers=None if mission.online else PRIVATE)

    @get("/{mission_id:int}/modifier", guards=[privileged])
    async def edit(self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db) -> Template:
        mission = await service.edit_form(db, mission_id, require_account(request).roles)
        return _form(web, _values_of(mission), {}, f"/missions/{mission_id}/modifier")

    @post("/{mission_id:int}/modifier", guards=[privileged], request_max_body_size=MAX_BODY)
    async def save(
        self, request: Request[Any, Any, Any], mission_id: RowId, web: Web, db: Db
    ) -> Template | Redirect:
        values = await _values(request)
        roles = require_account(request).roles
        try:
            mission = await service.update_mission(db, mission_id, data=values, postcodes=web.postcodes, roles=roles)
        except MissionInvalid as invalid:
            return _form(web, values, invalid.errors, f"/missions/{mission_id}/modifier", status=422)
        return Redirect(mission.path, status_code=303)

    @post("/{mission_id:int}/statut/{decision:str}", guards=[privileged])
    async def decide(
        self, request: Request[Any, Any, Any], mission_id: RowId, decision: FromPath[str], db: Db
    ) -> Redirect:
        action = service.ACTIONS.get(decision)
        if action is None:
            raise NotFoundException
        mission = await service.transition(db, mission_id, action=action, roles=require_account(request).roles)
        return Redirect(mission.path, status_code=303)


class OrganisationMissionPages(Controller):
    path = "/organisations/{organisation_id:int}/missions"
    include_in_schema = False

    @get("/nouvelle", guards=[organisation_manager("organisation_id")])
    async def new(self, organisation_id: RowId, web: Web) -> Template:
        return _form(web, {}, {}, f"/organisations/{organisation_id}/missions/nouvelle")

    @post("/nouvelle", guards=[organisation_manager("organisation_id")], request_max_body_size=MAX_BODY)
    async def create(
        self, request: Request[Any, Any, Any], organisation_id: RowId, web: Web, db: Db
    ) -> Template | Redirect:
        values = await _values(request)
        try:
            mission = await service.create(db, organisation_id, data=values, postcodes=web.postcodes)
        except MissionInvalid as invalid:
            return _form(web, values, invalid.errors, f"/organisations/{organisation_id}/missions/nouvelle", 422)
        return Redirect(mission.path, status_code=303)
