"""The young people's pages: `/snu` (their home), `/snu/inscription` (signing up into an open cohort, then the
e-mailed confirmation) and `/snu/invitation` (a referent's invitation). A link opened by GET shows a page with a
button or a form; only a POST acts, so mail scanners that open links never use them. Signing up answers the same
whether the address is known or not."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import signed_in
from app.accounts.service import SignInRateLimited
from app.accounts.sessions import current_account, end_session, start_session
from app.deps import Db, Web
from app.http import client_ip
from app.state import WebState
from app.volunteers import age
from app.youth import cohorts, service
from app.youth.links import YouthLinkExpired, YouthLinkInvalid
from app.youth.models import Cohort
from app.youth.pages import INVALID_LINK, MAX_BODY, error_page, form_values, person_context
from app.youth.service import CohortClosed, Created, YouthAlreadyRegistered
from app.youth.validation import YouthInvalid, validate_youth

HONEYPOT = "website"
EXPIRED_LINK = "Ce lien a expiré ou a déjà servi : chaque lien ne sert qu'une fois."
ALREADY = ("Vous avez déjà un espace jeune sur Renfort : connectez-vous avec votre adresse e-mail pour le retrouver.")


def link_invalid(_: Request[Any, Any, Any], __: YouthLinkInvalid) -> Template:
    return error_page(400, INVALID_LINK)


def link_expired(_: Request[Any, Any, Any], __: YouthLinkExpired) -> Template:
    return error_page(410, EXPIRED_LINK, action=("/snu/inscription", "S'inscrire au SNU"))


def _welcome(request: Request[Any, Any, Any], created: Created) -> Redirect | Template:
    """Signs in an address that had no account; one that had signs in as usual."""
    current = current_account(request)
    if current is not None and current.user_id == created.user_id:
        return Redirect("/snu", status_code=303)
    if current is not None:
        end_session(request)  # whoever else was signed in in this browser is signed out first
    if created.account is None:
        return Template("youth/compte_cree.html", context={"status": created.status}, headers=PRIVATE)
    start_session(request, created.account)
    return Redirect("/snu", status_code=303)


class YouthPages(Controller):
    path = "/snu"
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        YouthLinkInvalid: link_invalid, YouthLinkExpired: link_expired,
    }

    @get("/", guards=[signed_in])
    async def home(self, request: Request[Any, Any, Any], db: Db) -> Template:
        account = current_account(request)
        assert account is not None
        found = await service.home(db, account.user_id)
        return Template("youth/accueil.html", context={"home": found}, headers=PRIVATE)

    async def _signup_page(self, web: WebState, db: Any, values: dict[str, Any], errors: dict[str, str],
                           status: int = 200) -> Template:
        context = person_context(web, {k: v for k, v in values.items() if k != HONEYPOT}, errors)
        context["cohorts"] = await cohorts.list_cohorts(db, open_only=True)
        return Template("youth/inscription.html", context=context, status_code=status, headers=PRIVATE)

    @get("/inscription")
    async def signup_form(self, web: Web, db: Db) -> Template:
        return await self._signup_page(web, db, {}, {})

    @post("/inscription", request_max_body_size=MAX_BODY)
    async def signup(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        values = form_values(await request.form())
        if values.get(HONEYPOT):
            return Template("youth/inscription_envoyee.html", headers=PRIVATE)  # the same answer, nothing queued
        cohort = await self._open_cohort(db, values.get("cohort_id"))
        if cohort is None:
            return await self._signup_page(web, db, values, {"cohort_id": "Choisissez une cohorte ouverte aux "
                                                                           "inscriptions."}, status=422)
        try:
            valid = validate_youth(values, web.postcodes, cohort, age.today())
            await service.request_signup(web.redis, web.rq_connection, web.signin_limiter, cohort_id=cohort.id,
                                         valid=valid, client_ip=client_ip(request, web.settings.trusted_proxy_hops))
        except YouthInvalid as invalid:
            return await self._signup_page(web, db, values, invalid.errors, status=422)
        except SignInRateLimited as limited:
            page = error_page(429, "Trop de demandes depuis cette connexion : réessayez dans quelques minutes.")
            page.headers["Retry-After"] = str(limited.retry_after)
            return page
        return Template("youth/inscription_envoyee.html", headers=PRIVATE)

    @staticmethod
    async def _open_cohort(db: Any, raw: object) -> Cohort | None:
        text = str(raw or "").strip()
        if not text.isdecimal() or len(text) > 18:
            return None
        cohort = await db.get(Cohort, int(text))
        return cohort if cohort is not None and cohort.open_for_signup else None

    @get("/inscription/confirmer")
    async def confirm_form(self, web: Web, jeton: FromQuery[str] = "") -> Template:
        await service.check_signup(web.redis, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        return Template("youth/inscription_confirmer.html", context={"token": jeton}, headers=PRIVATE)

    @post("/inscription/confirmer", request_max_body_size=MAX_BODY)
    async def confirm(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Redirect | Template:
        token = (await request.form()).get("jeton") or ""
        try:
            created = await service.confirm_signup(db, web.redis, secret=web.settings.secret_key.reveal(),
                                                   token=token, now=time.time())
        except CohortClosed as closed:
            return error_page(409, closed.message, action=("/snu/inscription", "Voir les cohortes ouvertes"))
        except YouthAlreadyRegistered:
            return error_page(409, ALREADY, action=("/connexion", "Se connecter"))
        return _welcome(request, created)

    @get("/invitation")
    async def invitation_form(self, web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        invitation = await service.check_invitation(db, secret=web.settings.secret_key.reveal(), token=jeton,
                                                    now=time.time())
        values = {"first_name": invitation.first_name, "last_name": invitation.last_name}
        return self._invitation_page(web, invitation, jeton, values, {})

    @staticmethod
    def _invitation_page(web: WebState, invitation: service.InvitationView, token: str, values: dict[str, Any],
                         errors: dict[str, str], status: int = 200) -> Template:
        context = person_context(web, values, errors) | {"invitation": invitation, "token": token}
        return Template("youth/invitation.html", context=context, status_code=status, headers=PRIVATE)

    @post("/invitation", request_max_body_size=MAX_BODY)
    async def accept_invitation(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Redirect | Template:
        values = form_values(await request.form())
        token = str(values.pop("jeton", "") or "")
        now = time.time()
        invitation = await service.check_invitation(db, secret=web.settings.secret_key.reveal(), token=token, now=now)
        try:
            valid = validate_youth(values, web.postcodes, invitation.cohort, age.today(), email=invitation.email)
        except YouthInvalid as invalid:
            return self._invitation_page(web, invitation, token, values, invalid.errors, status=422)
        try:
            created = await service.accept_invitation(db, invitation=invitation, valid=valid, now=now)
        except YouthAlreadyRegistered:
            return error_page(409, ALREADY, action=("/connexion", "Se connecter"))
        return _welcome(request, created)
