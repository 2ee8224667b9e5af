"""Sign-up: the JSON API (`/api/v1/volunteers`, receipts, communes) and the page `/inscription`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from app.deps import Web
from app.formats import PARIS
from app.geo.index import CommuneChoice
from app.http import client_ip
from app.legal import current as legal_current
from app.reference import AVAILABILITY, DOMAINS
from app.state import WebState
from app.switches import pages as switch_pages
from app.text_rules import TextRefused, clean_text, json_object
from app.volunteers import emergency
from app.volunteers.intake import Accepted
from app.volunteers.schemas import ReceiptStatus, SignupAccepted
from app.volunteers.service import accept_signup
from app.volunteers.validation import SignupInvalid

MAX_BODY = 16_384
IDEMPOTENCY_KEY_LENGTH = 200


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    raw = request.headers.get("idempotency-key") or None
    if raw is None:
        return None
    try:
        return clean_text(raw, "Idempotency-Key", IDEMPOTENCY_KEY_LENGTH) or None
    except TextRefused as refused:
        raise SignupInvalid({"idempotency_key": refused.message}) from None


async def submit(web: WebState, request: Request[Any, Any, Any], data: dict[str, Any]) -> Accepted:
    now = datetime.now(UTC)
    accepted = await accept_signup(
        web.intake,
        web.postcodes,
        data,
        client_ip=client_ip(request, web.settings.trusted_proxy_hops),
        idempotency_key=idempotency_key(request),
        now=now,
        today=now.astimezone(PARIS).date(),
        terms_version=await legal_current.terms_version(web.redis),
    )
    if accepted.drain_needed:
        await web.request_drain()
    return accepted


class VolunteerApi(Controller):
    path = "/api/v1"
    tags = ("bénévoles",)

    @post("/volunteers", status_code=202, request_max_body_size=MAX_BODY)
    async def sign_up(self, request: Request[Any, Any, Any], web: Web) -> Response[SignupAccepted]:
        try:
            data = json_object(await request.body())
        except TextRefused as refused:
            raise SignupInvalid({"body": refused.message}) from None
        accepted = await submit(web, request, data)
        return Response(SignupAccepted(receipt=accepted.receipt), status_code=202)

    @get("/receipts/{receipt:str}")
    async def receipt(self, receipt: FromPath[str], web: Web) -> ReceiptStatus:
        status = await web.signups.receipt_status(receipt) if len(receipt) <= 32 else None
        if status is None:
            raise NotFoundException("Reçu inconnu ou expiré.")
        return ReceiptStatus(receipt=receipt, status=status)

    @get("/communes")
    async def communes(self, postal_code: FromQuery[str], web: Web) -> list[CommuneChoice]:
        return list(web.postcodes.communes(postal_code.strip()))


def _form_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {key: form.get(key) for key in form}
    values["domains"] = form.getall("domains", [])
    values.pop("_csrf_token", None)
    return values


class SignupPages(Controller):
    path = "/inscription"

    async def _page(self, web: WebState, values: dict[str, Any], errors: dict[str, str],
                    status: int = 200) -> Template:
        postal_code = str(values.get("postal_code") or "").strip()
        communes = web.postcodes.communes(postal_code)
        values = {k: v for k, v in values.items() if k != "website"}
        asked = str(values.get("emergency") or "")[:200]
        found, known = await emergency.lookup(web, asked) if asked else (None, True)
        if known:  # an unknown or closed emergency: a plain sign-up, said so on the page
            values["emergency"] = found.slug if found is not None and found.live else ""
        context = {
            "values": values,
            "errors": errors,
            "domains": DOMAINS,
            "availability": AVAILABILITY,
            "communes": communes if len(communes) > 1 else (),
            "emergency": found,
            "emergency_missing": bool(asked) and known and found is None,
        }
        return Template("inscription.html", context=context, status_code=status)

    @get("/")
    async def form(self, web: Web, urgence: FromQuery[str | None] = None) -> Template:
        if not web.switches.redis_reachable:  # where sign-ups wait: said before the form is filled in, not after
            return switch_pages.page(switch_pages.SIGNUP_UNAVAILABLE)
        return await self._page(web, {"emergency": urgence or ""}, {})

    @post("/", request_max_body_size=MAX_BODY)
    async def submit_form(self, request: Request[Any, Any, Any], web: Web) -> Template | Redirect:
        if not web.switches.redis_reachable:  # a Redis error while accepting gets the same page (app/errors.py)
            return switch_pages.page(switch_pages.SIGNUP_UNAVAILABLE)
        values = _form_values(await request.form())
        try:
            accepted = await submit(web, request, values)
        except SignupInvalid as invalid:
            return await self._page(web, values, invalid.errors, status=422)
        return Redirect(f"/inscription/merci?recu={accepted.receipt}", status_code=303)

    @get("/merci")
    async def thanks(self, recu: FromQuery[str] = "") -> Template:
        return Template("inscription_merci.html", context={"receipt": recu})
