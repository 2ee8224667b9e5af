"""Mission use cases: creation and edits by the organisation's managers, the lifecycle, the public mission page and
the scheduled end of past missions. The search lives in search.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles, SignedIn
from app.applications.capacity import HOLDING
from app.applications.models import Application
from app.geo.index import PostcodeIndex
from app.geo.models import Commune
from app.missions.cache import mark_changed
from app.missions.models import Mission, MissionAddress
from app.missions.schemas import STATUS_LABELS, AddressRead, MissionRead
from app.missions.validation import MissionInvalid, ValidMission, validate_mission
from app.organisations.models import Organisation
from app.organisations.service import is_online as organisation_is_online
from app.organisations.service import slugify
from app.reference import DOMAINS

# (status, action) → new status; anything else is an illegal transition (409).
TRANSITIONS = {
    ("draft", "submit"): "awaiting_validation",
    ("awaiting_validation", "publish"): "published",
    ("published", "close"): "full",
    ("full", "reopen"): "published",
    ("published", "finish"): "finished",
    ("full", "finish"): "finished",
    ("draft", "cancel"): "cancelled",
    ("awaiting_validation", "cancel"): "cancelled",
    ("published", "cancel"): "cancelled",
    ("full", "cancel"): "cancelled",
}
ACTIONS = {"soumettre": "submit", "publier": "publish", "completer": "close", "rouvrir": "reopen",
           "terminer": "finish", "annuler": "cancel"}
ACTION_LABELS = {"submit": "soumise à validation", "publish": "publiée", "close": "marquée complète",
                 "reopen": "rouverte", "finish": "terminée", "cancel": "annulée"}
ONLINE_STATUSES = ("published", "full")
EDITABLE = {"draft", "awaiting_validation", "published", "full"}


class MissionNotFound(Exception):
    """No such mission, or one this person may not see."""


class MissionForbidden(Exception):
    """Signed in, but not a manager of the mission's organisation."""


class MissionTransitionRefused(Exception):
    """The mission's status does not allow this action; `message` is French, for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_online(status: str, organisation_status: str) -> bool:
    return status in ONLINE_STATUSES and organisation_is_online(organisation_status)


async def taken(session: AsyncSession, mission_ids: Sequence[int]) -> dict[int, int]:
    """Places held per mission as PostgreSQL has them (the mission page reads the live count from Redis)."""
    if not mission_ids:
        return {}
    rows = await session.execute(
        select(Application.mission_id, func.count())
        .where(Application.mission_id.in_(mission_ids), Application.status.in_(HOLDING))
        .group_by(Application.mission_id)
    )
    return dict(rows.all())


async def _addresses(session: AsyncSession, mission_ids: Sequence[int]) -> dict[int, list[AddressRead]]:
    rows = await session.execute(
        select(MissionAddress, Commune.name, Commune.department_code)
        .join(Commune, Commune.code == MissionAddress.commune_code)
        .where(MissionAddress.mission_id.in_(mission_ids))
        .order_by(MissionAddress.id)
    )
    found: dict[int, list[AddressRead]] = {mission_id: [] for mission_id in mission_ids}
    for address, name, department in rows:
        found[address.mission_id].append(AddressRead(
            address_line=address.address_line, postal_code=address.postal_code, commune_code=address.commune_code,
            commune_name=name, department_code=department, latitude=address.latitude, longitude=address.longitude,
        ))
    return found


def read(mission: Mission, organisation: Organisation, addresses: list[AddressRead],
         distance_km: float | None = None, taken: int = 0) -> MissionRead:
    return MissionRead(
        id=mission.id,
        slug=slugify(mission.title),
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        title=mission.title,
        description=mission.description,
        domain=mission.domain,
        domain_label=DOMAINS[mission.domain],
        activities=list(mission.activities),
        remote=mission.remote,
        start_date=mission.start_date,
        end_date=mission.end_date,
        schedule=mission.schedule,
        places=mission.places,
        places_left=max(0, mission.places - taken),
        open_to_minors=mission.open_to_minors,
        prerequisites=mission.prerequisites,
        priority=mission.priority,
        emergency_slug=mission.emergency_slug,
        status=mission.status,
        status_label=STATUS_LABELS[mission.status],
        online=is_online(mission.status, organisation.status),
        addresses=addresses,
        distance_km=None if distance_km is None else round(distance_km, 1),
    )


async def _load(session: AsyncSession, mission_id: int, *, lock: bool = False) -> tuple[Mission, Organisation]:
    query = select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
    query = query.where(Mission.id == mission_id)
    row = (await session.execute(query.with_for_update(of=Mission) if lock else query)).first()
    if row is None:
        raise MissionNotFound
    return row[0], row[1]


async def _read(session: AsyncSession, mission: Mission, organisation: Organisation) -> MissionRead:
    held = (await taken(session, [mission.id])).get(mission.id, 0)
    return read(mission, organisation, (await _addresses(session, [mission.id]))[mission.id], taken=held)


async def _set_addresses(session: AsyncSession, mission_id: int, valid: ValidMission) -> None:
    codes = [address.commune_code for address in valid.addresses]
    points = {code: (lat, lon) for code, lat, lon in await session.execute(
        select(Commune.code, Commune.latitude, Commune.longitude).where(Commune.code.in_(codes))
    )}
    missing = {f"postal_code_{row}": "Cette commune n'a pas de coordonnées connues : choisissez une commune voisine."
               for row, code in enumerate(codes, 1) if points.get(code, (None, None))[0] is None}
    if missing:
        raise MissionInvalid(missing)
    await session.execute(delete(MissionAddress).where(MissionAddress.mission_id == mission_id))
    for address in valid.addresses:
        latitude, longitude = points[address.commune_code]
        session.add(MissionAddress(mission_id=mission_id, latitude=latitude, longitude=longitude,
                                   **dataclasses.asdict(address)))


def _fields(valid: ValidMission) -> dict[str, Any]:
    return {key: value for key, value in dataclasses.asdict(valid).items() if key != "addresses"}


async def create(session: AsyncSession, organisation_id: int, *, data: dict[str, Any],
                 postcodes: PostcodeIndex) -> MissionRead:
    """A draft mission of the organisation (the guard checked its manager)."""
    valid = validate_mission(data, postcodes, today=date.today())
    if await session.get(Organisation, organisation_id) is None:
        raise MissionNotFound
    mission = Mission(organisation_id=organisation_id, status="draft", **_fields(valid))
    session.add(mission)
    await session.flush()
    await _set_addresses(session, mission.id, valid)
    await session.flush()
    return await _read(session, *await _load(session, mission.id))


def _check_manager(roles: Roles, mission: Mission) -> None:
    if not roles.manages(mission.organisation_id):
        raise MissionForbidden


async def update_mission(session: AsyncSession, mission_id: int, *, data: dict[str, Any], postcodes: PostcodeIndex,
                         roles: Roles) -> MissionRead:
    mission, organisation = await _load(session, mission_id, lock=True)
    _check_manager(roles, mission)
    if mission.status not in EDITABLE:
        raise MissionTransitionRefused(
            f"Une mission {STATUS_LABELS[mission.status].lower()} ne peut plus être modifiée."
        )
    valid = validate_mission(data, postcodes, today=date.today())
    for field, value in _fields(valid).items():
        setattr(mission, field, value)
    mission.updated_at = datetime.now(UTC)
    await _set_addresses(session, mission_id, valid)
    await session.flush()
    if mission.status in ONLINE_STATUSES:
        mark_changed(session, [mission.id])  # what the search shows changed, and maybe the places
    return await _read(session, mission, organisation)


async def edit_form(session: AsyncSession, mission_id: int, roles: Roles) -> MissionRead:
    mission, organisation = await _load(session, mission_id)
    _check_manager(roles, mission)
    return await _read(session, mission, organisation)


async def transition(session: AsyncSession, mission_id: int, *, action: str, roles: Roles) -> MissionRead:
    """A manager of the mission's organisation moves it along its lifecycle (allowed transitions only)."""
    mission, organisation = await _load(session, mission_id, lock=True)
    _check_manager(roles, mission)
    target = TRANSITIONS.get((mission.status, action))
    if target is None:
        raise MissionTransitionRefused(
            f"Cette mission est « {STATUS_LABELS[mission.status].lower()} » : "
            f"elle ne peut pas être {ACTION_LABELS[action]}."
        )
    if action == "publish" and not organisation_is_online(organisation.status):
        raise MissionTransitionRefused(
            "La structure doit être validée par la coordination avant de publier ses missions."
        )
    mission.status = target
    mission.status_changed_at = datetime.now(UTC)
    await session.flush()
    mark_changed(session, [mission.id])
    return await _read(session, mission, organisation)


async def mission_page(session: AsyncSession, mission_id: int, viewer: SignedIn | None) -> tuple[MissionRead, bool]:
    """The mission and whether the viewer manages it; offline missions are a 404 for everyone but their managers."""
    mission, organisation = await _load(session, mission_id)
    manager = viewer is not None and viewer.roles.manages(mission.organisation_id)
    read_mission = await _read(session, mission, organisation)
    if not read_mission.online and not manager:
        raise MissionNotFound
    return read_mission, manager


async def finish_past_missions(session: AsyncSession, *, today: date) -> int:
    """Ends the published and full missions whose end date has passed; returns how many."""
    result = await session.execute(
        update(Mission)
        .where(Mission.status.in_(ONLINE_STATUSES), Mission.end_date < today)
        .values(status="finished", status_changed_at=datetime.now(UTC))
        .returning(Mission.id)
    )
    finished = [mission_id for (mission_id,) in result.all()]
    if finished:
        mark_changed(session, finished)
    return len(finished)
