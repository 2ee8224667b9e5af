"""The guardian's page (`/snu/consentement?jeton=`): GET shows what they consent to, a POST with their name and their
answer records it, once. Nobody needs an account: the signed link is the guardian's only key."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Template

from app.accounts.controllers import PRIVATE
from app.deps import Db, Web
from app.text_rules import TextFields
from app.youth import consent
from app.youth.consent import ConsentAlreadyDecided, ConsentView
from app.youth.links import YouthLinkExpired, YouthLinkInvalid
from app.youth.models import ConsentDecision
from app.youth.pages import INVALID_LINK, MAX_BODY, error_page

EXPIRED = ("Ce lien a expiré : la demande d'accord n'est plus valable. Le ou la jeune peut demander au ou à la "
           "référent·e SNU de son département de vous en envoyer une nouvelle.")


def link_invalid(_: Request[Any, Any, Any], __: YouthLinkInvalid) -> Template:
    return error_page(400, INVALID_LINK)


def link_expired(_: Request[Any, Any, Any], __: YouthLinkExpired) -> Template:
    return error_page(410, EXPIRED)


def _page(view: ConsentView, token: str, values: dict[str, Any], errors: dict[str, str], status: int = 200
          ) -> Template:
    context = {"consent": view, "token": token, "values": values, "errors": errors}
    return Template("youth/consentement.html", context=context, status_code=status, headers=PRIVATE)


def _done(decision: str, *, already: bool) -> Template:
    return Template("youth/consentement_fait.html", context={"given": decision == ConsentDecision.GIVEN,
                                                            "already": already}, headers=PRIVATE)


class GuardianConsentPages(Controller):
    path = consent.PATH
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        YouthLinkInvalid: link_invalid, YouthLinkExpired: link_expired,
    }

    @get("/")
    async def form(self, web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        view = await consent.check(db, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        if view.decision is not None:
            return _done(view.decision, already=True)
        return _page(view, jeton, {"signed_name": view.guardian_name}, {})

    @post("/", request_max_body_size=MAX_BODY)
    async def decide(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        form = await request.form()
        token = str(form.get("jeton") or "")
        secret, now = web.settings.secret_key.reveal(), time.time()
        view = await consent.check(db, secret=secret, token=token, now=now)
        if view.decision is not None:
            return _done(view.decision, already=True)
        fields = TextFields(form)
        signed_name = fields.text("signed_name", "Votre prénom et votre nom", consent.SIGNED_NAME_LENGTH,
                                  collapse=True)
        answer = str(form.get("decision") or "")
        errors = dict(fields.refused)
        if not signed_name and "signed_name" not in errors:
            errors["signed_name"] = "Indiquez votre prénom et votre nom : ils valent signature de votre réponse."
        if answer not in (ConsentDecision.GIVEN, ConsentDecision.REFUSED):
            errors["decision"] = "Choisissez votre réponse : donner votre accord ou le refuser."
        if errors:
            return _page(view, token, {"signed_name": signed_name}, errors, status=422)
        try:
            decision = await consent.decide(db, secret=secret, token=token, now=now,
                                            given=answer == ConsentDecision.GIVEN, signed_name=signed_name)
        except ConsentAlreadyDecided as decided:
            return _done(decided.decision, already=True)
        return _done(decision, already=False)
