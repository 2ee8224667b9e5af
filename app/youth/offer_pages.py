"""MIG offers' pages: a mission's managers open it to the SNU (`/missions/{id}/snu`), edit, withdraw and reopen its
offer; referents validate or refuse the offers of their departments (`/snu/referent/offres`)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import RoleRequired, privileged, require_account, require_current_account
from app.deps import Db
from app.http import RowId
from app.legal.consent import check_terms
from app.missions import service as missions
from app.missions.models import Mission
from app.volunteers import age
from app.youth import offers
from app.youth.models import YouthOffer
from app.youth.offers import OfferInUse, OfferNotFound, OfferRefused
from app.youth.pages import MAX_BODY, error_page, form_values
from app.youth.validation import YouthInvalid

REFERENT = "/snu/referent/offres"
NOT_FOUND = "Cette offre n'existe pas, ou elle concerne un département dont vous n'êtes pas référent·e."
NO_OFFER = "Cette mission n'est pas encore ouverte aux jeunes du SNU."
NOTICES = {"enregistree": "Offre enregistrée : elle attend la validation du ou de la référent·e SNU de son "
                          "département.",
           "relecture": "Vos modifications sont enregistrées : l'offre n'est plus validée et attend à nouveau la "
                        "validation du ou de la référent·e SNU de son département.",
           "modifiee": "Vos modifications sont enregistrées.",
           "retiree": "Offre retirée : les jeunes ne la voient plus.",
           "rouverte": "Offre rouverte : elle attend à nouveau la validation du ou de la référent·e SNU."}
REFUSALS = {"retirer": offers.ALREADY_WITHDRAWN, "rouvrir": offers.NOT_WITHDRAWN}
DECISIONS = {"validee": "Offre validée : son tuteur ou sa tutrice est prévenu·e par e-mail.",
             "refusee": "Offre refusée : la structure lit votre motif sur son offre, et son tuteur ou sa tutrice est "
                        "prévenu·e par e-mail."}


async def offer_referent(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Referents (each decision checks the department), national coordinators and administrators."""
    account = await require_current_account(connection)
    await check_terms(connection, account)
    if not (account.roles.moderator or account.roles.national_coordinator):
        raise RoleRequired


def _values_of(offer: YouthOffer) -> dict[str, Any]:
    return {"places": str(offer.places), "start_date": offer.start_date.isoformat(),
            "end_date": offer.end_date.isoformat(), "hours": str(offer.hours),
            "tutor_user_id": str(offer.tutor_user_id or "")}


async def _managed(request: Request[Any, Any, Any], db: AsyncSession, mission_id: int) -> Mission:
    """The mission, when the person manages its organisation (else the missions' 404 or 403 page)."""
    mission, _ = await missions.load(db, mission_id)
    missions.check_manager(require_account(request).roles, mission)
    return mission


async def _form(db: AsyncSession, mission: Mission, values: dict[str, Any], errors: dict[str, str],
                offer: YouthOffer | None, *, status: int = 200) -> Template:
    context = {"mission": mission, "offer": offer, "values": values, "errors": errors,
               "tutors": await offers.tutors_of(db, mission.organisation_id),
               "max_places": min(offers.MAX_PLACES, mission.places), "labels": offers.STATUS_LABELS}
    return Template("youth/offre_form.html", context=context, status_code=status, headers=PRIVATE)


class MissionOfferPages(Controller):
    path = "/missions/{mission_id:int}/snu"
    guards = [privileged]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False

    @get("/")
    async def show(self, request: Request[Any, Any, Any], mission_id: RowId, db: Db,
                   fait: FromQuery[str | None] = None, refus: FromQuery[str | None] = None) -> Template:
        mission = await _managed(request, db, mission_id)
        offer = await offers.offer_of_mission(db, mission_id)
        if offer is None:
            return await _form(db, mission, {"hours": str(offers.DEFAULT_HOURS)}, {}, None)
        context = {"mission": mission, "offer": offer, "labels": offers.STATUS_LABELS,
                   "notice": NOTICES.get(fait or ""), "refused": REFUSALS.get(refus or ""),
                   "tutor": next((tutor for tutor in await offers.tutors_of(db, mission.organisation_id)
                                  if tutor.user_id == offer.tutor_user_id), None)}
        return Template("youth/offre.html", context=context, headers=PRIVATE)

    @get("/modifier")
    async def edit(self, request: Request[Any, Any, Any], mission_id: RowId, db: Db) -> Template:
        mission = await _managed(request, db, mission_id)
        offer = await offers.offer_of_mission(db, mission_id)
        if offer is None:
            return await _form(db, mission, {"hours": str(offers.DEFAULT_HOURS)}, {}, None)
        return await _form(db, mission, _values_of(offer), {}, offer)

    @post("/", request_max_body_size=MAX_BODY)
    async def save(self, request: Request[Any, Any, Any], mission_id: RowId, db: Db) -> Template | Redirect:
        mission = await _managed(request, db, mission_id)
        values = form_values(await request.form())
        try:
            valid = offers.validate_offer(values, mission_places=mission.places,
                                          tutors=await offers.tutors_of(db, mission.organisation_id),
                                          today=age.today())
        except YouthInvalid as invalid:
            return await _form(db, mission, values, invalid.errors, await offers.offer_of_mission(db, mission_id),
                               status=422)
        existing = await offers.offer_of_mission(db, mission_id)
        try:
            saved = await offers.save_offer(db, mission, valid)
        except OfferInUse as in_use:
            return await _form(db, mission, values, {"places": in_use.message}, existing, status=409)
        existed = existing is not None
        done = "relecture" if saved.sent_back else "modifiee" if existed else "enregistree"
        return Redirect(f"/missions/{mission_id}/snu?fait={done}", status_code=303)

    @post("/{action:str}", request_max_body_size=MAX_BODY)
    async def change(self, request: Request[Any, Any, Any], mission_id: RowId, action: str,
                     db: Db) -> Template | Redirect:
        """`retirer` (no young person sees it any more) or `rouvrir` (back to the referents)."""
        await _managed(request, db, mission_id)
        if action not in ("retirer", "rouvrir"):
            return error_page(404, "Cette action n'existe pas.", action=(f"/missions/{mission_id}/snu",
                                                                          "Revenir à l'offre"))
        try:
            if action == "retirer":
                await offers.withdraw(db, mission_id)
            else:
                await offers.reopen(db, mission_id)
        except OfferNotFound:
            return error_page(404, NO_OFFER, action=(f"/missions/{mission_id}/snu", "Ouvrir la mission au SNU"))
        except OfferInUse as in_use:
            return error_page(409, in_use.message, action=(f"/missions/{mission_id}/snu", "Revenir à l'offre"))
        except OfferRefused:
            return Redirect(f"/missions/{mission_id}/snu?refus={action}", status_code=303)
        done = "retiree" if action == "retirer" else "rouverte"
        return Redirect(f"/missions/{mission_id}/snu?fait={done}", status_code=303)


class ReferentOfferPages(Controller):
    path = REFERENT
    guards = [offer_referent]  # noqa: RUF012 (Litestar reads it from the class)
    include_in_schema = False

    async def _list(self, request: Request[Any, Any, Any], db: AsyncSession, *, done: str | None = None,
                    errors: dict[str, str] | None = None, refusing: int | None = None, values: dict[str, Any] | None
                    = None, status: int = 200) -> Template:
        account = await require_current_account(request)
        context = {"offers": await offers.awaiting_offers(db, account.roles), "done": DECISIONS.get(done or ""),
                   "errors": errors or {}, "refusing": refusing, "values": values or {},
                   "max_reason": offers.REASON_LENGTH}
        return Template("youth/referent_offres.html", context=context, status_code=status, headers=PRIVATE)

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: Db, fait: FromQuery[str | None] = None) -> Template:
        return await self._list(request, db, done=fait)

    @post("/{offer_id:int}/valider", request_max_body_size=MAX_BODY)
    async def validate(self, request: Request[Any, Any, Any], offer_id: RowId, db: Db) -> Template | Redirect:
        account = await require_current_account(request)
        try:
            await offers.decide(db, offer_id, roles=account.roles, decided_by=account.user_id, validated=True)
        except OfferNotFound:
            return error_page(404, NOT_FOUND, action=(REFERENT, "Revenir aux offres"))
        except OfferRefused as refused:
            return error_page(409, refused.message, action=(REFERENT, "Revenir aux offres"))
        return Redirect(f"{REFERENT}?fait=validee", status_code=303)

    @post("/{offer_id:int}/refuser", request_max_body_size=MAX_BODY)
    async def refuse(self, request: Request[Any, Any, Any], offer_id: RowId, db: Db) -> Template | Redirect:
        account = await require_current_account(request)
        values = form_values(await request.form())
        try:
            reason = offers.validate_reason(values)
            await offers.decide(db, offer_id, roles=account.roles, decided_by=account.user_id, validated=False,
                                reason=reason)
        except YouthInvalid as invalid:
            visible = any(row.id == offer_id for row in await offers.awaiting_offers(db, account.roles))
            if not visible:
                return error_page(404, NOT_FOUND, action=(REFERENT, "Revenir aux offres"))
            return await self._list(request, db, errors=invalid.errors, refusing=offer_id, values=values,
                                    status=422)
        except OfferNotFound:
            return error_page(404, NOT_FOUND, action=(REFERENT, "Revenir aux offres"))
        except OfferRefused as refused:
            return error_page(409, refused.message, action=(REFERENT, "Revenir aux offres"))
        return Redirect(f"{REFERENT}?fait=refusee", status_code=303)

