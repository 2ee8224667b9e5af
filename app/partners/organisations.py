"""The organisation behind a partner's missions: one row per (partner, identity), identity taken as API Engagement
derives it (its `organizationClientId`, else the RNA, else the SIRET, else the slug of the name). It is created
validated — the partner answers for it, our referents do not moderate it — with no managers, placed at its first
mission's address, and renamed when the partner renames it."""

from __future__ import annotations

import functools
import hashlib
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.organisations.models import Organisation
from app.organisations.service import slugify
from app.partners.placing import Placed
from app.partners.records import PartnerRecord

MAX_KEY = 120  # organisations.partner_key
MAX_NAME = 150
MAX_DESCRIPTION = 5_000
RNA = re.compile(r"W[0-9A-Z][0-9]{8}")
SIRET = re.compile(r"[0-9]{14}")
LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DEFAULT_DESCRIPTION = "Structure dont les missions sont publiées sur Renfort par une plateforme partenaire."


@dataclass(frozen=True, slots=True)
class OrganisationDraft:
    partner_key: str
    name: str
    type: str
    rna: str | None
    siret: str | None
    description: str


def _line(value: str | None) -> str:
    return LINE_CONTROL.sub("", " ".join(html.unescape(value).split())) if isinstance(value, str) else ""


def _key(prefix: str, value: str) -> str:
    key = f"{prefix}:{value}"
    # A very long partner id keeps a stable, bounded key.
    return key if len(key) <= MAX_KEY else f"{prefix}:#{hashlib.blake2b(value.encode(), digest_size=20).hexdigest()}"


@functools.lru_cache(maxsize=1_024)  # a feed spells its organisation types a handful of ways
def _type(raw: str | None) -> str:
    text = slugify(raw or "")
    if "collectivite" in text or "commune" in text or "mairie" in text:
        return "collectivite"
    if "public" in text or "etat" in text.split("-") or "etablissement-public" in text:
        return "organisation_publique"
    if any(word in text for word in ("prive", "entreprise", "societe", "company")):
        return "organisation_privee"
    return "association"


_slug = functools.lru_cache(maxsize=16_384)(slugify)  # names are at most MAX_NAME characters


def draft_of(record: PartnerRecord) -> OrganisationDraft | None:
    """The organisation a record names, or None when it names none it can be known by."""
    name = _line(record.organization_name)[:MAX_NAME]
    rna = _line(record.organization_rna).upper().replace(" ", "")
    siret = re.sub(r"[\s.]", "", _line(record.organization_siret) or _line(record.organization_siren))
    client_id = _line(record.organization_client_id)
    valid_rna = rna if RNA.fullmatch(rna) else None
    valid_siret = siret if SIRET.fullmatch(siret) else None
    if client_id:
        key = _key("id", client_id)
    elif valid_rna:
        key = f"rna:{valid_rna}"
    elif valid_siret:
        key = f"siret:{valid_siret}"
    elif name and _slug(name) != "structure":
        key = f"name:{_slug(name)}"
    else:
        return None
    description = CONTROL.sub("", (record.organization_description or "").strip())[:MAX_DESCRIPTION]
    return OrganisationDraft(partner_key=key, name=name or "Structure partenaire", type=_type(record.organization_type),
                             rna=valid_rna, siret=valid_siret, description=description or DEFAULT_DESCRIPTION)


def _upsert() -> Any:
    # One statement for every call, on the table (a Core executemany): compiled once, not per batch.
    table = cast(Table, Organisation.__table__)
    statement = insert(table)
    excluded = statement.excluded
    changed = (
        table.c.name.is_distinct_from(excluded.name) | table.c.type.is_distinct_from(excluded.type)
        | table.c.rna.is_distinct_from(excluded.rna) | table.c.siret.is_distinct_from(excluded.siret)
        | table.c.description.is_distinct_from(excluded.description)
    )
    return statement.on_conflict_do_update(
        index_elements=[table.c.partner_id, table.c.partner_key],
        set_={"name": excluded.name, "type": excluded.type, "rna": excluded.rna, "siret": excluded.siret,
              "description": excluded.description, "updated_at": func.now()},
        where=changed,
    )


_UPSERT = _upsert()


async def upsert_organisations(session: AsyncSession, *, partner_id: int,
                               drafts: Sequence[tuple[OrganisationDraft, Placed]]) -> dict[str, int]:
    """partner_key → organisation id, creating the missing ones (placed where given) and updating the name, type,
    identifiers and description of those that changed; an unchanged one is not written."""
    latest: dict[str, tuple[OrganisationDraft, Placed]] = {}
    for draft, place in drafts:
        latest[draft.partner_key] = (draft, place)
    # In key order: two imports of one partner touching the same organisations lock them in the same order.
    rows = [{
        "partner_id": partner_id, "partner_key": key, "name": draft.name, "type": draft.type, "rna": draft.rna,
        "siret": draft.siret, "description": draft.description, "status": "validated",
        "address_line": place.address_line, "postal_code": place.postal_code, "commune_code": place.commune_code,
    } for key, (draft, place) in sorted(latest.items())]
    if rows:
        await session.execute(_UPSERT, rows)
    found: dict[str, int] = {}
    keys = sorted(latest)
    for start in range(0, len(keys), 5_000):
        found.update({key: organisation_id for organisation_id, key in await session.execute(
            select(Organisation.id, Organisation.partner_key)
            .where(Organisation.partner_id == partner_id, Organisation.partner_key.in_(keys[start:start + 5_000]))
        ) if key is not None})
    return found
