"""The partner accounts' administration, `/administration/partenaires`: the partners with their keys and feed, a
partner's settings and diffusion rules, its API keys (a new key is shown once, on the page that answers its
creation, and never again) and its last imports. Admins only (the guard re-reads the roles at each request)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.controllers import PRIVATE
from app.accounts.guards import admin
from app.deps import Db
from app.formats import when
from app.partners import service
from app.partners.imports import NO_FEED, NoFeed, request_import
from app.partners.models import Partner
from app.partners.service import REFUSALS_SHOWN, PartnerForm, PartnerNotFound
from app.reference import DOMAINS
from app.text_rules import clean_text

PAGE = "/administration/partenaires"
MAX_BODY = 128_000  # room for every field at its limit and then some, so an oversized one gets its French message
DONE = {
    "cree": "Le partenaire est créé. Créez-lui une clé d'API pour qu'il puisse appeler l'API.",
    "modifie": "Les modifications sont enregistrées : chaque serveur web les applique dans la seconde.",
    "revoquee": "La clé est révoquée : elle est refusée dans la seconde sur chaque serveur web.",
    "deja-revoquee": "Cette clé était déjà révoquée.",
    "import-demande": "L'import du flux est demandé : il apparaît ci-dessous, en cours, puis avec son résultat.",
}
IMPORT_STATUSES = {"running": "En cours", "succeeded": "Réussi", "failed": "Échoué"}


def _values_of(partner: Partner) -> dict[str, Any]:
    return {
        "nom": partner.name, "email": partner.contact_email or "", "site": partner.website or "",
        "active": partner.active, "limite": str(partner.rate_limit_per_minute),
        "domaines": list(partner.diffusion_domains), "departements": ", ".join(partner.diffusion_departments),
        "structures": ", ".join(str(number) for number in partner.diffusion_organisation_ids),
        "diffuse_partenaires": partner.diffuses_partner_missions, "flux_url": partner.feed_url or "",
        "flux_identifiant": partner.feed_username or "", "flux_intervalle": str(partner.feed_interval_minutes),
    }


def _values_sent(data: Any) -> dict[str, Any]:
    """What the admin typed, shown back with the errors (the password never is)."""
    values: dict[str, Any] = {}
    for name in ("nom", "email", "site", "limite", "departements", "structures", "flux_url", "flux_identifiant",
                 "flux_intervalle"):
        raw = data.get(name)
        values[name] = raw if isinstance(raw, str) and len(raw) <= 6_000 else ""
    values["domaines"] = [value for value in data.getall("domaines", []) if value in DOMAINS]
    for name in ("active", "diffuse_partenaires"):
        values[name] = data.get(name) in ("1", "on")
    return values


async def _partner_page(db: AsyncSession, partner_id: int, *, done: str | None = None,
                        errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                        new_key: str | None = None, status: int = 200) -> Template:
    try:
        partner = await service.get_partner(db, partner_id=partner_id)
    except PartnerNotFound:
        raise NotFoundException from None
    keys = [{"id": key.id, "prefix": key.prefix, "label": key.label or "", "created": when(key.created_at),
             "revoked": when(key.revoked_at) if key.revoked_at else None}
            for key in await service.keys_of(db, partner_id=partner_id)]
    imports = [{"started": when(run.started_at), "status": IMPORT_STATUSES.get(run.status, run.status),
                "error": run.error or "", "received": run.received, "created": run.created, "updated": run.updated,
                "unchanged": run.unchanged, "deleted": run.deleted, "refused": run.refused,
                "refusals": [{"client_id": str(item.get("clientId", "")), "reason": str(item.get("reason", ""))}
                             for item in (run.refusals or [])[:REFUSALS_SHOWN] if isinstance(item, dict)]}
               for run in await service.imports_of(db, partner_id=partner_id)]
    context = {"partner": partner, "keys": keys, "imports": imports, "done": done, "errors": errors or {},
               "values": values if values is not None else _values_of(partner), "domains": DOMAINS,
               "has_password": bool(partner.feed_password), "new_key": new_key,
               "action": f"{PAGE}/{partner_id}"}
    return Template("partners/admin_partner.html", context=context, status_code=status, headers=PRIVATE)


def _new_page(*, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
              status: int = 200) -> Template:
    context = {"partner": None, "errors": errors or {}, "domains": DOMAINS, "has_password": False,
               "values": values if values is not None else {"active": True, "limite": "1200", "flux_intervalle": "360"},
               "action": f"{PAGE}/nouveau"}
    return Template("partners/admin_new.html", context=context, status_code=status, headers=PRIVATE)


async def _checked_form(request: Request[Any, Any, Any], db: AsyncSession) -> tuple[PartnerForm, dict[str, Any]]:
    data = await request.form()
    form = service.read_form(data)
    if not form.errors:
        await service.check_references(db, form)
    return form, _values_sent(data)


class PartnerAdministrationPages(Controller):
    path = PAGE
    include_in_schema = False
    guards = [admin]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @get("/")
    async def index(self, db: Db) -> Template:
        partners = [{**row, "last_import": IMPORT_STATUSES.get(row["last_import"] or "", "Aucun import")}
                    for row in await service.list_partners(db)]
        return Template("partners/admin_list.html", context={"partners": partners}, headers=PRIVATE)

    @get("/nouveau")
    async def new(self) -> Template:
        return _new_page()

    @post("/nouveau", request_max_body_size=MAX_BODY)
    async def create(self, request: Request[Any, Any, Any], db: Db) -> Template | Redirect:
        form, values = await _checked_form(request, db)
        if form.errors:
            return _new_page(errors=form.errors, values=values, status=422)
        partner_id = await service.create_partner(db, form=form)
        return Redirect(f"{PAGE}/{partner_id}?fait=cree", status_code=303)

    @get("/{partner_id:int}")
    async def show(self, db: Db, partner_id: int, fait: FromQuery[str | None] = None) -> Template:
        return await _partner_page(db, partner_id, done=DONE.get(fait or ""))

    @post("/{partner_id:int}", request_max_body_size=MAX_BODY)
    async def edit(self, request: Request[Any, Any, Any], db: Db, partner_id: int) -> Template | Redirect:
        form, values = await _checked_form(request, db)
        if form.errors:
            return await _partner_page(db, partner_id, errors=form.errors, values=values, status=422)
        try:
            await service.update_partner(db, partner_id=partner_id, form=form)
        except PartnerNotFound:
            raise NotFoundException from None
        return Redirect(f"{PAGE}/{partner_id}?fait=modifie", status_code=303)

    @post("/{partner_id:int}/cles", request_max_body_size=4_096)
    async def create_key(self, request: Request[Any, Any, Any], db: Db, partner_id: int) -> Template:
        data = await request.form()
        try:
            label = clean_text(data.get("libelle"), "Libellé", 100, collapse=True)
        except ValueError as refused:
            message = getattr(refused, "message", "Libellé invalide.")
            return await _partner_page(db, partner_id, errors={"libelle": message}, status=422)
        try:
            key = await service.create_key(db, partner_id=partner_id, label=label)
        except PartnerNotFound:
            raise NotFoundException from None
        # The key appears in this response only: not in a redirect's address, the session, the logs nor the DB.
        return await _partner_page(db, partner_id, new_key=key)

    @post("/{partner_id:int}/cles/{key_id:int}/revoquer", request_max_body_size=1_024)
    async def revoke_key(self, db: Db, partner_id: int, key_id: int) -> Redirect:
        revoked = await service.revoke_key(db, partner_id=partner_id, key_id=key_id)
        return Redirect(f"{PAGE}/{partner_id}?fait={'revoquee' if revoked else 'deja-revoquee'}", status_code=303)

    @post("/{partner_id:int}/importer", request_max_body_size=1_024)
    async def import_now(self, db: Db, partner_id: int) -> Template | Redirect:
        try:
            await request_import(db, partner_id)
        except NoFeed:
            return await _partner_page(db, partner_id, errors={"importer": NO_FEED}, status=422)
        return Redirect(f"{PAGE}/{partner_id}?fait=import-demande", status_code=303)
