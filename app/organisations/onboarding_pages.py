"""Registering an organisation without an account (`/inscription/structure`) and accepting an invitation to
manage one (`/invitation`). Accepting signs in only an address that had no account: one that had is told to sign in
as usual (unless this browser is signed in as it already), so an invitation never works as a days-long sign-in link
to an existing account. The confirmation page before it reads the same either way."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.service import SignInRateLimited
from app.accounts.sessions import current_account, end_session, start_session, update_account
from app.deps import Db, Web
from app.http import client_ip
from app.legal import service as legal_service
from app.organisations import invitations, onboarding
from app.organisations.controllers import FIELDS, MAX_BODY, form_context
from app.organisations.invitations import InvitationExpired, InvitationInvalid
from app.organisations.validation import OrganisationInvalid
from app.state import WebState

SIGNUP_FIELDS = (*FIELDS, "email", onboarding.HONEYPOT_FIELD)
MAX_TOKEN_BODY = 4_096


def _page(status: int, message: str, action: tuple[str, str] | None = None,
          headers: dict[str, str] | None = None) -> Template:
    context = {"status": status, "message": message, "action": action, "errors": {}}
    return Template("error.html", context=context, status_code=status, headers={**PRIVATE, **(headers or {})})


def invitation_invalid(_: Request[Any, Any, Any], __: InvitationInvalid) -> Response[Any]:
    return _page(400, "Ce lien d'invitation n'est pas valide : il a peut-être été mal copié depuis l'e-mail. "
                      "Ouvrez-le à nouveau depuis le message reçu, en entier.")


def invitation_expired(_: Request[Any, Any, Any], __: InvitationExpired) -> Response[Any]:
    return _page(410, "Ce lien d'invitation a expiré, a déjà servi ou a été annulé : chaque lien ne sert qu'une "
                      "fois. Demandez une nouvelle invitation à un·e gestionnaire de la structure, ou inscrivez de "
                      "nouveau votre structure.", action=("/inscription/structure", "Inscrire une structure"))


def _form(web: WebState, values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Template:
    context = form_context(web, {k: v for k, v in values.items() if k != onboarding.HONEYPOT_FIELD}, errors,
                           "/inscription/structure")
    return Template("inscription_structure.html", context=context, status_code=status, headers=PRIVATE)


class OrganisationSignupPages(Controller):
    path = "/inscription/structure"
    include_in_schema = False

    @get("/")
    async def form(self, request: Request[Any, Any, Any], web: Web) -> Template | Redirect:
        if current_account(request) is not None:
            return Redirect("/organisations/nouvelle", status_code=303)
        return _form(web, {}, {})

    @post("/", request_max_body_size=MAX_BODY)
    async def submit(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template | Redirect:
        if current_account(request) is not None:
            return Redirect("/organisations/nouvelle", status_code=303)
        form = await request.form()
        values = {field: form.get(field) or "" for field in SIGNUP_FIELDS}
        settings = web.settings
        try:
            await onboarding.register_unclaimed(
                db, data=values, postcodes=web.postcodes, limiter=web.signin_limiter,
                client_ip=client_ip(request, settings.trusted_proxy_hops), secret=settings.secret_key.reveal(),
                invitation_days=settings.invitation_days,
                terms_version=(await legal_service.current_versions(db, web.redis)).terms,
            )
        except OrganisationInvalid as invalid:
            return _form(web, values, invalid.errors, status=422)
        except SignInRateLimited as limited:
            return _page(429, "Trop de demandes depuis votre connexion internet. Réessayez dans une minute.",
                         headers={"Retry-After": str(limited.retry_after)})
        return Template("inscription_structure_envoyee.html", context={"days": settings.invitation_days},
                        headers=PRIVATE)


class InvitationPages(Controller):
    path = "/invitation"
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        InvitationInvalid: invitation_invalid, InvitationExpired: invitation_expired,
    }

    @get("/")
    async def confirm_form(self, web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        # A page with a button rather than accepting on GET: mail scanners that open links do not burn them.
        invitation = await invitations.check(db, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        return Template("invitation.html", context={"token": jeton, "invitation": invitation}, headers=PRIVATE)

    @post("/", request_max_body_size=MAX_TOKEN_BODY)
    async def accept(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Redirect | Template:
        token = (await request.form()).get("jeton") or ""
        accepted = await invitations.accept(db, secret=web.settings.secret_key.reveal(), token=str(token),
                                            now=time.time())
        current = current_account(request)
        if current is not None and current.user_id == accepted.user_id:
            update_account(request, msgspec.structs.replace(current, roles=accepted.roles))
            return Redirect("/mon-espace/structures", status_code=303)
        if current is not None:
            end_session(request)  # whoever else was signed in in this browser is signed out first
        if accepted.account is None:
            # The address has an account: it signs in as usual, the invitation never stands in for that.
            return Template("invitation_acceptee.html", context={"organisation_name": accepted.organisation_name},
                            headers=PRIVATE)
        start_session(request, accepted.account)
        return Redirect("/mon-espace/structures", status_code=303)
