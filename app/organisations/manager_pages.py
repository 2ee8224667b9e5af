"""Managers' pages: "Mes structures" (`/mon-espace/structures`) and an organisation's managers
(`/organisations/{id}/gestionnaires`: the list, pending invitations, inviting a co-manager, leaving)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from app.accounts.controllers import PRIVATE
from app.accounts.guards import organisation_manager, require_account, signed_in
from app.accounts.sessions import update_account
from app.confirm import Confirmation, confirmed
from app.confirm import page as confirmation_page
from app.deps import Db, Web
from app.http import RowId
from app.organisations import managers, space
from app.organisations.invitation_limits import InvitationLimits
from app.organisations.managers import LastManager, Team, TooManyInvitations
from app.organisations.validation import OrganisationInvalid

MAX_BODY = 16_384  # a 5 000-character address still gets its field message, not a 413
MANAGER = organisation_manager("organisation_id")
# What a redirect may ask the next page to say: keys only, never text from the query string.
NOTICES = {
    "invitation": "L'invitation est envoyée : la personne a reçu un lien pour devenir gestionnaire.",
    "annulee": "L'invitation est annulée : son lien ne fonctionne plus.",
    "quittee": "Vous ne gérez plus cette structure.",
    "soumise": "La structure est soumise à validation : les référent·es de son département vont l'examiner.",
}


def last_manager(request: Request[Any, Any, Any], _: LastManager) -> Response[Any]:
    organisation_id = request.path_params.get("organisation_id", 0)
    message = ("Vous êtes la seule personne à gérer cette structure : vous ne pouvez pas la quitter, elle resterait "
               "sans gestionnaire. Invitez d'abord un·e autre gestionnaire ; une fois son invitation acceptée, vous "
               "pourrez partir.")
    context = {"status": 409, "message": message, "errors": {}, "signed_in": True,
               "action": (f"/organisations/{organisation_id}/gestionnaires", "Inviter un·e gestionnaire")}
    return Template("error.html", context=context, status_code=409, headers=PRIVATE)


def _team_page(team: Team, user_id: int, *, values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
               notice: str | None = None, status: int = 200, headers: dict[str, str] | None = None) -> Template:
    context = {"team": team, "user_id": user_id, "values": values or {}, "errors": errors or {},
               "notice": NOTICES.get(notice or "")}
    return Template("organisation_gestionnaires.html", context=context, status_code=status,
                    headers={**PRIVATE, **(headers or {})})


class ManagerPages(Controller):
    path = "/organisations/{organisation_id:int}/gestionnaires"
    include_in_schema = False
    exception_handlers = {LastManager: last_manager}  # noqa: RUF012 (Litestar reads it from the class)

    @get("/", guards=[MANAGER])
    async def team(self, request: Request[Any, Any, Any], organisation_id: RowId, db: Db,
                   info: FromQuery[str | None] = None) -> Template:
        team = await managers.team(db, organisation_id)
        return _team_page(team, require_account(request).user_id, notice=info)

    @post("/inviter", guards=[MANAGER], request_max_body_size=MAX_BODY)
    async def invite(self, request: Request[Any, Any, Any], organisation_id: RowId, web: Web, db: Db
                     ) -> Template | Redirect:
        email = (await request.form()).get("email")
        account = require_account(request)
        secret = web.settings.secret_key.reveal()
        typed = {"email": email if isinstance(email, str) else ""}
        try:
            await managers.invite(db, organisation_id, email=email, invited_by=account.user_id, secret=secret,
                                  days=web.settings.invitation_days, limits=InvitationLimits(web.redis, secret))
        except OrganisationInvalid as invalid:
            team = await managers.team(db, organisation_id)
            return _team_page(team, account.user_id, values=typed, errors=invalid.errors, status=422)
        except TooManyInvitations as limited:
            team = await managers.team(db, organisation_id)
            return _team_page(team, account.user_id, values=typed, errors={"email": limited.message}, status=429,
                              headers={"Retry-After": str(limited.retry_after)})
        return Redirect(f"/organisations/{organisation_id}/gestionnaires?info=invitation", status_code=303)

    @post("/invitations/{invitation_id:int}/annuler", guards=[MANAGER], request_max_body_size=MAX_BODY)
    async def cancel(self, organisation_id: RowId, invitation_id: RowId, db: Db) -> Redirect:
        await managers.cancel(db, organisation_id, invitation_id)
        return Redirect(f"/organisations/{organisation_id}/gestionnaires?info=annulee", status_code=303)

    @post("/quitter", guards=[MANAGER], request_max_body_size=MAX_BODY)
    async def leave(self, request: Request[Any, Any, Any], organisation_id: RowId, db: Db) -> Template | Redirect:
        account = require_account(request)
        if not confirmed(await request.form()):
            team = await managers.team(db, organisation_id)
            back = f"/organisations/{organisation_id}/gestionnaires"
            return confirmation_page(Confirmation(
                question=f"Voulez-vous vraiment quitter la structure « {team.organisation_name} » ?",
                consequence="Vous ne pourrez plus gérer la structure ni ses missions. Pour revenir, il faudra qu'un·e "
                            "autre gestionnaire vous invite à nouveau.",
                action=f"{back}/quitter", button="Confirmer : quitter la structure", back=(back, "Revenir"),
            ))
        await managers.leave(db, organisation_id, account.user_id)
        kept = tuple(managed for managed in account.roles.organisations if managed != organisation_id)
        update_account(request, msgspec.structs.replace(
            account, roles=msgspec.structs.replace(account.roles, organisations=kept)
        ))
        return Redirect("/mon-espace/structures?info=quittee", status_code=303)


class MyOrganisationsPages(Controller):
    path = "/mon-espace/structures"
    include_in_schema = False

    @get("/", guards=[signed_in])
    async def overview(self, request: Request[Any, Any, Any], web: Web, db: Db,
                       info: FromQuery[str | None] = None) -> Template:
        managed = await space.managed_by(db, web.places, require_account(request).user_id)
        context = {"managed": managed, "notice": NOTICES.get(info or "")}
        return Template("mes_structures.html", context=context, headers=PRIVATE)
