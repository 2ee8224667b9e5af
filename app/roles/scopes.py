"""Reading a scope from what a person typed (the page's form, the command's flags, a "Retirer" button's scope text),
checking it fits the role and names departments and regions that exist, and saying it in French."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Department, Region
from app.roles.schemas import NATIONAL, Role, Scope
from app.text_rules import TextRefused, clean_items, clean_text

CODE = re.compile(r"^(\d{2,3}|2[AB])$")
MAX_DEPARTMENTS, DEPARTMENTS_LENGTH = 120, 1_000  # every department of France, with room to spare
KINDS = ("national", "departements", "region")


class RoleRefused(Exception):
    """A change the service will not make; `message` is French and names no one."""

    status = 409

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class RoleInvalid(RoleRefused):
    """The input itself is wrong: an address, a role, a scope or a code."""

    status = 422


def parse_role(raw: object) -> Role:
    try:
        return Role(clean_text(raw, "Rôle", 16))
    except (TextRefused, ValueError):
        raise RoleInvalid("Choisissez le rôle : administration, coordination ou référent·e.", "role") from None


def _code(raw: str) -> str:
    code = raw.strip().upper()
    return code.zfill(2) if code.isdecimal() and len(code) == 1 else code  # "1" is the Ain, 01


def _departments(raw: object) -> tuple[str, ...]:
    try:
        if isinstance(raw, str):
            raw = re.split(r"[\s,;]+", clean_text(raw, "Départements", DEPARTMENTS_LENGTH))
        codes = clean_items(raw, "Départements", max_items=MAX_DEPARTMENTS, max_length=8)
    except TextRefused as refused:
        raise RoleInvalid(refused.message, "departments") from None
    if not codes:
        raise RoleInvalid("Indiquez au moins un département, par exemple 01, 69 ou 2A.", "departments")
    return tuple(sorted({_code(code) for code in codes}))


def _region(raw: object) -> str:
    try:
        code = _code(clean_text(raw, "Région", 8))
    except TextRefused as refused:
        raise RoleInvalid(refused.message, "region") from None
    if not code:
        raise RoleInvalid("Choisissez la région.", "region")
    return code


def requested_scope(kind: object, *, departments: object = None, region: object = None) -> Scope:
    """`kind` is national, departements or region; the other argument of that kind gives its codes."""
    if kind == "national":
        return NATIONAL
    if kind == "departements":
        return Scope(departments=_departments(departments))
    if kind == "region":
        return Scope(region=_region(region))
    raise RoleInvalid("Choisissez la portée : nationale, des départements ou une région.", "scope")


def parse_scope(text: object) -> Scope:
    """The audit's spelling, as a "Retirer" button sends it back."""
    try:
        kind, _, codes = clean_text(text, "Portée", 400).partition(":")
    except TextRefused:
        kind, codes = "", ""
    if kind == "national" and not codes:
        return NATIONAL
    if kind == "departements":
        return requested_scope(kind, departments=codes)
    if kind == "region":
        return requested_scope(kind, region=codes)
    raise RoleInvalid("Cette portée n'est pas reconnue : rechargez la page et réessayez.", "scope")


async def check_scope(session: AsyncSession, role: Role, scope: Scope) -> None:
    """Raises `RoleInvalid` for a scope the role cannot have or a code the geography does not know."""
    if role is Role.ADMIN and not scope.national:
        raise RoleInvalid("L'administration vaut pour toute la plateforme : choisissez la portée nationale.", "scope")
    if role is Role.COORDINATOR and scope.region is not None:
        raise RoleInvalid("La coordination se confie pour la France entière ou pour des départements, pas pour une "
                          "région : indiquez ses départements.", "scope")
    if scope.departments:
        valid = [code for code in scope.departments if CODE.match(code)]
        known = set(await session.scalars(select(Department.code).where(Department.code.in_(valid))))
        unknown = [code for code in scope.departments if code not in known]
        if unknown:
            raise RoleInvalid(f"Département(s) inconnu(s) : {', '.join(unknown)}. Écrivez leurs numéros, par exemple "
                              "01, 69 ou 2A.", "departments")
    if scope.region is not None and (not CODE.match(scope.region) or await session.get(Region, scope.region) is None):
        raise RoleInvalid(f"Région inconnue : {scope.region}. Choisissez-la dans la liste (par exemple 84 pour "
                          "Auvergne-Rhône-Alpes).", "region")


def describe(scope: Scope, departments: dict[str, str], regions: dict[str, str]) -> str:
    """In French, with the names: "France entière", "Rhône (69)", "région Auvergne-Rhône-Alpes"."""
    if scope.region is not None:
        return f"région {regions.get(scope.region, scope.region)}"
    if scope.departments:
        return ", ".join(f"{departments.get(code, code)} ({code})" for code in scope.departments)
    return "France entière"
