"""The public directory of validated organisations (`/organisations`): a name keyword matched without regard to
case or accents, a department, a type; paginated. Results are cached in Redis under the normalised query, tagged
with the missions' version counter (bumped whenever an organisation's status changes)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheKeys, Policy, shared
from app.geo.models import Commune, Department
from app.missions.cache import VERSION_KEY
from app.missions.models import Mission
from app.missions.service import ONLINE_STATUSES
from app.organisations.models import Organisation
from app.organisations.validation import TYPE_LABELS
from app.territories.figures import OrganisationSummary, organisation_summary
from app.text_rules import TextRefused, clean_text

PER_PAGE = 20
MAX_PAGE = 500
MAX_KEYWORD = 100
ENTRY_PREFIX = "renfort:organisations:directory:"
POLICY = Policy(fresh_seconds=300, keep_seconds=900, rebuild_in_background=False)
DEPARTMENT = re.compile(r"0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-8]|98[4-9]")  # as app/missions/search.py
# Folding in SQL with plain functions, so it holds whether or not the `unaccent` extension is installed.
ACCENTED = "àâäáãåāçéèêëēíìîïīñóòôöõøōúùûüūýÿ"
PLAIN = "aaaaaaaceeeeeiiiiinooooooouuuuuyy"
LIGATURES = (("œ", "oe"), ("æ", "ae"), ("ß", "ss"))
FOLDING = str.maketrans(ACCENTED, PLAIN)


class DirectoryInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid directory query")
        self.errors = errors


class DirectoryQuery(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Normalised: its JSON encoding is the cache key."""

    q: str = ""
    departement: str = ""
    type: str = ""
    page: int = 1


class DirectoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    organisation: OrganisationSummary
    missions: int  # online missions


class DirectoryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DirectoryEntry]
    total: int
    page: int
    pages: int


def fold(text: str) -> str:
    """Lower case, without accents, as the SQL side folds names."""
    text = text.lower()
    for ligature, letters in LIGATURES:
        text = text.replace(ligature, letters)
    text = text.translate(FOLDING)
    return "".join(char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char))


def _folded_name() -> ColumnElement[str]:
    name: ColumnElement[str] = func.lower(Organisation.name)
    for ligature, letters in LIGATURES:
        name = func.replace(name, ligature, letters)
    return func.translate(name, ACCENTED, PLAIN)


def parse(params: Mapping[str, str]) -> DirectoryQuery:
    errors: dict[str, str] = {}
    values: dict[str, object] = {}
    try:
        keyword = clean_text(params.get("q"), "Nom", MAX_KEYWORD, collapse=True)
    except TextRefused as refused:
        errors["q"], keyword = refused.message, ""
    if keyword:
        values["q"] = fold(keyword)
    department = str(params.get("departement") or "").strip().upper()
    if department:
        if len(department) <= 3 and DEPARTMENT.fullmatch(department):
            values["departement"] = department
        else:
            errors["departement"] = "Le département s'écrit avec son numéro, par exemple 69 ou 2A."
    kind = str(params.get("type") or "").strip()
    if kind:
        if kind in TYPE_LABELS:
            values["type"] = kind
        else:
            errors["type"] = "Choisissez un type de structure dans la liste."
    page = str(params.get("page") or "").strip()
    if page:
        if page.isascii() and page.isdecimal() and len(page) <= 4 and 1 <= int(page) <= MAX_PAGE:
            values["page"] = int(page)
        else:
            errors["page"] = f"Le numéro de page va de 1 à {MAX_PAGE}."
    if errors:
        raise DirectoryInvalid(errors)
    return DirectoryQuery(**values)  # type: ignore[arg-type]


def _like(keyword: str) -> str:
    escaped = keyword.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _run(session: AsyncSession, query: DirectoryQuery) -> DirectoryPage:
    conditions: list[ColumnElement[bool]] = [Organisation.status == "validated"]
    if query.q:
        conditions.append(_folded_name().like(_like(query.q), escape="\\"))
    if query.departement:
        conditions.append(Commune.department_code == query.departement)
    if query.type:
        conditions.append(Organisation.type == query.type)
    base = select(Organisation, Commune).join(Commune, Commune.code == Organisation.commune_code).where(*conditions)
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    rows = (await session.execute(
        base.order_by(func.lower(Organisation.name), Organisation.id)
        .limit(PER_PAGE).offset((query.page - 1) * PER_PAGE)
    )).all()
    ids = [organisation.id for organisation, _ in rows]
    missions = dict((await session.execute(
        select(Mission.organisation_id, func.count()).where(Mission.organisation_id.in_(ids),
                                                            Mission.status.in_(ONLINE_STATUSES))
        .group_by(Mission.organisation_id)
    )).all()) if ids else {}
    items = [DirectoryEntry(organisation=organisation_summary(organisation, commune),
                            missions=int(missions.get(organisation.id, 0))) for organisation, commune in rows]
    return DirectoryPage(items=items, total=total, page=query.page, pages=max(1, math.ceil(total / PER_PAGE)))


async def search(session: AsyncSession, redis: Redis, query: DirectoryQuery) -> DirectoryPage:
    async def build() -> bytes:
        return msgspec.json.encode(await _run(session, query))

    variant = msgspec.json.encode(query).decode()
    cached = await shared(redis, POLICY).get(CacheKeys.of(VERSION_KEY, ENTRY_PREFIX, variant), build)
    return msgspec.json.decode(cached, type=DirectoryPage)


async def departments(session: AsyncSession, redis: Redis) -> list[tuple[str, str]]:
    """(code, name) of every department, for the filter's list."""
    async def build() -> bytes:
        rows = await session.execute(select(Department.code, Department.name).order_by(Department.code))
        return msgspec.json.encode([(code, name) for code, name in rows])

    cached = await shared(redis, POLICY).get(CacheKeys.of(VERSION_KEY, ENTRY_PREFIX, "departments"), build)
    return [(code, name) for code, name in msgspec.json.decode(cached, type=list[tuple[str, str]])]


def page_numbers(page: int, pages: int, around: int = 2) -> list[int | None]:
    """The numbers a pager shows: the first, the last and those around the current page; None marks a gap."""
    shown = sorted({1, pages, *range(max(1, page - around), min(pages, page + around) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers
