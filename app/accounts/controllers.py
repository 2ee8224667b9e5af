"""Sign-in pages (`/connexion`, `/connexion/lien`), the person's own space (`/mon-espace`: the page, the volunteer's
profile, deleting the account) and sign-out."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import return_path
from app.accounts.deletion import LastAdmin, SoleManager, delete_account
from app.accounts.guards import require_account, require_current_account, signed_in
from app.accounts.schemas import SignedIn
from app.accounts.service import check_link, describe_roles, request_link, sign_in_with_link
from app.accounts.sessions import current_account, end_every_session, end_session, start_session
from app.deps import Db, Web
from app.http import client_ip
from app.legal import consent as legal_consent
from app.organisations import space as organisations_space
from app.organisations.managers import Managed, solely_managed
from app.reference import AVAILABILITY, DOMAINS
from app.state import WebState
from app.volunteers import profile
from app.volunteers.validation import SignupInvalid, validate_profile

MAX_BODY = 4_096
MAX_PROFILE_BODY = 16_384
# Personal pages must never be kept by a shared cache or the browser's back-forward history.
PRIVATE = {"Cache-Control": "no-store"}


class SignInPages(Controller):
    path = "/connexion"
    include_in_schema = False

    @get("/")
    async def form(self, request: Request[Any, Any, Any], deconnexion: FromQuery[str | None] = None,
                   suite: FromQuery[str | None] = None) -> Template:
        context = {"values": {}, "errors": {}, "signed_out": deconnexion is not None,
                   "account": current_account(request), "after": return_path.safe(suite)}
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
                after=form.get("suite") or "",
            )
        except SignupInvalid as invalid:
            context = {"values": {"email": form.get("email") or ""}, "errors": invalid.errors, "signed_out": False,
                       "after": return_path.safe(form.get("suite"))}
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
        used = await sign_in_with_link(
            web.redis, db, secret=web.settings.secret_key.reveal(), token=str(token), now=time.time()
        )
        account, must_accept = await legal_consent.at_sign_in(db, web.redis, used.account)
        start_session(request, account)
        return Redirect(legal_consent.acceptance_location(used.after) if must_accept else used.after, status_code=303)


class AccountPages(Controller):
    include_in_schema = False

    @get("/mon-espace", guards=[signed_in])
    async def space(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        account = await require_current_account(request)  # the roles it lists and links to are the current ones
        roles = await describe_roles(db, account.roles)
        held = account.roles
        managed = await organisations_space.managed_by(db, web.places, account.user_id,
                                                       shown=organisations_space.SPACE_MISSIONS_SHOWN
                                                       ) if held.organisations else []
        context = {"email": account.email, "roles": roles, "moderator": held.moderator, "coordinator": held.coordinator,
                   "admin": held.admin, "mission_templates": held.admin or held.coordinator or held.national_referent,
                   "campaigns": held.admin or held.national_coordinator, "managed": managed,
                   "volunteer": held.volunteer}
        return Template("mon_espace.html", context=context, headers=PRIVATE)

    @post("/deconnexion")
    async def sign_out(self, request: Request[Any, Any, Any]) -> Redirect:
        end_session(request)
        return Redirect("/connexion?deconnexion=1", status_code=303)

    @get("/mon-espace/profil", guards=[signed_in])
    async def profile_form(self, request: Request[Any, Any, Any], web: Web, db: Db,
                           enregistre: FromQuery[str | None] = None) -> Template:
        account = require_account(request)
        try:
            volunteer = await profile.volunteer_of(db, account.user_id)
        except profile.NotAVolunteer:
            return Template("profil_non_benevole.html", headers=PRIVATE)
        return _profile_page(web, account.email, profile.form_values(volunteer), {}, saved=enregistre is not None)

    @post("/mon-espace/profil", guards=[signed_in], request_max_body_size=MAX_PROFILE_BODY)
    async def save_profile(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template | Redirect:
        account = require_account(request)
        form = await request.form()
        values: dict[str, Any] = {key: form.get(key) for key in form if key != "_csrf_token"}
        values["domains"] = form.getall("domains", [])
        try:
            await profile.update_profile(db, account.user_id, validate_profile(values, web.postcodes))
        except SignupInvalid as invalid:
            return _profile_page(web, account.email, values, invalid.errors, status=422)
        except profile.NotAVolunteer:
            return Template("profil_non_benevole.html", headers=PRIVATE)
        return Redirect("/mon-espace/profil?enregistre=1", status_code=303)

    @get("/mon-espace/supprimer", guards=[signed_in])
    async def deletion_form(self, request: Request[Any, Any, Any], db: Db) -> Template:
        account = require_account(request)
        return await _deletion_page(db, account, await solely_managed(db, account.user_id))

    @post("/mon-espace/supprimer", guards=[signed_in], request_max_body_size=MAX_BODY)
    async def erase(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        account = require_account(request)
        try:
            await delete_account(web, db, account)
        except SoleManager as sole:
            return await _deletion_page(db, account, sole.organisations, status=409)
        except LastAdmin:
            return await _deletion_page(db, account, [], status=409, last_admin=True)
        await end_every_session(request, account.user_id)
        return Template("compte_supprime.html", headers=PRIVATE)


async def _deletion_page(db: AsyncSession, account: SignedIn, sole: list[Managed], status: int = 200, *,
                         last_admin: bool = False) -> Template:
    """`sole`: the organisations only this person manages, which hold the deletion back until handed over."""
    context = {"email": account.email, "volunteer": await profile.is_volunteer(db, account.user_id),
               "roles": await describe_roles(db, account.roles), "manager": bool(account.roles.organisations),
               "sole": sole, "refused": status == 409, "last_admin": last_admin}
    return Template("supprimer_compte.html", context=context, status_code=status, headers=PRIVATE)


def _profile_page(web: WebState, email: str, values: dict[str, Any], errors: dict[str, str], *, saved: bool = False,
                  status: int = 200) -> Template:
    communes = web.postcodes.communes(str(values.get("postal_code") or "").replace(" ", ""))
    context = {"email": email, "values": values, "errors": errors, "saved": saved, "domains": DOMAINS,
               "availability": AVAILABILITY, "communes": communes if len(communes) > 1 else ()}
    return Template("mon_profil.html", context=context, status_code=status, headers=PRIVATE)
