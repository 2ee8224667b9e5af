"""The agreement's pages: `/snu/convention?jeton=` (a party's signed link: the summary, the PDF, who signed, and the
form that signs, once), `/snu/convention` for the signed-in young person; `/snu/heures?jeton=` where the tutor
declares the hours day by day once everyone signed; `/snu/attestation` (by link, or signed in) serves the certificate
of a completed mission. As for the guardian's consent, a GET changes nothing: only a POST signs or declares."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import signed_in
from app.accounts.sessions import current_account
from app.deps import Db, Web
from app.text_rules import TextFields
from app.volunteers import age
from app.youth import agreements, hours
from app.youth.agreements import AgreementAlreadySigned, AgreementView
from app.youth.hours import HoursRefused, HoursView
from app.youth.links import YouthLinkExpired, YouthLinkInvalid
from app.youth.models import AgreementParty
from app.youth.pages import INVALID_LINK, MAX_BODY, error_page

EXPIRED = ("Ce lien a expiré ou ne sert plus : demandez au ou à la référent·e SNU du département de vous en envoyer un "
           "nouveau.")
NO_AGREEMENT = "Vous n'avez pas encore de contrat d'engagement : il est établi une fois votre mission attribuée."
NO_CERTIFICATE = ("L'attestation n'est pas encore disponible : elle est délivrée une fois les 84 heures de la mission "
                  "déclarées par le tuteur ou la tutrice.")
PARTY_NAMES = {AgreementParty.YOUNG.value: "le ou la jeune",
               AgreementParty.GUARDIAN.value: "le ou la représentant·e légal·e",
               AgreementParty.ORGANISATION.value: "la structure d'accueil (tuteur ou tutrice)",
               AgreementParty.REFERENT.value: "le ou la référent·e SNU"}
PDF_HEADERS = {**PRIVATE, "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def link_invalid(_: Request[Any, Any, Any], __: YouthLinkInvalid) -> Template:
    return error_page(400, INVALID_LINK)


def link_expired(_: Request[Any, Any, Any], __: YouthLinkExpired) -> Template:
    return error_page(410, EXPIRED)


def _pdf(document: bytes, filename: str) -> Response[bytes]:
    return Response(document, media_type="application/pdf",
                    headers={**PDF_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


def _agreement_page(view: AgreementView, token: str, values: dict[str, Any], errors: dict[str, str], *,
                    status: int = 200, notice: str = "") -> Template:
    offer = view.content.get("offer", {})
    context = {"agreement": view, "content": view.content, "token": token, "values": values, "errors": errors,
               "party_names": PARTY_NAMES, "notice": notice,
               "start_date": date.fromisoformat(str(offer.get("start_date"))),
               "end_date": date.fromisoformat(str(offer.get("end_date")))}
    return Template("youth/convention.html", context=context, status_code=status, headers=PRIVATE)


class AgreementPages(Controller):
    path = agreements.PATH
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        YouthLinkInvalid: link_invalid, YouthLinkExpired: link_expired,
    }

    async def _own(self, request: Request[Any, Any, Any], db: Db) -> AgreementView | None:
        account = current_account(request)
        return None if account is None else await agreements.own_agreement(db, account.user_id)

    @get("/")
    async def page(self, request: Request[Any, Any, Any], web: Web, db: Db, jeton: FromQuery[str] = ""
                   ) -> Template:
        if not jeton:
            await signed_in(request, request.route_handler)
            own = await self._own(request, db)
            if own is None:
                return error_page(404, NO_AGREEMENT, action=("/snu", "Mon espace jeune"))
            # The young person's own page signs through the same link the e-mail holds.
            expires_at = int(time.time()) + agreements.SIGNATURE_DAYS * 86_400
            jeton = agreements.signature_token(web.settings.secret_key.reveal(), own.agreement_id,
                                               AgreementParty.YOUNG, expires_at)
        view = await agreements.check(db, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        name, _ = agreements.party_contact(view.content, view.party or "")
        return _agreement_page(view, jeton, {"signed_name": name}, {})

    @get("/pdf")
    async def document(self, request: Request[Any, Any, Any], web: Web, db: Db, jeton: FromQuery[str] = ""
                       ) -> Response[bytes] | Template:
        if jeton:
            view: AgreementView | None = await agreements.check(db, secret=web.settings.secret_key.reveal(),
                                                                token=jeton, now=time.time())
        else:
            await signed_in(request, request.route_handler)
            view = await self._own(request, db)
        if view is None:
            return error_page(404, NO_AGREEMENT, action=("/snu", "Mon espace jeune"))
        return _pdf(view.document(), f"contrat-engagement-{view.agreement_id}.pdf")

    @post("/", request_max_body_size=MAX_BODY)
    async def sign(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        form = await request.form()
        token = str(form.get("jeton") or "")
        secret, now = web.settings.secret_key.reveal(), time.time()
        view = await agreements.check(db, secret=secret, token=token, now=now)
        if view.signed_by_party:
            return _agreement_page(view, token, {}, {}, notice="already")
        fields = TextFields(form)
        signed_name = fields.text("signed_name", "Votre prénom et votre nom", agreements.SIGNED_NAME_LENGTH,
                                  collapse=True)
        errors = dict(fields.refused)
        if not signed_name and "signed_name" not in errors:
            errors["signed_name"] = "Indiquez votre prénom et votre nom : ils valent signature du contrat."
        if form.get("accept") != "oui":
            errors["accept"] = "Cochez « J'ai lu et j'accepte » pour signer le contrat."
        if errors:
            return _agreement_page(view, token, {"signed_name": signed_name}, errors, status=422)
        try:
            await agreements.sign(db, secret=secret, token=token, now=now, signed_name=signed_name)
        except AgreementAlreadySigned:
            return _agreement_page(view, token, {}, {}, notice="already")
        await db.flush()
        signed = await agreements.check(db, secret=secret, token=token, now=now)
        return _agreement_page(signed, token, {}, {}, notice="signed")


def _hours_page(view: HoursView, token: str, values: dict[str, Any], errors: dict[str, str], *,
                status: int = 200, notice: str = "") -> Template:
    context = {"hours": view, "token": token, "values": values, "errors": errors, "notice": notice,
               "today": age.today()}
    return Template("youth/heures.html", context=context, status_code=status, headers=PRIVATE)


class HoursPages(Controller):
    path = hours.PATH
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        YouthLinkInvalid: link_invalid, YouthLinkExpired: link_expired,
    }

    @get("/")
    async def page(self, web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        view = await hours.check(db, secret=web.settings.secret_key.reveal(), token=jeton, now=time.time())
        return _hours_page(view, jeton, {}, {})

    @post("/", request_max_body_size=MAX_BODY)
    async def declare(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template:
        form = await request.form()
        token = str(form.get("jeton") or "")
        secret, now = web.settings.secret_key.reveal(), time.time()
        view = await hours.check(db, secret=secret, token=token, now=now)
        fields = TextFields(form)
        raw_day = fields.text("day", "Le jour", 10)
        raw_hours = fields.text("hours", "Les heures", 8)
        values = {"day": raw_day, "hours": raw_hours}
        errors = dict(fields.refused)
        day = hours_value = None
        if "day" not in errors:
            try:
                day = hours.parse_day(raw_day)
            except HoursRefused as refused:
                errors["day"] = refused.message
        if "hours" not in errors:
            try:
                hours_value = hours.parse_hours(raw_hours)
            except HoursRefused as refused:
                errors["hours"] = refused.message
        if day is None or hours_value is None or errors:
            return _hours_page(view, token, values, errors, status=422)
        try:
            completed = await hours.declare(db, placement_id=view.placement_id, day=day, hours=hours_value,
                                            today=age.today())
        except HoursRefused as refused:
            return _hours_page(view, token, values, {"day": refused.message}, status=422)
        await db.flush()
        updated = await hours.check(db, secret=secret, token=token, now=now)
        return _hours_page(updated, token, {}, {}, notice="completed" if completed else "saved")


class CertificatePages(Controller):
    path = hours.CERTIFICATE_PATH
    include_in_schema = False
    exception_handlers = {  # noqa: RUF012 (Litestar reads it from the class)
        YouthLinkInvalid: link_invalid, YouthLinkExpired: link_expired,
    }

    @get("/")
    async def document(self, request: Request[Any, Any, Any], web: Web, db: Db, jeton: FromQuery[str] = ""
                       ) -> Response[bytes] | Template:
        if jeton:
            found = await hours.certificate_of_link(db, secret=web.settings.secret_key.reveal(), token=jeton,
                                                    now=time.time())
        else:
            await signed_in(request, request.route_handler)
            account = current_account(request)
            assert account is not None
            placement_id = await hours.own_placement(db, account.user_id)
            found = None if placement_id is None else await hours.certificate(db, placement_id)
        if found is None:
            return error_page(404, NO_CERTIFICATE, action=("/snu", "Mon espace jeune"))
        return _pdf(found.document(), f"attestation-mig-{found.placement_id}.pdf")
