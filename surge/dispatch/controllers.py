"""Dispatch pages: the coordinators' runs of an emergency (`/coordination/urgences/{slug}/mobilisation`: plan,
preview, commit, cancel) and the volunteers' answer to a proposal (`/mobilisation/confirmer|decliner?jeton=`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import privileged, require_account
from app.applications.models import Application
from app.db.base import unit_of_work
from app.deps import Db, Web
from app.formats import integer
from app.geo.models import Commune
from app.http import RowId
from app.maps.render import Choropleth, choropleth
from app.reference import AVAILABILITY, DOMAINS
from app.text_rules import TextFields
from app.volunteers.models import Volunteer
from queues import enqueue
from surge.dispatch import links, runs
from surge.emergencies.models import Emergency

MAX_BODY = 65_536  # a thousand mission boxes ticked
MAX_MISSIONS = 5_000
# The confirmations a redirect names by code (`?fait=`): the run page never shows text from its URL.
DONE = {
    "envoi-lance": "Envoi des propositions lancé.",
    "deja-engagee": "Cette mobilisation est déjà engagée : rien n'est refait.",
    "annulee-retiree": "Mobilisation annulée : les propositions sans réponse sont retirées et leurs places libérées.",
    "annulee": "Mobilisation annulée.",
}


def _page(status: int, message: str, action: tuple[str, str] | None = None) -> Template:
    return Template("error.html", context={"status": status, "message": message, "action": action},
                    status_code=status, headers=PRIVATE)


def _handlers() -> dict[int | type[Exception], Callable[[Request[Any, Any, Any], Any], Response[Any]]]:
    back = ("/mon-espace", "Revenir à mon espace")

    def handler(status: int, message: str, action: tuple[str, str] | None = None
                ) -> Callable[[Request[Any, Any, Any], Any], Response[Any]]:
        return lambda request, error: _page(status, getattr(error, "message", message), action)

    return {
        runs.EmergencyMissing: handler(404, "Cette urgence n'existe pas."),
        runs.DispatchForbidden: handler(403, "Seule la coordination nationale ou celle d'un département de cette "
                                             "urgence peut mobiliser ses bénévoles.", back),
        runs.RunMissing: handler(404, "Cette mobilisation n'existe pas pour cette urgence."),
        runs.RunRefused: handler(409, ""),
        links.LinkInvalid: handler(400, "Ce lien n'est pas valide : il a peut-être été mal copié depuis l'e-mail. "
                                        "Ouvrez-le à nouveau depuis le message reçu."),
        links.LinkExpired: handler(410, "Ce lien a expiré : la proposition a été retirée et la place proposée à "
                                        "une autre personne. Merci pour votre disponibilité.",
                                   ("/missions", "Voir les missions ouvertes")),
        runs.ProposalGone: handler(410, "Vous avez déjà répondu à cette proposition, ou elle n'est plus valable "
                                        "(expirée ou retirée par la coordination). Retrouvez vos missions dans "
                                        "votre espace.", ("/mon-espace/candidatures", "Voir mes missions")),
    }


def _form_page(emergency: Emergency, views: list[runs.RunView], choices: list[runs.MissionChoice],
               values: dict[str, Any], errors: dict[str, str], status: int = 200) -> Template:
    context = {"emergency": emergency, "runs": views, "choices": choices, "values": values, "errors": errors,
               "pools": runs.POOLS, "domains": DOMAINS, "availability": AVAILABILITY}
    return Template("mobilisation.html", context=context, status_code=status, headers=PRIVATE)


def _form_values(form: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The dispatch form through the text rule: (values for runs.parse_parameters, refusals per field)."""
    fields = TextFields({"pool": form.get("pool"), "max_km": form.get("max_km"), "domains": form.getall("domains", []),
                         "availability": form.getall("availability", []), "missions": form.getall("missions", [])})
    values = {
        "pool": fields.text("pool", "Bénévoles à mobiliser", 32),
        "max_km": fields.text("max_km", "Distance maximale", 32),
        "domains": fields.items("domains", "Domaines des bénévoles", max_items=len(DOMAINS), max_length=40),
        "availability": fields.items("availability", "Disponibilités", max_items=len(AVAILABILITY), max_length=40),
        "missions": fields.items("missions", "Missions", max_items=MAX_MISSIONS, max_length=19),
    }
    return values, fields.refused


async def _names(session: AsyncSession, volunteer_ids: list[int]) -> dict[int, str]:
    rows = await session.execute(
        select(Volunteer.id, Volunteer.first_name, Volunteer.last_name, Commune.name)
        .join(Commune, Commune.code == Volunteer.commune_code).where(Volunteer.id.in_(volunteer_ids))
    )
    return {i: f"{first} {last[:1]}. ({commune})" for i, first, last, commune in rows}


def _coverage_map(emergency: Emergency, preview: dict[str, Any]) -> Choropleth | None:
    """The share of the open places the plan fills, by department of the missions."""
    departments = preview.get("departments") or []
    if not departments:
        return None
    shares = {str(d["code"]): 100 * int(d["proposed"]) / int(d["open"]) if int(d["open"]) else None
              for d in departments}
    return choropleth(shares, caption="Couverture des besoins par le plan, par département des missions",
                      unit="part des places ouvertes pourvues, en %", scope=[*emergency.departments, *shares],
                      shown=lambda share: f"{integer(share)}\u00a0%", resolution=1, up_to=100,
                      no_data="aucune place ouverte visée", outside="hors du périmètre de l'urgence")


class DispatchPages(Controller):
    path = "/coordination/urgences/{slug:str}/mobilisation"
    include_in_schema = False
    exception_handlers = _handlers()

    @get("/", guards=[privileged])
    async def runs_page(self, request: Request[Any, Any, Any], slug: FromPath[str], db: Db) -> Template:
        emergency = await runs.emergency_for(db, slug, require_account(request).roles)
        choices = await runs.mission_choices(db, emergency.slug)
        values = {"pool": "les-deux", "max_km": "50", "missions": [c.id for c in choices], "domains": [],
                  "availability": []}
        return _form_page(emergency, await runs.runs_of(db, emergency), choices, values, {})

    @post("/", guards=[privileged], request_max_body_size=MAX_BODY)
    async def plan(self, request: Request[Any, Any, Any], slug: FromPath[str], web: Web) -> Template | Redirect:
        account = require_account(request)
        values, refused = _form_values(await request.form())
        async with unit_of_work(web.engine, web.clients) as session:
            emergency = await runs.emergency_for(session, slug, account.roles)
            choices = await runs.mission_choices(session, emergency.slug)
            try:
                if refused:
                    raise runs.RunInvalid(refused)
                parameters = runs.parse_parameters(values, choices)
            except runs.RunInvalid as invalid:
                return _form_page(emergency, await runs.runs_of(session, emergency), choices, values, invalid.errors,
                                  status=422)
            run_id = await runs.create_run(session, emergency, parameters, account.user_id)
        # After the commit, so the job finds the run.
        await asyncio.to_thread(enqueue.plan_dispatch, web.rq_connection, run_id)
        return Redirect(f"/coordination/urgences/{emergency.slug}/mobilisation/{run_id}", status_code=303)

    @get("/{run_id:int}", guards=[privileged])
    async def run_page(self, request: Request[Any, Any, Any], slug: FromPath[str], run_id: RowId, db: Db,
                       fait: FromQuery[str | None] = None) -> Template:
        emergency = await runs.emergency_for(db, slug, require_account(request).roles)
        view = await runs.run_of(db, emergency, run_id)
        unassigned = view.run.preview.get("unassigned", [])
        names = await _names(db, [int(u["volunteer_id"]) for u in unassigned])
        answers = {status: count for status, count in await db.execute(
            select(Application.status, func.count()).where(Application.dispatch_run_id == run_id)
            .group_by(Application.status)
        )}
        context = {"emergency": emergency, "view": view, "run": view.run, "names": names, "answers": answers,
                   "info": DONE.get(fait or ""), "waiting": runs.WAITING.get(view.run.status),
                   "coverage_map": _coverage_map(emergency, view.run.preview)}
        return Template("mobilisation_plan.html", context=context, headers=PRIVATE)

    @get("/{run_id:int}/etat", guards=[privileged])
    async def run_progress(self, request: Request[Any, Any, Any], slug: FromPath[str], run_id: RowId,
                           db: Db) -> Response[runs.RunProgress]:
        """The run page's poll while a job works on the run: guarded like the page."""
        emergency = await runs.emergency_for(db, slug, require_account(request).roles)
        return Response(runs.progress((await runs.run_of(db, emergency, run_id)).run), headers=PRIVATE)

    @post("/{run_id:int}/engager", guards=[privileged])
    async def commit(self, request: Request[Any, Any, Any], slug: FromPath[str], run_id: RowId,
                     web: Web) -> Redirect:
        account = require_account(request)
        async with unit_of_work(web.engine, web.clients) as session:
            emergency = await runs.emergency_for(session, slug, account.roles)
            start = await runs.request_commit(session, emergency, run_id, account.user_id)
        if start:
            await asyncio.to_thread(enqueue.commit_dispatch, web.rq_connection, run_id)
        done = "envoi-lance" if start else "deja-engagee"
        return Redirect(f"/coordination/urgences/{emergency.slug}/mobilisation/{run_id}?fait={done}", status_code=303)

    @post("/{run_id:int}/annuler", guards=[privileged])
    async def cancel(self, request: Request[Any, Any, Any], slug: FromPath[str], run_id: RowId,
                     web: Web) -> Redirect:
        account = require_account(request)
        async with unit_of_work(web.engine, web.clients) as session:
            emergency = await runs.emergency_for(session, slug, account.roles)
            withdraw = await runs.request_cancel(session, emergency, run_id, account.user_id)
        if withdraw:
            await asyncio.to_thread(enqueue.withdraw_dispatch, web.rq_connection, run_id)
        done = "annulee-retiree" if withdraw else "annulee"
        return Redirect(f"/coordination/urgences/{emergency.slug}/mobilisation/{run_id}?fait={done}", status_code=303)


class ProposalPages(Controller):
    """The links of a proposal e-mail. GET shows a page with one button, POST answers: mail scanners that open
    links do not answer for the volunteer."""

    path = "/mobilisation"
    include_in_schema = False
    exception_handlers = _handlers()

    @get("/{action:str}")
    async def confirm_form(self, action: FromPath[str], web: Web, db: Db, jeton: FromQuery[str] = "") -> Template:
        link = self._read(web, action, jeton)
        proposal = await runs.describe(db, link)
        context = {"action": action, "token": jeton, "proposal": proposal}
        return Template("mobilisation_reponse.html", context=context, headers=PRIVATE)

    @post("/{action:str}", request_max_body_size=4_096)
    async def answer(self, request: Request[Any, Any, Any], action: FromPath[str], web: Web) -> Response[Any]:
        token = str((await request.form()).get("jeton") or "")
        link = self._read(web, action, token)
        if await runs.answer(web.places, web.engine, link):
            await web.request_drain(enqueue.drain_applications)
        return Template("mobilisation_reponse_faite.html", context={"action": action}, headers=PRIVATE)

    @staticmethod
    def _read(web: Any, action: str, token: str) -> links.ProposalLink:
        if action not in links.ACTIONS:
            raise NotFoundException
        return links.read(web.settings.secret_key.reveal(), action, token, time.time())
