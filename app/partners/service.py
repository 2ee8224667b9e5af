"""The admin use cases of partner accounts: list, create and edit a partner with its diffusion rules and feed, make
and revoke API keys, read the import log. Every change bumps the partners' version after its commit, so every web
process sees it within a second (app/partners/directory.py). The caller owns the transaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Department
from app.missions.cache import mark_changed
from app.organisations.models import Organisation
from app.partners.directory import mark_partners_changed
from app.partners.keys import new_key
from app.partners.models import DEFAULT_RATE_LIMIT, Partner, PartnerApiKey, PartnerImport
from app.reference import DOMAINS
from app.text_rules import TextFields, length_of

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_RATE_LIMIT = 100_000
MIN_INTERVAL, MAX_INTERVAL = 15, 10_080  # a quarter of an hour to a week
MAX_LIST_ITEMS = 200
IMPORTS_SHOWN = 20
REFUSALS_SHOWN = 10
PARTNER_DEACTIVATED = "Le partenaire qui publie ces missions a été désactivé."


class PartnerNotFound(Exception):
    pass


@dataclass
class PartnerForm:
    """A partner's fields as the admin form sends them, checked; `errors` holds a French message per field."""

    name: str = ""
    contact_email: str | None = None
    website: str | None = None
    active: bool = True
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    diffusion_domains: list[str] = field(default_factory=list)
    diffusion_departments: list[str] = field(default_factory=list)
    diffusion_organisation_ids: list[int] = field(default_factory=list)
    diffuses_partner_missions: bool = False
    feed_url: str | None = None
    feed_username: str | None = None
    feed_password: str | None = None  # None: keep the one stored (the field is never shown back)
    clear_feed_password: bool = False
    feed_interval_minutes: int = 360
    errors: dict[str, str] = field(default_factory=dict)


def _whole(raw: str, label: str, low: int, high: int, errors: dict[str, str], name: str, default: int) -> int:
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,7}", raw) or not low <= int(raw) <= high:
        errors[name] = f"« {label} » doit être un nombre entier entre {low} et {high:,}.".replace(",", "\u202f")
        return default
    return int(raw)


def _web_address(raw: str, label: str, errors: dict[str, str], name: str) -> str | None:
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in raw:
        errors[name] = f"« {label} » doit être une adresse web complète, commençant par http:// ou https://."
        return None
    return raw


def _checked(data: Mapping[str, Any], name: str) -> bool:
    return data.get(name) in ("1", "on")


def _values(data: Any, name: str) -> list[str]:
    raw = data.getall(name, []) if hasattr(data, "getall") else [data.get(name)]
    return [value for value in raw if isinstance(value, str)]


def read_form(data: Mapping[str, Any]) -> PartnerForm:
    """The checks that need no database; `check_references` does the others."""
    texts = TextFields(data)
    form = PartnerForm()
    errors = form.errors
    form.name = texts.text("nom", "Nom", length_of(Partner.name), collapse=True)
    if not form.name and "nom" not in texts.refused:
        errors["nom"] = "Indiquez le nom de la plateforme partenaire."
    email = texts.text("email", "E-mail de contact", length_of(Partner.contact_email))
    if email and not EMAIL.fullmatch(email):
        errors["email"] = "Indiquez une adresse e-mail valide, par exemple contact@plateforme.fr."
    form.contact_email = email or None
    form.website = _web_address(texts.text("site", "Site web", length_of(Partner.website)), "Site web", errors, "site")
    form.active = _checked(data, "active")
    form.rate_limit_per_minute = _whole(texts.text("limite", "Limite", 10), "Limite de requêtes par minute", 1,
                                        MAX_RATE_LIMIT, errors, "limite", DEFAULT_RATE_LIMIT)
    domains = _values(data, "domaines")
    if any(domain not in DOMAINS for domain in domains):
        errors["domaines"] = "Choisissez les domaines dans la liste proposée."
    form.diffusion_domains = [domain for domain in DOMAINS if domain in domains]
    departments = texts.items("departements", "Départements", max_items=MAX_LIST_ITEMS, max_length=3, separator=",")
    form.diffusion_departments = sorted({department.upper() for department in departments})
    organisations = texts.items("structures", "Structures", max_items=MAX_LIST_ITEMS, max_length=19, separator=",")
    if any(not re.fullmatch(r"[0-9]{1,18}", item) for item in organisations):
        errors["structures"] = "Indiquez les numéros des structures, séparés par des virgules (par exemple 12, 45)."
    else:
        form.diffusion_organisation_ids = sorted({int(item) for item in organisations})
    form.diffuses_partner_missions = _checked(data, "diffuse_partenaires")
    form.feed_url = _web_address(texts.text("flux_url", "Adresse du flux", length_of(Partner.feed_url)),
                                 "Adresse du flux", errors, "flux_url")
    form.feed_username = texts.text("flux_identifiant", "Identifiant du flux", length_of(Partner.feed_username)) or None
    form.feed_password = texts.text("flux_mot_de_passe", "Mot de passe du flux",
                                    length_of(Partner.feed_password)) or None
    form.clear_feed_password = _checked(data, "effacer_mot_de_passe")
    form.feed_interval_minutes = _whole(texts.text("flux_intervalle", "Intervalle", 10),
                                        "Intervalle entre deux imports (minutes)", MIN_INTERVAL, MAX_INTERVAL,
                                        errors, "flux_intervalle", 360)
    errors.update(texts.refused)
    return form


async def check_references(session: AsyncSession, form: PartnerForm) -> None:
    if form.diffusion_departments:
        known = set((await session.execute(
            select(Department.code).where(Department.code.in_(form.diffusion_departments)))).scalars())
        unknown = [code for code in form.diffusion_departments if code not in known]
        if unknown:
            form.errors["departements"] = (f"Département(s) inconnu(s) : {', '.join(unknown[:10])}. Indiquez des codes "
                                           "de département, séparés par des virgules (par exemple 69, 2A, 974).")
    if form.diffusion_organisation_ids:
        found = set((await session.execute(
            select(Organisation.id).where(Organisation.id.in_(form.diffusion_organisation_ids)))).scalars())
        missing = [str(number) for number in form.diffusion_organisation_ids if number not in found]
        if missing:
            form.errors["structures"] = f"Structure(s) introuvable(s) : {', '.join(missing[:10])}."


def _apply(partner: Partner, form: PartnerForm) -> None:
    for name in ("name", "contact_email", "website", "active", "rate_limit_per_minute", "diffusion_domains",
                 "diffusion_departments", "diffusion_organisation_ids", "diffuses_partner_missions", "feed_url",
                 "feed_username", "feed_interval_minutes"):
        setattr(partner, name, getattr(form, name))
    if form.clear_feed_password:
        partner.feed_password = None
    elif form.feed_password is not None:
        partner.feed_password = form.feed_password


async def create_partner(session: AsyncSession, *, form: PartnerForm) -> int:
    partner = Partner()
    _apply(partner, form)
    session.add(partner)
    await session.flush()
    mark_partners_changed(session)
    return partner.id


async def get_partner(session: AsyncSession, *, partner_id: int) -> Partner:
    partner = await session.get(Partner, partner_id)
    if partner is None:
        raise PartnerNotFound
    return partner


async def update_partner(session: AsyncSession, *, partner_id: int, form: PartnerForm) -> None:
    partner = await get_partner(session, partner_id=partner_id)
    was_active = partner.active
    _apply(partner, form)
    partner.updated_at = datetime.now(UTC)
    if partner.active != was_active:
        await _set_missions_online(session, partner_id, online=partner.active)
    mark_partners_changed(session)


async def _set_missions_online(session: AsyncSession, partner_id: int, *, online: bool) -> None:
    """A deactivated partner's missions leave our pages, our search and every partner's diffusion at once: its
    organisations are suspended (the online rule everything already applies), and validated again on reactivation
    — only those this rule suspended."""
    before, after = ("suspended", "validated") if online else ("validated", "suspended")
    changed = (await session.execute(
        update(Organisation)
        .where(Organisation.partner_id == partner_id, Organisation.status == before,
               Organisation.status_reason.is_(None) if not online
               else Organisation.status_reason == PARTNER_DEACTIVATED)
        .values(status=after, status_reason=None if online else PARTNER_DEACTIVATED, status_changed_at=func.now())
        .returning(Organisation.id)
    )).scalars().all()
    if changed:
        mark_changed(session)


async def list_partners(session: AsyncSession) -> list[dict[str, Any]]:
    keys = (select(func.count()).where(PartnerApiKey.partner_id == Partner.id, PartnerApiKey.revoked_at.is_(None))
            .correlate(Partner).scalar_subquery())
    last_import = (select(PartnerImport.status).where(PartnerImport.partner_id == Partner.id)
                   .order_by(PartnerImport.started_at.desc(), PartnerImport.id.desc()).limit(1)
                   .correlate(Partner).scalar_subquery())
    rows = (await session.execute(select(Partner.id, Partner.name, Partner.active, Partner.feed_url, keys, last_import)
                                  .order_by(Partner.name, Partner.id))).all()
    return [{"id": row[0], "name": row[1], "active": row[2], "feed_url": row[3], "keys": row[4], "last_import": row[5]}
            for row in rows]


async def create_key(session: AsyncSession, *, partner_id: int, label: str | None) -> str:
    """The key itself, to be shown once: only its digest is stored."""
    await get_partner(session, partner_id=partner_id)
    key, digest, prefix = new_key()
    session.add(PartnerApiKey(partner_id=partner_id, digest=digest, prefix=prefix, label=label or None))
    await session.flush()
    mark_partners_changed(session)
    return key


async def revoke_key(session: AsyncSession, *, partner_id: int, key_id: int) -> bool:
    """False when the key is not this partner's, or was revoked already."""
    revoked = (await session.execute(
        update(PartnerApiKey).where(PartnerApiKey.id == key_id, PartnerApiKey.partner_id == partner_id,
                                    PartnerApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(PartnerApiKey.id))).first()
    if revoked is not None:
        mark_partners_changed(session)
    return revoked is not None


async def keys_of(session: AsyncSession, *, partner_id: int) -> list[PartnerApiKey]:
    return list((await session.execute(select(PartnerApiKey).where(PartnerApiKey.partner_id == partner_id)
                                       .order_by(PartnerApiKey.created_at.desc(), PartnerApiKey.id.desc()))).scalars())


async def imports_of(session: AsyncSession, *, partner_id: int) -> list[PartnerImport]:
    return list((await session.execute(select(PartnerImport).where(PartnerImport.partner_id == partner_id)
                                       .order_by(PartnerImport.started_at.desc(), PartnerImport.id.desc())
                                       .limit(IMPORTS_SHOWN))).scalars())
