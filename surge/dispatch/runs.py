"""Dispatch runs, the coordinators' side: who may dispatch for an emergency, the parameters of a run, the audit list,
and the two state changes a coordinator makes (commit, cancel). The volunteers' answer to a proposal is here too.

A run moves planning → planned (the planning job, planning.py) → committing (the coordinator) → committed (the
commit job, proposals.py), or to cancelled from any of these. Each change is one conditional UPDATE, so two clicks,
two tabs or two coordinators cannot commit or cancel a run twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.models import User
from app.accounts.schemas import Roles
from app.applications.capacity import Places
from app.applications.service import move
from app.applications.statuses import ApplicationStatus as Status
from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress
from app.missions.service import MissionNotFound
from app.organisations.models import Organisation
from app.reference import AVAILABILITY, DOMAINS
from surge.dispatch.links import ProposalLink
from surge.dispatch.models import DispatchRun
from surge.emergencies.models import Emergency
from surge.emergencies.service import may_coordinate

POOLS = {
    "urgence": "Les bénévoles inscrits via la page de l'urgence",
    "departements": "Les bénévoles qui habitent les départements de l'urgence",
    "les-deux": "Les deux",
}
MAX_KM = 200.0
STATUS_LABELS = {
    "planning": "Calcul en cours",
    "planned": "Plan prêt, à engager",
    "failed": "Échec du calcul",
    "committing": "Envoi des propositions en cours",
    "committed": "Propositions envoyées",
    "cancelled": "Annulée",
}
WAITING = {"planning": "Le calcul du plan est en cours.", "committing": "L'envoi des propositions est en cours."}
DECLINED_REASON = "Proposition déclinée par le ou la bénévole."
RESTART_AFTER = timedelta(minutes=15)  # the commit job's timeout: past it, a job still not done was lost


class EmergencyMissing(Exception):
    """No emergency with this address."""


class DispatchForbidden(Exception):
    """Signed in, but coordinating none of the emergency's departments."""


class RunMissing(Exception):
    """No such run for this emergency."""


class RunInvalid(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("invalid dispatch parameters")
        self.errors = errors


class RunRefused(Exception):
    """The run's status (or the emergency's) does not allow this; `message` is French, for the coordinator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProposalGone(Exception):
    """The proposal was already answered, lapsed, or its run was cancelled."""


async def emergency_for(session: AsyncSession, slug: str, roles: Roles) -> Emergency:
    emergency = await session.scalar(select(Emergency).where(Emergency.slug == slug.lower()))
    if emergency is None:
        raise EmergencyMissing
    if not may_coordinate(roles, list(emergency.departments)):  # one rule for every coordination page
        raise DispatchForbidden
    return emergency


@dataclass(frozen=True, slots=True)
class Parameters:
    pool: str
    domains: list[str]
    availability: list[str]
    max_km: float
    mission_ids: list[int]

    def as_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "domains": self.domains, "availability": self.availability,
                "max_km": self.max_km, "mission_ids": self.mission_ids}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Parameters:
        return cls(str(data["pool"]), list(data["domains"]), list(data["availability"]), float(data["max_km"]),
                   [int(i) for i in data["mission_ids"]])


@dataclass(frozen=True, slots=True)
class MissionChoice:
    id: int
    title: str
    priority: bool
    places: int
    commune: str
    department: str


async def mission_choices(session: AsyncSession, slug: str) -> list[MissionChoice]:
    """The emergency's missions a dispatch may target: online, on site; priority first."""
    first_address = (select(MissionAddress.mission_id, MissionAddress.commune_code)
                     .ext(distinct_on(MissionAddress.mission_id))
                     .order_by(MissionAddress.mission_id, MissionAddress.id).subquery())
    rows = await session.execute(
        select(Mission.id, Mission.title, Mission.priority, Mission.places, Commune.name, Commune.department_code)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .join(first_address, first_address.c.mission_id == Mission.id)
        .join(Commune, Commune.code == first_address.c.commune_code)
        .where(Mission.emergency_slug == slug, Mission.status == "published", Organisation.status == "validated",
               Mission.partner_id.is_(None))  # a partner's mission takes its applications on its own site
        .order_by(Mission.priority.desc(), Mission.id)
    )
    return [MissionChoice(*row) for row in rows]


def parse_parameters(form: dict[str, Any], choices: list[MissionChoice]) -> Parameters:
    """`form`: pool, max_km (text), domains, availability, missions (lists). Raises `RunInvalid` (French)."""
    errors: dict[str, str] = {}
    pool = str(form.get("pool") or "")
    if pool not in POOLS:
        errors["pool"] = "Choisissez quels bénévoles mobiliser."
    raw_km = str(form.get("max_km") or "").strip().replace(",", ".")
    try:
        max_km = float(raw_km)
    except ValueError:
        max_km = 0.0
    if not 0 < max_km <= MAX_KM:
        errors["max_km"] = f"Indiquez une distance entre 1 et {MAX_KM:g} km."
    domains = [d for d in dict.fromkeys(form.get("domains") or []) if d in DOMAINS]
    availability = [a for a in dict.fromkeys(form.get("availability") or []) if a in AVAILABILITY]
    known = {choice.id for choice in choices}
    wanted = [int(m) for m in form.get("missions") or []
              if isinstance(m, str) and m.isascii() and m.isdecimal() and int(m) in known]
    if not wanted:
        errors["missions"] = "Cochez au moins une mission en ligne de l'urgence."
    if errors:
        raise RunInvalid(errors)
    return Parameters(pool, domains, availability, max_km, list(dict.fromkeys(wanted)))


async def create_run(session: AsyncSession, emergency: Emergency, parameters: Parameters, user_id: int) -> int:
    """The audit row, status planning; the caller enqueues the planning job once this is committed."""
    if emergency.status != "live":
        raise RunRefused("Seule une urgence en cours peut mobiliser des bénévoles : publiez-la d'abord.")
    run = DispatchRun(emergency_id=emergency.id, parameters=parameters.as_json(), status="planning",
                      created_by=user_id)
    session.add(run)
    await session.flush()
    return run.id


@dataclass(frozen=True, slots=True)
class RunView:
    run: DispatchRun
    created_by: str
    committed_by: str
    cancelled_by: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.run.status]

    @property
    def parameters(self) -> Parameters:
        return Parameters.from_json(self.run.parameters)


async def _views(session: AsyncSession, runs: list[DispatchRun]) -> list[RunView]:
    user_ids = {i for run in runs for i in (run.created_by, run.committed_by, run.cancelled_by) if i is not None}
    emails = {i: email for i, email in await session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))}
    return [RunView(run, emails.get(run.created_by or 0, "—"), emails.get(run.committed_by or 0, "—"),
                    emails.get(run.cancelled_by or 0, "—")) for run in runs]


async def runs_of(session: AsyncSession, emergency: Emergency) -> list[RunView]:
    runs = list(await session.scalars(
        select(DispatchRun).where(DispatchRun.emergency_id == emergency.id).order_by(DispatchRun.id.desc())
    ))
    return await _views(session, runs)


async def run_of(session: AsyncSession, emergency: Emergency, run_id: int) -> RunView:
    run = await session.scalar(
        select(DispatchRun).where(DispatchRun.id == run_id, DispatchRun.emergency_id == emergency.id)
    )
    if run is None:
        raise RunMissing
    return (await _views(session, [run]))[0]


class RunProgress(msgspec.Struct, frozen=True):
    """What the run's page polls while a job works on it (templates/static/waiting.js): done once no job does."""

    done: bool
    message: str
    status: str


def progress(run: DispatchRun) -> RunProgress:
    waiting = WAITING.get(run.status)
    return RunProgress(done=waiting is None, message=waiting or f"{STATUS_LABELS[run.status]}.", status=run.status)


async def request_commit(session: AsyncSession, emergency: Emergency, run_id: int, user_id: int) -> bool:
    """planned → committing; True when the caller should enqueue the commit job. A second click finds the run
    committing or committed and does nothing; only a commit requested more than RESTART_AFTER ago and still not
    done is asked for again (its job was lost: the job is re-runnable and proposes nobody twice)."""
    if emergency.status != "live":
        raise RunRefused("Cette urgence n'est plus en cours : ses mobilisations ne peuvent plus être engagées.")
    now = datetime.now(UTC)
    moved = await session.scalar(
        update(DispatchRun)
        .where(DispatchRun.id == run_id, DispatchRun.emergency_id == emergency.id, DispatchRun.status == "planned")
        .values(status="committing", committed_by=user_id, commit_requested_at=now)
        .returning(DispatchRun.id)
    )
    if moved is not None:
        return True
    restarted = await session.scalar(
        update(DispatchRun)
        .where(DispatchRun.id == run_id, DispatchRun.emergency_id == emergency.id,
               DispatchRun.status == "committing", DispatchRun.commit_requested_at < now - RESTART_AFTER)
        .values(commit_requested_at=now).returning(DispatchRun.id)
    )
    if restarted is not None:
        return True
    status = await _status(session, emergency, run_id)
    if status in ("committing", "committed"):
        return False
    raise RunRefused(f"Cette mobilisation est « {STATUS_LABELS[status].lower()} » : elle ne peut pas être engagée.")


async def request_cancel(session: AsyncSession, emergency: Emergency, run_id: int, user_id: int) -> bool:
    """→ cancelled; True when proposals may exist and the caller should enqueue their withdrawal."""
    before = await session.scalar(
        select(DispatchRun.status)
        .where(DispatchRun.id == run_id, DispatchRun.emergency_id == emergency.id).with_for_update()
    )
    if before is None:
        raise RunMissing
    if before == "cancelled":
        return False
    await session.execute(
        update(DispatchRun).where(DispatchRun.id == run_id)
        .values(status="cancelled", cancelled_by=user_id, cancelled_at=datetime.now(UTC))
    )
    return before in ("committing", "committed")


async def _status(session: AsyncSession, emergency: Emergency, run_id: int) -> str:
    status = await session.scalar(
        select(DispatchRun.status).where(DispatchRun.id == run_id, DispatchRun.emergency_id == emergency.id)
    )
    if status is None:
        raise RunMissing
    return status


# --- the volunteer's answer ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ProposalView:
    mission_title: str
    organisation_name: str
    commune: str


async def describe(session: AsyncSession, link: ProposalLink) -> ProposalView:
    row = (await session.execute(
        select(Mission.title, Organisation.name, Commune.name)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .outerjoin(MissionAddress, MissionAddress.mission_id == Mission.id)
        .outerjoin(Commune, Commune.code == MissionAddress.commune_code)
        .where(Mission.id == link.mission_id).limit(1)
    )).first()
    if row is None:
        raise ProposalGone
    return ProposalView(row[0], row[1], row[2] or "")


async def answer(places: Places, engine: AsyncEngine, link: ProposalLink) -> bool:
    """Confirms (→ accepted) or declines (→ cancelled, the place goes back) a proposal still waiting for an answer;
    raises `ProposalGone` otherwise, so each link works once. Returns whether a drain is needed."""
    try:
        if link.action == "confirmer":
            moved, drain = await move(places, engine, link.mission_id, link.volunteer_id, target=Status.ACCEPTED,
                                      allowed=(Status.PROPOSED,), kind="confirmed")
        else:
            moved, drain = await move(places, engine, link.mission_id, link.volunteer_id, target=Status.CANCELLED,
                                      allowed=(Status.PROPOSED,), kind="proposal_declined", reason=DECLINED_REASON)
    except MissionNotFound as error:  # deleted since
        raise ProposalGone from error
    if moved.outcome != "done":
        raise ProposalGone
    return drain
