"""The young person's choice of mission: `/snu/missions` (the offers open to them, with filters) and `/snu/voeux`
(their ranked list: add, move up or down, remove; each a POST form with its CSRF token). Anyone signed in without a
youth record is sent to `/snu`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import signed_in
from app.accounts.sessions import current_account
from app.deps import Db
from app.reference import DOMAINS
from app.youth import choice_filters, choosing, service
from app.youth.choice_filters import RADII_KM
from app.youth.choosing import ChoiceRefused, ChoosingState
from app.youth.models import Cohort, YoungPerson
from app.youth.pages import MAX_BODY, form_values

MISSIONS_PATH = "/snu/missions"
CHOICES_PATH = "/snu/voeux"
BAD_OFFER = "Ce vœu n'est pas valide : choisissez une mission dans la liste des missions."
DONE = {
    "ajoute": "La mission est ajoutée à vos vœux.",
    "deplace": "L'ordre de vos vœux est modifié.",
    "retire": "La mission est retirée de vos vœux.",
}
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def _offer_id(raw: object) -> int | None:
    text = str(raw or "").strip()
    if not text.isascii() or not text.isdecimal() or len(text) > 18:
        return None
    value = int(text)
    return value if 0 < value <= choosing.BIGINT_MAX else None


async def _young(request: Request[Any, Any, Any], db: Any) -> YoungPerson | None:
    account = current_account(request)
    assert account is not None  # the `signed_in` guard
    return await service.young_person_of(db, account.user_id)


class ChoicePages(Controller):
    path = "/snu"
    include_in_schema = False
    guards = [signed_in]  # noqa: RUF012 (Litestar reads it from the class)

    @get("/missions")
    async def missions(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        young = await _young(request, db)
        if young is None:
            return Redirect("/snu", status_code=303)
        cohort = await db.get(Cohort, young.cohort_id)
        assert cohort is not None
        months = choice_filters.months_of(cohort.missions_start, cohort.missions_end)
        filters = choice_filters.parse_filters(request.query_params, months)
        page = await choosing.offers_page(db, young, cohort, filters, MISSIONS_PATH)
        if filters.page > page.pages:  # a page past the last: the last one
            return Redirect(page.pagination.last, status_code=303)
        state, deadline = await choosing.state_of(db, young)
        chosen = {choice.offer_id for choice in await choosing.choices_of(db, young.id)}
        context = {
            "page": page, "filters": filters, "radii": RADII_KM, "domains": DOMAINS,
            "months": [(month.strftime("%Y-%m"), f"{MONTHS[month.month - 1]} {month.year}") for month in months],
            "chosen": chosen, "full": len(chosen) >= choosing.MAX_CHOICES, "open": state == ChoosingState.OPEN,
            "refusal": None if state == ChoosingState.OPEN else choosing.refusal(state, deadline),
            "deadline": deadline, "cohort": cohort,
        }
        return Template("youth/missions.html", context=context, headers=PRIVATE)

    @staticmethod
    async def _list_page(db: Any, young: YoungPerson, *, done: str | None = None, error: str | None = None,
                         status: int = 200) -> Template:
        state, deadline = await choosing.state_of(db, young)
        choices = await choosing.choices_of(db, young.id)
        context = {
            "choices": choices, "open": state == ChoosingState.OPEN, "deadline": deadline,
            "refusal": None if state == ChoosingState.OPEN else choosing.refusal(state, deadline),
            "max_choices": choosing.MAX_CHOICES, "done": done, "error": error,
        }
        return Template("youth/voeux.html", context=context, status_code=status, headers=PRIVATE)

    @get("/voeux")
    async def choices(self, request: Request[Any, Any, Any], db: Db, fait: str = "") -> Template | Redirect:
        young = await _young(request, db)
        if young is None:
            return Redirect("/snu", status_code=303)
        return await self._list_page(db, young, done=DONE.get(fait))

    async def _change(self, request: Request[Any, Any, Any], db: Any, action: str) -> Template | Redirect:
        young = await _young(request, db)
        if young is None:
            return Redirect("/snu", status_code=303)
        offer_id = _offer_id(form_values(await request.form()).get("offre"))
        try:
            if offer_id is None:
                raise ChoiceRefused(BAD_OFFER, 400)
            if action == "ajoute":
                await choosing.add_choice(db, young.id, offer_id)
            elif action == "retire":
                await choosing.remove_choice(db, young.id, offer_id)
            else:
                await choosing.move_choice(db, young.id, offer_id, -1 if action == "monte" else 1)
        except ChoiceRefused as refused:
            return await self._list_page(db, young, error=refused.message, status=refused.status)
        done = "deplace" if action in ("monte", "descend") else action
        return Redirect(f"{CHOICES_PATH}?fait={done}", status_code=303)

    @post("/voeux", request_max_body_size=MAX_BODY)
    async def add(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        return await self._change(request, db, "ajoute")

    @post("/voeux/monter", request_max_body_size=MAX_BODY)
    async def move_up(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        return await self._change(request, db, "monte")

    @post("/voeux/descendre", request_max_body_size=MAX_BODY)
    async def move_down(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        return await self._change(request, db, "descend")

    @post("/voeux/retirer", request_max_body_size=MAX_BODY)
    async def remove(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        return await self._change(request, db, "retire")
