"""The switch page, `/administration/interrupteurs`: each switch with its state and a form to turn it on or off
(with an optional reason), this process's load signals, and the journal. Admins only (the guard re-reads the roles
at each request); the page stays open in maintenance and under load shedding (paths.ESSENTIAL)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import admin, require_account
from app.deps import Db, Web
from app.formats import when
from app.state import WebState
from app.switches import service
from app.switches.schemas import ADMIN, DESCRIPTIONS, LABELS, Switch
from app.switches.service import SwitchRefused

PAGE = "/administration/interrupteurs"
MAX_BODY = 4_096
DONE = {
    "active": "L'interrupteur est activé : chaque serveur web l'applique dans les secondes qui viennent.",
    "desactive": "L'interrupteur est désactivé : chaque serveur web revient à la normale dans les secondes qui "
                 "viennent.",
    "inchange": "L'interrupteur était déjà dans cet état : rien n'a changé.",
}


async def _page(web: WebState, db: AsyncSession, *, done: str | None = None, errors: dict[str, str] | None = None,
                values: dict[str, str] | None = None, status: int = 200) -> Template:
    await service.copy_journal(db, web.switches.store)
    board = web.switches
    journal = [
        {"at": when(entry.at, "datetime_seconds"), "switch": LABELS.get(entry.switch, entry.switch),
         "change": f"{'activé' if entry.was_on else 'désactivé'} → {'activé' if entry.on else 'désactivé'}",
         "actor": "commande" if entry.actor != ADMIN else entry.actor_email or "compte supprimé",
         "reason": entry.reason or ""}
        for entry in await service.journal(db)
    ]
    switches = [{"name": switch.value, "label": LABELS[switch], "description": DESCRIPTIONS[switch],
                 "on": switch in board.on} for switch in Switch]
    context = {
        "switches": switches, "journal": journal, "done": done, "errors": errors or {}, "values": values or {},
        "redis_reachable": board.redis_reachable, "shedding": board.shedding,
        "held_jobs": await board.store.held_jobs() if board.redis_reachable else None,
        "queue_age": round(board.queue_age), "loop_lag_ms": round(board.loop_lag * 1000),
        "queue_age_limit": board.queue_age_limit, "loop_lag_limit_ms": round(board.loop_lag_limit * 1000),
    }
    return Template("switches/administration.html", context=context, status_code=status, headers=PRIVATE)


class SwitchAdministrationPages(Controller):
    path = PAGE
    include_in_schema = False
    guards = [admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def show(self, web: Web, db: Db, fait: FromQuery[str | None] = None) -> Template:
        await web.switches.sample()  # the page shows Redis's values, not this process's copy of a second ago
        return await _page(web, db, done=DONE.get(fait or ""))

    @post("/", request_max_body_size=MAX_BODY)
    async def turn(self, request: Request[Any, Any, Any], web: Web, db: Db) -> Template | Redirect:
        form = await request.form()
        values = {"switch": str(form.get("interrupteur") or ""), "reason": str(form.get("motif") or "")}
        try:
            switch = service.parse_switch(values["switch"])
            reason = service.parse_reason(form.get("motif"))
            if form.get("etat") not in ("on", "off"):
                raise SwitchRefused("Choisissez d'activer ou de désactiver l'interrupteur.", "switch")
        except SwitchRefused as refused:
            return await _page(web, db, errors={refused.field: refused.message}, values=values, status=422)
        on = form.get("etat") == "on"
        change = await web.switches.store.turn(switch, on, actor=ADMIN, actor_user_id=require_account(request).user_id,
                                               reason=reason)
        await service.copy_journal(db, web.switches.store)
        await web.switches.sample()  # this process applies it at once; the others within a second
        done = "inchange" if change is None else "active" if on else "desactive"
        return Redirect(f"{PAGE}?fait={done}", status_code=303)
