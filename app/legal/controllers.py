"""The legal pages (current and past versions), the acceptance of new terms, and their administration
(`/administration/textes`, admins only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.accounts import return_path
from app.accounts.controllers import PRIVATE
from app.accounts.guards import SignInRequired, admin, require_account, signed_in
from app.accounts.sessions import end_session, update_account
from app.deps import Db, Web
from app.legal import service
from app.legal.consent import ACCEPT_PATH, accepted
from app.legal.kinds import KINDS, Kind, parse_kind
from app.legal.texts import PLACEHOLDERS
from app.state import WebState

ADMIN_PAGE = "/administration/textes"
MAX_BODY = 4_096
# A whole text typed in French: up to BODY_LENGTH characters, most of them taking 3 to 6 bytes once form-encoded.
MAX_TEXT_BODY = 262_144
BY_PATH = {info.path: kind for kind, info in KINDS.items()}


def _kind_of(path: str) -> Kind:
    return BY_PATH["/" + path.strip("/").split("/", 1)[0]]


async def _page(web: WebState, db: Db, kind: Kind, version: int | None) -> Template:
    versions = await service.current_versions(db, web.redis)
    current = versions.current.get(kind)
    if current is None:
        raise NotFoundException("Ce texte n'est pas encore publié.")
    if version is not None and not 1 <= version <= current:  # versions follow each other from 1
        raise NotFoundException("Cette version n'existe pas.")
    shown = await service.rendered(db, web.redis, web.settings, kind, version or current)
    if shown is None:
        raise NotFoundException("Cette version n'existe pas.")
    context = {"text": shown, "info": KINDS[kind], "current": current, "archived": shown.version != current}
    # No shared-cache header (the response sets the visitor's CSRF cookie): the page is served from the process's
    # copies instead (app/legal/current.py), with no SQL once its version has been rendered.
    return Template("legal/page.html", context=context)


class LegalPages(Controller):
    include_in_schema = False

    @get([info.path for info in KINDS.values()])
    async def current(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        return await _page(web, db, _kind_of(request.scope["path"]), None)

    @get([info.path + "/versions/{version:int}" for info in KINDS.values()])
    async def version(self, request: Request[Any, Any, Any], web: Web, db: Db, version: FromPath[int]) -> Template:
        return await _page(web, db, _kind_of(request.scope["path"]), version)

    @get(ACCEPT_PATH, guards=[signed_in])
    async def acceptance(self, request: Request[Any, Any, Any], web: Web, db: Db,
                         suite: FromQuery[str | None] = None) -> Template:
        account = require_account(request)
        versions = await service.current_versions(db, web.redis)
        terms = await service.rendered(db, web.redis, web.settings, Kind.TERMS, versions.terms or 1)
        context = {"text": terms, "after": return_path.safe(suite),
                   "up_to_date": accepted(account) >= versions.terms_major}
        return Template("legal/accepter.html", context=context, headers=PRIVATE)

    @post(ACCEPT_PATH, guards=[signed_in], request_max_body_size=MAX_BODY)
    async def accept(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Redirect:
        account = require_account(request)
        form = await request.form()
        versions = await service.current_versions(db, web.redis)
        version = max(versions.terms or 1, versions.terms_major)
        if not await service.accept_terms(db, account.user_id, version, datetime.now(UTC)):
            end_session(request)
            raise SignInRequired
        update_account(request, msgspec.structs.replace(account, terms_version=version))
        return Redirect(return_path.after_sign_in(form.get("suite")), status_code=303)


DONE = "La version {version} du texte « {label} » est publiée : elle s'affiche dès maintenant sur {path}."


async def _admin_page(db: Db, *, done: str | None = None) -> Template:
    context = {"history": await service.history(db), "kinds": KINDS, "done": done}
    return Template("legal/administration.html", context=context, headers=PRIVATE)


def _form(kind: Kind, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Template:
    context = {"info": KINDS[kind], "values": values, "errors": errors, "terms": kind is Kind.TERMS,
               "placeholders": PLACEHOLDERS}
    return Template("legal/publier.html", context=context, status_code=status, headers=PRIVATE)


def _admin_kind(raw: str) -> Kind:
    kind = parse_kind(raw)
    if kind is None:
        raise NotFoundException("Ce type de texte n'existe pas.")
    return kind


class LegalAdministrationPages(Controller):
    path = ADMIN_PAGE
    include_in_schema = False
    guards = [admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def show(self, db: Db, publie: FromQuery[str | None] = None) -> Template:
        done = None
        kind_name, _, number = (publie or "").partition("-")
        if (kind := parse_kind(kind_name)) is not None and number.isdigit() and len(number) < 6:
            done = DONE.format(version=number, label=KINDS[kind].label, path=KINDS[kind].path)
        return await _admin_page(db, done=done)

    @get("/{kind:str}/nouvelle")
    async def new_version(self, db: Db, kind: FromPath[str]) -> Template:
        found = _admin_kind(kind)
        title, body = await service.source_of(db, found)
        return _form(found, {"title": title, "body": body}, {})

    @post("/{kind:str}/nouvelle", request_max_body_size=MAX_TEXT_BODY)
    async def publish(self, request: Request[Any, Any, Any], db: Db, kind: FromPath[str]) -> Template | Redirect:
        found = _admin_kind(kind)
        form = await request.form()
        values = {"title": form.get("title"), "body": form.get("body"), "major": form.get("major")}
        try:
            publication = service.validate_publication(values)
        except service.LegalTextInvalid as invalid:
            shown = {key: value if isinstance(value, str) else "" for key, value in values.items()}
            return _form(found, shown, invalid.errors, status=400)
        account = require_account(request)
        version = await service.publish(db, found, publication, user_id=account.user_id)
        if publication.major and found is Kind.TERMS:  # who publishes a version has read it: not asked again
            await service.accept_terms(db, account.user_id, version, datetime.now(UTC))
            update_account(request, msgspec.structs.replace(account, terms_version=version))
        return Redirect(f"{ADMIN_PAGE}?publie={found.value}-{version}", status_code=303)
