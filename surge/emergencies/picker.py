"""The coordinators' mission picker: online missions of an emergency's scope found by words of their title (or of
their commune or organisation) and by place (postal code, department number), so nobody types an internal number.
The search is a plain GET and each result an "Ajouter" form, so it works without JavaScript."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, any_, func, literal, or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress
from app.missions.service import ONLINE_STATUSES, taken
from app.organisations.models import Organisation
from app.text_rules import TextRefused, clean_text
from surge.emergencies.models import Emergency

LABEL = "Rechercher une mission"
MAX_LENGTH = 100
MAX_WORDS = 8
LIMIT = 20
POSTAL_CODE = re.compile(r"[0-9]{5}")
DEPARTMENT = re.compile(r"0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-8]|98[4-9]")
# Accents folded on both sides, so « beziers » finds « Béziers » without a database extension.
ACCENTED = "àâäáãéèêëíìîïóòôöõúùûüçñœÿ"
PLAIN = "aaaaaeeeeiiiiooooouuuucnoy"
Column = ColumnElement[str] | InstrumentedAttribute[str]
EMPTY = ("Tapez au moins deux lettres d'un titre, une commune, un code postal (5 chiffres) ou un numéro de "
         "département.")


class PickerRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class PickerQuery:
    words: tuple[str, ...] = ()
    postal_code: str | None = None
    department: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.words or self.postal_code or self.department)


@dataclass(frozen=True, slots=True)
class FoundMission:
    id: int
    title: str
    organisation: str
    commune: str
    department: str
    places: int
    places_left: int
    priority: bool
    attached_elsewhere: bool  # to another emergency: adding it moves it here


def _fold(text: str) -> str:
    return text.lower().translate(str.maketrans(ACCENTED, PLAIN))


def parse(raw: object) -> PickerQuery:
    """The typed search; raises `PickerRefused` (French) for a text the rule refuses or one with nothing to look for."""
    try:
        text = clean_text(raw, LABEL, MAX_LENGTH, collapse=True)
    except TextRefused as refused:
        raise PickerRefused(refused.message) from refused
    if not text:
        return PickerQuery()
    words: list[str] = []
    postal_code = department = None
    for token in re.split(r"[\s,;()/]+", text):
        if POSTAL_CODE.fullmatch(token):
            postal_code = token
        elif DEPARTMENT.fullmatch(token.upper()):
            department = token.upper()
        elif len(token) >= 2:
            words.append(_fold(token))
    query = PickerQuery(tuple(dict.fromkeys(words))[:MAX_WORDS], postal_code, department)
    if query.empty:
        raise PickerRefused(EMPTY)
    return query


def usable(raw: object) -> bool:
    """Whether `raw` is a search worth showing again (after an attachment)."""
    try:
        return not parse(raw).empty
    except PickerRefused:
        return False


def _folded(column: Column) -> ColumnElement[str]:
    return func.translate(func.lower(column), ACCENTED, PLAIN)


def _contains(column: Column, word: str) -> ColumnElement[bool]:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return _folded(column).like(f"%{escaped}%", escape="\\")


async def find(session: AsyncSession, emergency: Emergency, query: PickerQuery) -> list[FoundMission]:
    """At most LIMIT online missions of the emergency's scope (its departments; national: all) not attached to it
    yet, matching every word and the place; priority first, then by title. `service.attach` checks the one chosen
    again, as it stands then."""
    if query.empty:
        return []
    first_address = (select(MissionAddress.mission_id, MissionAddress.commune_code)
                     .ext(distinct_on(MissionAddress.mission_id))
                     .order_by(MissionAddress.mission_id, MissionAddress.id).subquery())
    # A mission done from home has no address: it belongs to its organisation's commune (as app/missions/scope.py).
    where = func.coalesce(first_address.c.commune_code, Organisation.commune_code)
    conditions: list[ColumnElement[bool]] = [
        Mission.status.in_(ONLINE_STATUSES), Organisation.status == "validated",
        or_(Mission.emergency_slug.is_(None), Mission.emergency_slug != emergency.slug),
    ]
    if emergency.departments:
        conditions.append(Commune.department_code.in_(list(emergency.departments)))
    if query.department:
        conditions.append(Commune.department_code == query.department)
    if query.postal_code:
        conditions.append(literal(query.postal_code) == any_(Commune.postal_codes))
    for word in query.words:
        conditions.append(or_(_contains(Mission.title, word), _contains(Commune.name, word),
                              _contains(Organisation.name, word)))
    rows = (await session.execute(
        select(Mission.id, Mission.title, Organisation.name, Commune.name, Commune.department_code, Mission.places,
               Mission.priority, Mission.emergency_slug)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .outerjoin(first_address, first_address.c.mission_id == Mission.id)
        .join(Commune, Commune.code == where)
        .where(and_(*conditions))
        .order_by(Mission.priority.desc(), Mission.title, Mission.id).limit(LIMIT)
    )).all()
    held = await taken(session, [row[0] for row in rows])
    return [FoundMission(id=mission_id, title=title, organisation=organisation, commune=commune, department=department,
                         places=places, places_left=max(0, places - held.get(mission_id, 0)), priority=priority,
                         attached_elsewhere=slug is not None)
            for mission_id, title, organisation, commune, department, places, priority, slug in rows]
