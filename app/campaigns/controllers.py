"""Campaign pages: `/campagnes` (running ones), `/campagnes/{slug}` (its missions near the visitor, from the search
cache), the images, the administrators' `/administration/campagnes` and the managers' tags on a mission."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.handlers import BaseRouteHandler
from litestar.params import FromPath
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import RoleRequired, organisation_manager, require_account, require_current_account
from app.accounts.sessions import current_account
from app.campaigns import service
from app.campaigns.filters import CAMPAIGN_SLUG
from app.campaigns.images import EXTENSIONS
from app.campaigns.models import MAX_IMAGE_BYTES
from app.campaigns.validation import FIELDS, TOO_BIG, CampaignInvalid, CampaignNotFound, validate
from app.db.base import unit_of_work
from app.deps import Db, Web
from app.http import RowId
from app.legal.consent import check_terms
from app.missions import search
from app.missions.validation import MissionInvalid
from app.reference import DOMAINS
from app.state import WebState
from app.volunteers import age

ADMIN = "/administration/campagnes"
# The image, the other fields and the multipart framing; a body past it is refused (413) before it is read whole.
MAX_UPLOAD = MAX_IMAGE_BYTES + 256 * 1024
MAX_FORM = 16_384
IMAGE_NAME = re.compile(r"([1-9][0-9]{0,17})-([0-9a-f]{16})\.(png|jpg|webp)")
IMAGE_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"}
DONE = {"enregistree": "Campagne enregistrée.", "etiquettes": "Campagnes de la mission enregistrées."}
NOT_FOUND = "Cette campagne n'existe pas ou plus."
BAD_SLUG = "Cette adresse de campagne n'est pas valide."
SEARCH_PARAMS = ("postal_code", "radius_km", "page")


async def campaign_editor(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Administrators and national coordinators, with their roles as PostgreSQL holds them now."""
    account = await require_current_account(connection)
    await check_terms(connection, account)
    roles = account.roles
    if not (roles.admin or roles.national_coordinator):
        raise RoleRequired


def _error(request: Request[Any, Any, Any], status: int, message: str) -> Template:
    """The site's error page (error.html), with the way back to the running campaigns."""
    context = {"status": status, "message": message, "action": ("/campagnes", "Voir les campagnes en cours"),
               "errors": {}, "back": None, "signed_in": current_account(request) is not None, "signup": False}
    return Template("error.html", context=context, status_code=status)


class _Images:
    """The images this process served, by id: they never change (their address carries their digest), so a copy
    here needs no check; bounded in bytes."""

    def __init__(self, budget: int = 32 * 1024 * 1024) -> None:
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[int, tuple[str, str, bytes]] = OrderedDict()

    def get(self, image_id: int) -> tuple[str, str, bytes] | None:
        found = self.items.get(image_id)
        if found is not None:
            self.items.move_to_end(image_id)
        return found

    def put(self, image_id: int, item: tuple[str, str, bytes]) -> None:
        self.items[image_id] = item
        self.used += len(item[2])
        while self.used > self.budget and self.items:
            self.used -= len(self.items.popitem(last=False)[1][2])


IMAGES = _Images()


async def _image(web: WebState, image_id: int) -> tuple[str, str, bytes] | None:
    found = IMAGES.get(image_id)
    if found is None:
        async with unit_of_work(web.engine) as session:
            stored = await service.image(session, image_id)
            if stored is None:
                return None
            found = (stored.content_type, stored.sha256, bytes(stored.data))
        IMAGES.put(image_id, found)
    return found


class CampaignPages(Controller):
    path = "/campagnes"
    include_in_schema = False

    @get("/")
    async def running(self, web: Web) -> Template:
        today = age.today()
        campaigns = await service.current_and_coming(web.engine, web.redis, today)
        context = {"campaigns": [campaign for campaign in campaigns if campaign.running(today)],
                   "coming": [campaign for campaign in campaigns if not campaign.running(today)]}
        return Template("campagnes.html", context=context)

    @get("/images/{name:str}")
    async def image(self, request: Request[Any, Any, Any], name: FromPath[str], web: Web) -> Response[bytes]:
        match = IMAGE_NAME.fullmatch(name)
        if match is None:
            raise NotFoundException
        found = await _image(web, int(match[1]))
        if found is None:
            raise NotFoundException
        content_type, sha256, data = found
        if not sha256.startswith(match[2]) or EXTENSIONS[content_type] != match[3]:
            raise NotFoundException
        headers = {**IMAGE_HEADERS, "ETag": f'"{sha256}"'}
        if request.headers.get("if-none-match", "").strip() in (f'"{sha256}"', f'W/"{sha256}"'):
            return Response(b"", status_code=304, headers=headers)
        return Response(data, media_type=content_type, headers=headers)

    @get("/{slug:str}")
    async def show(self, request: Request[Any, Any, Any], slug: FromPath[str], web: Web, db: Db) -> Template:
        if len(slug) > 60 or not CAMPAIGN_SLUG.fullmatch(slug):
            return _error(request, 400, BAD_SLUG)
        try:
            campaign = await service.by_slug(web.engine, web.redis, slug)
        except CampaignNotFound:
            return _error(request, 404, NOT_FOUND)
        today = age.today()
        phase = campaign.phase(today)
        params = {key: str(request.query_params.get(key) or "") for key in SEARCH_PARAMS}
        page, errors = None, {}
        if phase != "ended":
            located = bool(params["postal_code"].strip())
            try:
                query = search.parse_query({**params, "campaign": slug, "sort": "distance" if located else "priority"},
                                           web.postcodes)
                page = await search.search(db, web.redis, query)
            except MissionInvalid as invalid:
                errors = invalid.errors
        context = {"campaign": campaign, "phase": phase, "page": page, "errors": errors, "params": params,
                   "today": today}
        return Template("campagne.html", context=context, status_code=400 if errors else 200)


def _form_page(values: dict[str, Any], errors: dict[str, str], action: str, *, domains: list[str],
               campaign: Any = None, status: int = 200) -> Template:
    context = {"values": values, "errors": errors, "action": action, "domains": DOMAINS, "chosen": set(domains),
               "campaign": campaign, "max_mb": MAX_IMAGE_BYTES // (1024 * 1024)}
    return Template("campagne_form.html", context=context, status_code=status, headers=PRIVATE)


async def _submitted(request: Request[Any, Any, Any]) -> tuple[dict[str, Any], list[str], bytes | None,
                                                               dict[str, str]]:
    """The form's text fields, its domains, the uploaded file (None when no file was chosen) and the errors of what
    is not even a form field (a text where a file goes)."""
    form = await request.form()
    values = {field: form.get(field) if isinstance(form.get(field), str) else "" for field in FIELDS}
    values["remove_image"] = form.get("remove_image") if isinstance(form.get("remove_image"), str) else ""
    domains = [value for value in form.getall("domains", []) if isinstance(value, str)]
    upload = form.get("image")
    errors: dict[str, str] = {}
    image = None
    if isinstance(upload, UploadFile):
        data = await upload.read(MAX_IMAGE_BYTES + 1)
        if data or upload.filename:
            image = data
        if len(data) > MAX_IMAGE_BYTES:
            errors["image"] = TOO_BIG
    elif upload:
        errors["image"] = "Choisissez un fichier image."
    return values, domains, image, errors


class CampaignAdministrationPages(Controller):
    path = ADMIN
    include_in_schema = False
    guards = (campaign_editor,)

    @get("/")
    async def index(self, db: Db, fait: str | None = None) -> Template:
        campaigns = await service.all_campaigns(db)
        context = {"campaigns": campaigns, "today": age.today(), "notice": DONE.get(fait or "")}
        return Template("campagnes_administration.html", context=context, headers=PRIVATE)

    @get("/nouvelle")
    async def new(self) -> Template:
        return _form_page({}, {}, f"{ADMIN}/nouvelle", domains=[])

    @post("/nouvelle", request_max_body_size=MAX_UPLOAD)
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        values, domains, image, refused = await _submitted(request)
        try:
            data, sniffed = validate(values, domains, None if refused else image, has_image=False)
            if refused:
                raise CampaignInvalid(refused)
            stored = (image, sniffed) if image is not None and sniffed is not None else None
            await service.save(db, data, stored, user_id=require_account(request).user_id)
        except CampaignInvalid as invalid:
            return _form_page(values, {**invalid.errors, **refused}, f"{ADMIN}/nouvelle", domains=domains,
                              status=400)
        return Redirect(f"{ADMIN}?fait=enregistree", status_code=303)

    @get("/{campaign_id:int}/modifier")
    async def edit(self, campaign_id: RowId, db: Db) -> Template:
        campaign = await self._campaign(db, campaign_id)
        values = {"name": campaign.name, "slug": campaign.slug, "text": campaign.text,
                  "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
                  "image_alt": campaign.image_alt}
        return _form_page(values, {}, f"{ADMIN}/{campaign_id}/modifier", domains=campaign.domains, campaign=campaign)

    @post("/{campaign_id:int}/modifier", request_max_body_size=MAX_UPLOAD)
    async def update(self, request: Request[Any, Any, Any], campaign_id: RowId, db: Db) -> Template | Redirect:
        campaign = await self._campaign(db, campaign_id)
        values, domains, image, refused = await _submitted(request)
        try:
            data, sniffed = validate(values, domains, None if refused else image,
                                     has_image=campaign.image_url is not None)
            if refused:
                raise CampaignInvalid(refused)
            stored = (image, sniffed) if image is not None and sniffed is not None else None
            await service.save(db, data, stored, campaign_id=campaign_id)
        except CampaignInvalid as invalid:
            return _form_page(values, {**invalid.errors, **refused}, f"{ADMIN}/{campaign_id}/modifier",
                              domains=domains, campaign=campaign, status=400)
        return Redirect(f"{ADMIN}?fait=enregistree", status_code=303)

    @staticmethod
    async def _campaign(db: Db, campaign_id: int) -> Any:
        try:
            return await service.get(db, campaign_id)
        except CampaignNotFound:
            raise NotFoundException from None


class MissionCampaignPages(Controller):
    """A manager tags their mission for the campaigns running or to come."""

    path = "/organisations/{organisation_id:int}/missions/{mission_id:int}/campagnes"
    include_in_schema = False
    guards = (organisation_manager("organisation_id"),)

    @get("/")
    async def choose(self, organisation_id: RowId, mission_id: RowId, db: Db, fait: str | None = None) -> Template:
        title = await self._title(db, organisation_id, mission_id)
        return await self._page(db, organisation_id, mission_id, title, DONE.get(fait or ""))

    @post("/", request_max_body_size=MAX_FORM)
    async def tag(self, request: Request[Any, Any, Any], organisation_id: RowId, mission_id: RowId,
                  db: Db) -> Template | Redirect:
        title = await self._title(db, organisation_id, mission_id)
        raw = (await request.form()).getall("campaign", [])
        chosen = set()
        for value in raw:
            text = value if isinstance(value, str) else ""
            if not (text.isascii() and text.isdecimal()) or len(text) > 18:
                return await self._page(db, organisation_id, mission_id, title, None, status=400,
                                        error="Choisissez les campagnes dans la liste.")
            chosen.add(int(text))
        await service.set_tags(db, mission_id, chosen, age.today())
        return Redirect(f"/organisations/{organisation_id}/missions/{mission_id}/campagnes?fait=etiquettes",
                        status_code=303)

    @staticmethod
    async def _title(db: Db, organisation_id: int, mission_id: int) -> str:
        found = await service.mission_organisation(db, mission_id)
        if found is None or found[0] != organisation_id:
            raise NotFoundException
        return found[1]

    @staticmethod
    async def _page(db: Db, organisation_id: int, mission_id: int, title: str, notice: str | None, *,
                    status: int = 200, error: str | None = None) -> Template:
        context = {"campaigns": await service.offered(db, age.today()), "tags": await service.tags_of(db, mission_id),
                   "organisation_id": organisation_id, "mission_id": mission_id, "title": title, "notice": notice,
                   "error": error, "domains": DOMAINS}
        return Template("campagnes_mission.html", context=context, status_code=status, headers=PRIVATE)
