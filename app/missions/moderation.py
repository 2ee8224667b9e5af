"""The referents' side of missions: the queue of missions awaiting validation in their departments (oldest first),
validating or refusing them, suspending and reinstating published ones (all but reinstatements recorded in
mission_moderations: the trust question reads them), never on a mission of an organisation the referent manages;
and the priority flag, which the coordinators of the mission's department may also set. The organisation's
managers are e-mailed each decision once it is committed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles, SignedIn
from app.db.after_commit import Clients, after_commit
from app.geo.models import Commune
from app.missions import scope, service
from app.missions.cache import mark_changed
from app.missions.exceptions import MissionDecisionForbidden, MissionTransitionRefused, OwnMissionDecision
from app.missions.models import Mission, MissionAddress, MissionModeration
from app.missions.schemas import MissionRead
from app.missions.validation import MissionInvalid
from app.organisations.models import Organisation
from app.text_rules import TextRefused, clean_text
from queues import enqueue

# (status, action) → new status, for the referents of the mission's department.
TRANSITIONS = {
    ("awaiting_validation", "validate"): "published",
    ("awaiting_validation", "refuse"): "draft",  # the managers edit it, and publish it again
    ("published", "suspend"): "suspended",
    ("full", "suspend"): "suspended",
    ("suspended", "reinstate"): "published",
}
DECISIONS = {"valider": "validate", "refuser": "refuse", "suspendre": "suspend", "retablir": "reinstate"}
NEEDS_REASON = {"refuse", "suspend"}
RECORDED = {"validate", "refuse", "suspend"}  # the trust question reads them (publishing.trusted)
VERSIONED = {"validate", "refuse", "reinstate"}  # a decision on what the referent read, not on a later edit
REASON_LENGTH = 2_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REASON_REQUIRED = "Indiquez le motif : la structure le recevra pour pouvoir corriger sa mission."
CHANGED = "La mission a été modifiée depuis que vous l'avez ouverte : relisez-la."


@dataclass(frozen=True, slots=True)
class Waiting:
    """A mission in the queue, with its department and since when it is in this status."""

    mission: MissionRead
    department: str
    since: datetime
    reason: str | None
    version: str  # sent back with the decision (see `decide`)
    own: bool  # of an organisation the referent manages: someone else decides


def stamp(changed_at: datetime) -> int:
    """Microseconds since the epoch, exactly (no float rounding): names a status change, as PostgreSQL holds it."""
    return (changed_at - EPOCH) // timedelta(microseconds=1)


def _tell_managers(session: AsyncSession, mission: Mission, action: str) -> None:
    """Once committed; the job finds the e-mail moot if the mission's status changed again meanwhile."""
    mission_id, changed = mission.id, stamp(mission.status_changed_at)

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_mission_status_mails, clients.rq_connection, mission_id, action, changed)

    after_commit(session, send, key=f"mission_status_mail:{mission_id}:{changed}")


def _reason(raw: object, action: str) -> str | None:
    try:
        text = clean_text(raw, "Motif", REASON_LENGTH, collapse=True)
    except TextRefused as refused:
        raise MissionInvalid({"reason": refused.message}) from None
    if action in NEEDS_REASON and not text:
        raise MissionInvalid({"reason": REASON_REQUIRED})
    return text if action in NEEDS_REASON else None


def version(mission: Mission) -> str:
    """Names the mission's content as a referent reads it: any edit (or priority, or emergency) changes it."""
    return str(stamp(mission.updated_at))


async def decide(session: AsyncSession, mission_id: int, *, action: str, reason: object, read_version: object,
                 account: SignedIn) -> MissionRead:
    """Validate or refuse (with a reason) a mission awaiting validation, suspend (with a reason) or reinstate one,
    for a referent of its department (admins everywhere) who is no manager of its organisation. Validating,
    refusing and reinstating answer the version the referent read (`read_version`, from the form)."""
    mission, organisation = await service.load(session, mission_id, lock=True)
    if not account.roles.moderates(await scope.department_of(session, mission_id)):
        raise MissionDecisionForbidden
    if account.roles.manages(mission.organisation_id):
        raise OwnMissionDecision
    text = _reason(reason, action)
    target = TRANSITIONS.get((mission.status, action))
    if target is None:
        raise service.refusal(mission, action)
    if action in VERSIONED and read_version != version(mission):
        raise MissionTransitionRefused(CHANGED)
    await service.change_status(session, mission, target, reason=text)
    if action in RECORDED:
        session.add(MissionModeration(mission_id=mission.id, organisation_id=mission.organisation_id,
                                      decision=action, reason=text, decided_by=account.user_id))
        await session.flush()
    _tell_managers(session, mission, action)
    return await service.read_one(session, mission, organisation)


async def queue(session: AsyncSession, roles: Roles) -> dict[str, list[Waiting]]:
    """The missions awaiting validation in the referent's departments, oldest first, and the suspended ones."""
    query = (
        select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Mission.status.in_(("awaiting_validation", "suspended")))
        .order_by(Mission.status_changed_at, Mission.id)
    )
    if not (roles.admin or roles.national_referent):
        # A superset of the referent's missions in SQL (any address, or the organisation, in their departments);
        # scope.choose then keeps those whose own department is theirs.
        mine = roles.referent_departments
        query = query.where(or_(
            exists().where(MissionAddress.mission_id == Mission.id, Commune.code == MissionAddress.commune_code,
                           Commune.department_code.in_(mine)),
            Organisation.commune_code.in_(select(Commune.code).where(Commune.department_code.in_(mine))),
        ))
    rows = (await session.execute(query)).all()
    ids = [mission.id for mission, _ in rows]
    departments = await scope.departments_of(session, ids)
    addresses = await service._addresses(session, ids)
    held = await service.taken(session, ids)
    found: dict[str, list[Waiting]] = {"awaiting_validation": [], "suspended": []}
    for mission, organisation in rows:
        department = departments[mission.id][0]
        if roles.moderates(department):
            found[mission.status].append(Waiting(
                service.read(mission, organisation, addresses[mission.id], taken=held.get(mission.id, 0)),
                department, mission.status_changed_at, mission.status_reason, version(mission),
                roles.manages(mission.organisation_id),
            ))
    return found


async def set_priority(session: AsyncSession, mission_id: int, *, priority: bool, roles: Roles) -> MissionRead:
    """For the coordinators and referents of the mission's department, never its managers as such."""
    mission, organisation = await service.load(session, mission_id, lock=True)
    department = await scope.department_of(session, mission_id)
    if not (roles.coordinates(department) or roles.moderates(department)):
        raise MissionDecisionForbidden
    if roles.manages(mission.organisation_id):
        raise OwnMissionDecision  # priority is a moderation decision too
    if mission.priority != priority:
        mission.priority, mission.updated_at = priority, datetime.now(UTC)
        await session.flush()
        mark_changed(session, [mission.id])  # the search sorts by it, the emergency pages show it
    return await service.read_one(session, mission, organisation)
