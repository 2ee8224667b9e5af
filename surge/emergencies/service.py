"""Emergency use cases: a coordinator creates, edits, puts live and closes an emergency within their scope, and
attaches missions to it (organisations attach their own through the mission form); the public reads it.

Every change marks the missions' cache as changed (app/missions/cache.py), whose version is part of every cached
emergency page and banner key: the page is rebuilt at its next visit after the commit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ARRAY, String, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles
from app.geo.models import Department
from app.missions import scope
from app.missions.cache import mark_changed
from app.missions.models import Mission
from app.organisations.service import slugify
from app.reference import DOMAINS
from app.text_rules import DESCRIPTION_LENGTH, MESSAGE_LENGTH, TextFields, TextRefused, clean_items, length_of
from surge.emergencies.models import Emergency

FIELDS = ("title", "slug", "description", "needs", "departments", "priority_domains", "ends_on")
LABELS = {
    "title": "Titre",
    "slug": "Adresse de la page",
    "description": "La situation",
    "needs": "Les besoins",
    "departments": "Départements concernés",
    "priority_domains": "Domaines prioritaires",
    "ends_on": "Date de fin prévue",
}
DEPARTMENTS, DEPARTMENTS_LENGTH = 120, 1_000  # every department of France, with room to spare
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")
DEPARTMENT = re.compile(r"^(\d{2,3}|2[AB])$")
STATUS_LABELS = {"draft": "Brouillon", "live": "En ligne", "closed": "Close"}
# (status, action) → new status
TRANSITIONS = {("draft", "live"): "live", ("live", "close"): "closed"}
ACTIONS = {"mettre-en-ligne": "live", "clore": "close"}


class EmergencyNotFound(Exception):
    """No such emergency, or one this person may not see (a draft, for the public)."""


class EmergencyForbidden(Exception):
    """A coordinator, but not of this emergency's scope."""


class EmergencyInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid emergency")
        self.errors = errors


class EmergencyTransitionRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ValidEmergency:
    title: str
    slug: str
    description: str
    needs: str
    departments: list[str]
    priority_domains: list[str]
    ends_on: date | None


def _departments(fields: TextFields) -> list[str]:
    """Typed as numbers separated by spaces, commas or semicolons (or sent as a list)."""
    raw = fields.data.get("departments")
    if isinstance(raw, str):
        raw = re.split(r"[\s,;]+", fields.text("departments", LABELS["departments"], DEPARTMENTS_LENGTH))
    try:
        codes = clean_items(raw, LABELS["departments"], max_items=DEPARTMENTS, max_length=8)
    except TextRefused as refused:
        fields.refused["departments"] = refused.message
        return []
    return sorted({code.upper() for code in codes})


async def validate(session: AsyncSession, data: dict[str, Any], *, today: date) -> ValidEmergency:
    errors: dict[str, str] = {}
    fields = TextFields(data)
    title = fields.text("title", LABELS["title"], length_of(Emergency.title))
    if len(title) < 3:
        errors["title"] = "Donnez un titre de 3 à 150 caractères, par exemple « Inondations dans l'Aude »."
    slug = fields.text("slug", LABELS["slug"], length_of(Emergency.slug)).lower() or slugify(title)[:64]
    if not SLUG.match(slug):
        errors["slug"] = ("L'adresse de la page s'écrit en minuscules, chiffres et tirets (3 à 64), "
                          "ex. : inondations-aude.")
    description = fields.text("description", LABELS["description"], DESCRIPTION_LENGTH, multiline=True)
    if len(description) < 10:
        errors["description"] = "Décrivez la situation en quelques phrases (10 caractères au moins)."
    needs = fields.text("needs", LABELS["needs"], MESSAGE_LENGTH, multiline=True)
    if len(needs) < 10:
        errors["needs"] = "Dites de quoi les structures ont besoin (10 caractères au moins)."
    departments = _departments(fields)
    unknown = [code for code in departments if not DEPARTMENT.match(code)]
    if not unknown and departments:
        known = set(await session.scalars(select(Department.code).where(Department.code.in_(departments))))
        unknown = [code for code in departments if code not in known]
    if unknown:
        errors["departments"] = (f"Départements inconnus : {', '.join(unknown)}. "
                                 "Écrivez leurs numéros, ex. : 11, 34, 2A.")
    domains = fields.items("priority_domains", LABELS["priority_domains"], max_items=len(DOMAINS),
                           max_length=length_of(Emergency.priority_domains))
    if any(domain not in DOMAINS for domain in domains):
        errors["priority_domains"] = "Choisissez les domaines prioritaires dans la liste."
    ends_on = None
    if raw_end := fields.text("ends_on", LABELS["ends_on"], 32):
        try:
            ends_on = date.fromisoformat(raw_end)
        except ValueError:
            errors["ends_on"] = "Saisissez une date au format AAAA-MM-JJ."
        else:
            if ends_on < today:
                errors["ends_on"] = "La date de fin ne peut pas être passée."
    errors.update(fields.refused)
    if errors:
        raise EmergencyInvalid(errors)
    return ValidEmergency(title, slug, description, needs, departments, sorted(set(domains)), ends_on)


def may_coordinate(roles: Roles, departments: list[str]) -> bool:
    """National coordinators everywhere; a department coordinator for an emergency wholly within their departments."""
    if roles.national_coordinator:
        return True
    return bool(departments) and all(roles.coordinates(code) for code in departments)


async def by_slug(session: AsyncSession, slug: str, *, lock: bool = False) -> Emergency:
    query = select(Emergency).where(Emergency.slug == slug)
    emergency = await session.scalar(query.with_for_update() if lock else query)
    if emergency is None:
        raise EmergencyNotFound
    return emergency


async def managed(session: AsyncSession, slug: str, roles: Roles, *, lock: bool = False) -> Emergency:
    emergency = await by_slug(session, slug, lock=lock)
    if not may_coordinate(roles, emergency.departments):
        raise EmergencyForbidden
    return emergency


async def create(session: AsyncSession, data: dict[str, Any], *, roles: Roles, user_id: int) -> Emergency:
    valid = await validate(session, data, today=date.today())
    if not may_coordinate(roles, valid.departments):
        raise EmergencyInvalid({"departments": "Vous ne coordonnez pas tous ces départements : une urgence nationale "
                                               "(sans département) est réservée à la coordination nationale."})
    if await session.scalar(select(Emergency.id).where(Emergency.slug == valid.slug)) is not None:
        raise EmergencyInvalid({"slug": "Cette adresse de page est déjà prise : choisissez-en une autre."})
    emergency = Emergency(status="draft", created_by=user_id, **vars_of(valid))
    session.add(emergency)
    await session.flush()
    return emergency


def vars_of(valid: ValidEmergency) -> dict[str, Any]:
    return {field: getattr(valid, field) for field in ValidEmergency.__slots__}


async def edit(session: AsyncSession, slug: str, data: dict[str, Any], *, roles: Roles) -> Emergency:
    emergency = await managed(session, slug, roles, lock=True)
    valid = await validate(session, {**data, "slug": slug}, today=date.today())  # the page's address never moves
    if not may_coordinate(roles, valid.departments):
        raise EmergencyInvalid({"departments": "Vous ne coordonnez pas tous ces départements."})
    for field, value in vars_of(valid).items():
        setattr(emergency, field, value)
    emergency.updated_at = datetime.now(UTC)
    await session.flush()
    mark_changed(session)
    return emergency


async def transition(session: AsyncSession, slug: str, action: str, *, roles: Roles) -> Emergency:
    emergency = await managed(session, slug, roles, lock=True)
    target = TRANSITIONS.get((emergency.status, action))
    if target is None:
        raise EmergencyTransitionRefused(
            f"Cette urgence est « {STATUS_LABELS[emergency.status].lower()} » : cette action n'est pas possible."
        )
    now = datetime.now(UTC)
    emergency.status = target
    if target == "live":
        emergency.live_at = now
    else:
        emergency.closed_at = now
    emergency.updated_at = now
    await session.flush()
    mark_changed(session)
    return emergency


def covers(emergency: Emergency, departments: Sequence[str]) -> bool:
    """An emergency's scope covers a mission of one of its departments; a national one (no department) covers all."""
    return not emergency.departments or bool(set(departments) & set(emergency.departments))


async def live_covering(session: AsyncSession, departments: Sequence[str]) -> list[Emergency]:
    """The live emergencies an organisation may attach a mission of these departments to, as `covers` says."""
    wanted = bindparam("departments", list(departments), type_=ARRAY(String(3)))
    return list(await session.scalars(
        select(Emergency).where(
            Emergency.status == "live",
            or_(func.cardinality(Emergency.departments) == 0, Emergency.departments.op("&&")(wanted)),
        ).order_by(Emergency.live_at.desc(), Emergency.id)
    ))


async def attach(session: AsyncSession, slug: str, mission_id: int, *, priority: bool, roles: Roles) -> None:
    """A coordinator attaches a mission of the emergency's scope to it, and flags it priority or not. Priority is
    for the coordinators of the mission's own department, as on the mission's page: from anyone else, the mission
    keeps the priority it has (which its department's referents or coordinators may have set)."""
    emergency = await managed(session, slug, roles)
    if await session.get(Mission, mission_id) is None:
        raise EmergencyInvalid({"mission": "Aucune mission ne porte ce numéro."})
    departments = (await scope.departments_of(session, [mission_id]))[mission_id]
    if not covers(emergency, departments):
        raise EmergencyInvalid({"mission": "Cette mission a lieu hors des départements de l'urgence."})
    values: dict[str, Any] = {"emergency_slug": emergency.slug, "updated_at": datetime.now(UTC)}
    if roles.coordinates(departments[0]):
        values["priority"] = priority
    elif priority:
        raise EmergencyInvalid({"mission": "Cette mission relève d'un département que vous ne coordonnez pas : "
                                           "rattachez-la sans la rendre prioritaire."})
    await session.execute(update(Mission).where(Mission.id == mission_id).values(**values))
    mark_changed(session)


async def detach(session: AsyncSession, slug: str, mission_id: int, *, roles: Roles) -> None:
    emergency = await managed(session, slug, roles)
    await session.execute(
        update(Mission).where(Mission.id == mission_id, Mission.emergency_slug == emergency.slug)
        .values(emergency_slug=None, updated_at=datetime.now(UTC))
    )
    mark_changed(session)


async def missions_of(session: AsyncSession, slug: str) -> list[Mission]:
    return list(await session.scalars(
        select(Mission).where(Mission.emergency_slug == slug).order_by(Mission.priority.desc(), Mission.id)
    ))


async def visible_to(session: AsyncSession, roles: Roles) -> list[Emergency]:
    """The emergencies a coordinator may manage, newest first."""
    emergencies = await session.scalars(select(Emergency).order_by(Emergency.created_at.desc()))
    return [emergency for emergency in emergencies if may_coordinate(roles, emergency.departments)]


async def public_slugs(session: AsyncSession) -> list[str]:
    """Every emergency with a public page (live, or closed and archived): all but drafts."""
    return list(await session.scalars(select(Emergency.slug).where(Emergency.status != "draft")))


async def live(session: AsyncSession) -> list[Emergency]:
    return list(await session.scalars(
        select(Emergency).where(Emergency.status == "live").order_by(Emergency.live_at.desc())
    ))

