"""Sign-in pages (`/connexion`, `/connexion/lien`), the person's own page (`/mon-espace`) and sign-out."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.accounts.guards import require_account, signed_in
from app.accounts.service import check_link, describe_roles, request_link, sign_in_with_link
from app.accounts.sessions import current_account, end_session, start_session
from app.deps import Db, Web
from app.http import client_ip
from app.volunteers.validation import SignupInvalid

MAX_BODY = 4_096
# Personal pages must never be kept by a shared cache or the browser's back-forward history.
PRIVATE = {"Cache-Control": "no-store"}


class SignInPages(Controller):
    path = "/connexion"
    include_in_schema = False

    @get("/")
    async def form(self, request: Request[Any, Any, Any], deconnexion: FromQuery[str | None] = None) -> Template:
        context = {"values": {}, "errors": {}, "signed_out": deconnexion is not None,
                   "account": current_account(request)}
        return Template("connexion.html", context=context)

    @post("/", request_max_body_size=MAX_BODY)
    async def request_link(self, request: Request[Any, Any, Any], web: Web) -> Template:
        form = await request.form()
        settings = web.settings
        try:
            await request_link(
                web.redis,
                web.rq_connection,
                web.signin_limiter,
                email=form.get("email"),
                client_ip=client_ip(request, settings.trusted_proxy_hops),
                link_ttl=settings.signin_link_ttl_seconds,
            )
        except SignupInvalid as invalid:
            context = {"values": {"email": form.get("email") or ""}, "errors": invalid.errors, "signed_out": False}
            return Template("connexion.html", context=context, status_code=422)
        return Template("connexion_envoyee.html", context={"minutes": max(1, settings.signin_link_ttl_seconds // 60)})

    @get("/lien")
    async def confirm_form(self, web: Web, jeton: FromQuery[str] = "") -> Template:
        # A page with a button rather than signing in on GET: mail scanners that open links do not burn them.
        await check_link(web.redis, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        return Template("connexion_lien.html", context={"token": jeton}, headers=PRIVATE)

    @post("/lien", request_max_body_size=MAX_BODY)
    async def confirm(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Redirect:
        token = (await request.form()).get("jeton") or ""
        account = await sign_in_with_link(
            web.redis, db, secret=web.settings.secret_key.reveal(), token=str(token), now=time.time()
        )
        start_session(request, account)
        return Redirect("/mon-espace", status_code=303)


class AccountPages(Controller):
    include_in_schema = False

    @get("/mon-espace", guards=[signed_in])
    async def space(self, request: Request[Any, Any, Any], db: Db) -> Template:
        account = require_account(request)
        roles = await describe_roles(db, account.roles)
        context = {"email": account.email, "roles": roles, "moderator": account.roles.moderator}
        return Template("mon_espace.html", context=context, headers=PRIVATE)

    @post("/deconnexion")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        end_session(request)
        return Redirect("/connexion?deconnexion=1", status_code=303)
