"""Emergency pages: the public page `/urgence/{slug}` and the home page's banner (both from the page cache), and the
coordinators' pages under `/coordination/urgences`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Controller, Litestar, MediaType, Request, Response, asgi, get, post
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, HTTPScope, Receive, Send
from sqlalchemy import select

from app.accounts.controllers import PRIVATE
from app.accounts.guards import coordinator, require_account
from app.campaigns import service as campaign_service
from app.db.base import unit_of_work
from app.deps import Db
from app.geo.models import Department
from app.http import RowId
from app.maps.render import Choropleth, highlight
from app.missions import search
from app.missions.validation import MissionInvalid
from app.reference import DOMAINS
from app.state import WebState
from app.volunteers import age
from surge.emergencies import picker, service
from surge.emergencies.models import Emergency
from surge.emergencies.page import ERRORS, NO_CODE, counters, variant_of

PUBLIC = {"Cache-Control": "public, max-age=5"}
PAGE_HEADERS = ((b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"public, max-age=5"))
MAX_BODY = 32_768
# The confirmations a redirect names by code (`?fait=`): the management page never shows text from its URL.
DONE = {
    "enregistree": "Urgence enregistrée.",
    "rattachee": "Mission rattachée.",
    "detachee": "Mission détachée.",
}


def _render(app: Litestar, template: str, **context: Any) -> bytes:
    engine = app.template_engine
    assert engine is not None
    environment: Any = engine.engine  # Jinja's Environment (JinjaTemplateEngine)
    html: str = environment.get_template(template).render(**context)
    return html.encode()


async def _department_names(session: Any, codes: list[str]) -> list[str]:
    rows = await session.execute(select(Department.code, Department.name).where(Department.code.in_(codes)))
    names = dict(rows.all())
    return [f"{names.get(code, code)} ({code})" for code in codes]


def _scope_map(scope: list[str]) -> Choropleth | None:
    """The emergency's departments on a map of France, drawn once per page build (the page is cached)."""
    if not scope:
        return None  # a national emergency: the whole map would be one colour
    return highlight(scope, caption="Départements concernés par l'urgence", inside="Département concerné",
                     outside="Autre département")


async def _public_slugs(web: WebState) -> list[str]:
    async with unit_of_work(web.engine, web.clients) as session:
        return await service.public_slugs(session)


class EmergencyPublicPages(Controller):
    """The surge's hot pages: no session, no CSRF cookie, no SQL per visit (see app/main.py and page.py)."""

    include_in_schema = False

    @get("/")
    async def home(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        web: WebState = request.app.state.web

        async def build() -> bytes:
            async with unit_of_work(web.engine, web.clients) as session:
                emergencies = await service.live(session)
            campaigns = await campaign_service.on_home(web.engine, web.redis, age.today())  # from Redis
            return _render(request.app, "accueil.html", emergencies=emergencies, campaigns=campaigns)

        html = await web.pages.get("home", "", build)
        return Response(html or b"", media_type=MediaType.HTML, headers=PUBLIC)

    # A bare ASGI handler: a surge's visits skip Litestar's request object, parameter parsing and response building
    # (~15 % of a visit's CPU in the profile). Errors still go through the app's exception handlers (French 404).
    # Mounted, because Litestar 2 cannot route path parameters to an ASGI handler; the path left is "/{slug}/".
    @asgi("/urgence", is_mount=True, copy_scope=False)
    async def emergency(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise MethodNotAllowedException(headers={"Allow": "GET, HEAD"})
        app: Litestar = scope["litestar_app"]
        web: WebState = app.state.web
        rest = scope["path"]
        slug = rest.strip("/").lower() if rest.startswith("/") else ""
        if not service.SLUG.match(slug) or not await web.pages.is_public(slug, lambda: _public_slugs(web)):
            raise NotFoundException
        variant = variant_of(scope["query_string"], web.postcodes)

        async def build() -> bytes | None:
            async with unit_of_work(web.engine, web.clients) as session:
                emergency = await session.scalar(select(Emergency).where(Emergency.slug == slug))
                if emergency is None or emergency.status == "draft":
                    return None
                figures = await counters(session, slug)
                error = ERRORS.get(variant)
                located = None if error or variant == NO_CODE else variant
                query = search.SearchQuery(emergency=slug, postal_code=located, sort="priority", radius_km=50,
                                           per_page=30)
                try:
                    results = await search.search(session, web.redis, query)
                except MissionInvalid as invalid:
                    error = next(iter(invalid.errors.values()))
                    results = await search.search(session, web.redis,
                                                  search.SearchQuery(emergency=slug, sort="priority", per_page=30))
                departments = await _department_names(session, emergency.departments)
            return _render(app, "urgence.html", emergency=emergency, counters=figures, page=results,
                           postal_code=located or "", error=error, departments=departments,
                           department_map=_scope_map(emergency.departments),
                           domains=[DOMAINS[domain] for domain in emergency.priority_domains if domain in DOMAINS])

        html = await web.pages.get(f"urgence:{slug}", variant, build)
        if html is None:
            raise NotFoundException
        start: HTTPResponseStartEvent = {
            "type": "http.response.start", "status": 200,
            "headers": [*PAGE_HEADERS, (b"content-length", str(len(html)).encode())],
        }
        body: HTTPResponseBodyEvent = {
            "type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else html, "more_body": False,
        }
        await send(start)
        await send(body)


async def _manage_page(request: Request[Any, Any, Any], db: Any, slug: str, *, info: str | None = None,
                       search: str | None = None, error: str | None = None, status: int = 200) -> Template:
    """The management page, with the mission picker's results for `search` (a refused search: 400, its message under
    the field) and `error`, the refusal of an attempt to attach a mission, under the same field."""
    emergency = await service.managed(db, slug, require_account(request).roles)
    found: list[picker.FoundMission] = []
    try:
        query = picker.parse(search)
        found = await picker.find(db, emergency, query)
    except picker.PickerRefused as refused:
        query, error, status = picker.PickerQuery(), error or refused.message, status if error else 400
        search = None
    context = {
        "emergency": emergency, "labels": service.STATUS_LABELS, "info": info,
        "missions": await service.missions_of(db, slug), "counters": await counters(db, slug),
        "departments": await _department_names(db, emergency.departments), "actions": service.ACTIONS,
        "search": search or "", "searched": not query.empty, "found": found, "error": error,
        "limit": picker.LIMIT,
    }
    return Template("urgence_gestion.html", context=context, status_code=status, headers=PRIVATE)


def _form(values: dict[str, Any], errors: dict[str, str], action: str, status: int = 200) -> Template:
    context = {"values": values, "errors": errors, "action": action, "domains": DOMAINS}
    return Template("urgence_form.html", context=context, status_code=status, headers=PRIVATE)


async def _values(request: Request[Any, Any, Any]) -> dict[str, Any]:
    form = await request.form()
    values: dict[str, Any] = {field: form.get(field) or "" for field in service.FIELDS}
    values["priority_domains"] = form.getall("priority_domains", [])
    return values


class EmergencyCoordinationPages(Controller):
    path = "/coordination/urgences"
    include_in_schema = False
    guards = [coordinator]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: Db) -> Template:
        emergencies = await service.visible_to(db, require_account(request).roles)
        context = {"emergencies": emergencies, "labels": service.STATUS_LABELS}
        return Template("coordination_urgences.html", context=context, headers=PRIVATE)

    @get("/nouvelle")
    async def new(self) -> Template:
        return _form({"priority_domains": []}, {}, "/coordination/urgences/nouvelle")

    @post("/nouvelle", request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        values = await _values(request)
        account = require_account(request)
        try:
            emergency = await service.create(db, values, roles=account.roles, user_id=account.user_id)
        except service.EmergencyInvalid as invalid:
            return _form(values, invalid.errors, "/coordination/urgences/nouvelle", 422)
        return Redirect(f"/coordination/urgences/{emergency.slug}", status_code=303)

    @get("/{slug:str}")
    async def manage(self, request: Request[Any, Any, Any], slug: FromPath[str], db: Db,
                     fait: FromQuery[str | None] = None, recherche: FromQuery[str | None] = None) -> Template:
        return await _manage_page(request, db, slug, info=DONE.get(fait or ""), search=recherche)

    @get("/{slug:str}/modifier")
    async def edit(self, request: Request[Any, Any, Any], slug: FromPath[str], db: Db) -> Template:
        emergency = await service.managed(db, slug, require_account(request).roles)
        values = {field: getattr(emergency, field) or "" for field in service.FIELDS}
        values["departments"] = ", ".join(emergency.departments)
        return _form(values, {}, f"/coordination/urgences/{slug}/modifier")

    @post("/{slug:str}/modifier", request_max_body_size=MAX_BODY)
    async def save(self, request: Request[Any, Any, Any], slug: FromPath[str], db: Db) -> Template | Redirect:
        values = await _values(request)
        try:
            await service.edit(db, slug, values, roles=require_account(request).roles)
        except service.EmergencyInvalid as invalid:
            return _form({**values, "slug": slug}, invalid.errors, f"/coordination/urgences/{slug}/modifier", 422)
        return Redirect(f"/coordination/urgences/{slug}?fait=enregistree", status_code=303)

    @post("/{slug:str}/statut/{decision:str}")
    async def decide(self, request: Request[Any, Any, Any], slug: FromPath[str], decision: FromPath[str],
                     db: Db) -> Redirect:
        action = service.ACTIONS.get(decision)
        if action is None:
            raise NotFoundException
        await service.transition(db, slug, action, roles=require_account(request).roles)
        return Redirect(f"/coordination/urgences/{slug}", status_code=303)

    @post("/{slug:str}/missions", request_max_body_size=MAX_BODY)
    async def attach(self, request: Request[Any, Any, Any], slug: FromPath[str], db: Db) -> Template | Redirect:
        form = await request.form()
        raw = form.get("mission")
        number = raw.strip().lstrip("#").split("-", 1)[0] if isinstance(raw, str) else ""
        search = form.get("recherche") if isinstance(form.get("recherche"), str) else None
        roles = require_account(request).roles
        try:
            if not number.isdecimal() or not number.isascii() or len(number) > 18:
                raise service.EmergencyInvalid({"mission": "Choisissez la mission dans les résultats de la recherche."})
            await service.attach(db, slug, int(number), priority=bool(form.get("priority")), roles=roles)
        except service.EmergencyInvalid as invalid:
            return await _manage_page(request, db, slug, search=search, error=invalid.errors["mission"], status=422)
        again = f"&recherche={quote(search)}" if search and picker.usable(search) else ""
        return Redirect(f"/coordination/urgences/{slug}?fait=rattachee{again}", status_code=303)

    @post("/{slug:str}/missions/{mission_id:int}/detacher")
    async def detach(self, request: Request[Any, Any, Any], slug: FromPath[str], mission_id: RowId,
                     db: Db) -> Redirect:
        await service.detach(db, slug, mission_id, roles=require_account(request).roles)
        return Redirect(f"/coordination/urgences/{slug}?fait=detachee", status_code=303)

