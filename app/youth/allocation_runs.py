"""Allocation runs, the referents' side: start one for a cohort's young people of one department once their choice
deadline has passed, read its plan, adjust it, confirm it into placements, or discard it.

A run moves running (the job, queues/youth_allocation.py) → preview → confirmed, or to discarded / failed. Each
change locks the run's row first, so two clicks, two tabs or two referents never confirm a run twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.after_commit import Clients, after_commit
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.volunteers import age
from app.youth import cohorts
from app.youth.eligibility import offer_online
from app.youth.models import AllocationStatus, PlacementStatus, YouthAllocation, YouthOffer, YouthPlacement
from queues import enqueue
from surge.youth.allocation import (
    Allocation,
    Assignment,
    ExcludedChoice,
    Move,
    OfferFill,
    Unassign,
    Unplaced,
)

STATUS_LABELS = {
    AllocationStatus.RUNNING: "Calcul en cours",
    AllocationStatus.PREVIEW: "Plan prêt, à vérifier et confirmer",
    AllocationStatus.CONFIRMED: "Confirmée : les affectations sont faites",
    AllocationStatus.DISCARDED: "Abandonnée",
    AllocationStatus.FAILED: "Échec du calcul",
}
WAITING = "Le calcul de l'affectation est en cours."
FAILED = ("Le calcul de l'affectation a échoué. Relancez-la ; si l'échec se répète, prévenez l'équipe technique.")
LOST = "Le calcul n'a pas abouti dans le temps imparti : relancez l'affectation."
RESTART_AFTER = timedelta(minutes=15)  # past the job's timeout and its retry, a run still running was lost


class RunMissing(Exception):
    """No run with this id in the departments this person may allocate."""


class RunRefused(Exception):
    """The deadline, the run's status or the places do not allow this; `message` is French, for the referent."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def opens_on(deadline: date) -> date:
    """The deadline is inclusive: the allocation may start the day after."""
    return deadline + timedelta(days=1)


def start_refusal(deadline: date | None, today: date) -> str | None:
    """Why a run cannot start yet (French), None when it can."""
    if deadline is None:
        return "Aucune date limite de choix n'est fixée pour ce département dans cette cohorte : l'administration " \
               "doit d'abord la fixer."
    if today < opens_on(deadline):
        return f"Les jeunes peuvent choisir leurs missions jusqu'au {deadline:%d/%m/%Y} inclus : l'affectation " \
               f"pourra être lancée à partir du {opens_on(deadline):%d/%m/%Y}."
    return None


async def start_run(session: AsyncSession, *, cohort_id: int, department_code: str, requested_by: int,
                    today: date) -> int:
    """A new run, status running; its job is queued once the transaction commits. A previous preview of the same
    cohort and department is discarded; a run still computing refuses a second one (unless it was lost)."""
    refusal = start_refusal(await cohorts.deadline_of(session, cohort_id, department_code), today)
    if refusal is not None:
        raise RunRefused(refusal)
    now = datetime.now(UTC)
    same = (YouthAllocation.cohort_id == cohort_id, YouthAllocation.department_code == department_code)
    await session.execute(update(YouthAllocation).where(*same, YouthAllocation.status == AllocationStatus.PREVIEW)
                          .values(status=AllocationStatus.DISCARDED))
    await session.execute(update(YouthAllocation).where(*same, YouthAllocation.status == AllocationStatus.RUNNING,
                                                        YouthAllocation.created_at < now - RESTART_AFTER)
                          .values(status=AllocationStatus.FAILED, error=LOST))
    try:
        async with session.begin_nested():  # two launches at once: the partial unique index keeps one
            run_id = int(await session.scalar(
                insert(YouthAllocation).values(cohort_id=cohort_id, department_code=department_code,
                                               status=AllocationStatus.RUNNING, requested_by=requested_by)
                .returning(YouthAllocation.id)
            ) or 0)
    except IntegrityError as error:
        if "uq_youth_allocations_open" not in str(error.orig):
            raise
        raise RunRefused("Une affectation de ce département est déjà en cours de calcul : attendez son "
                         "résultat.") from None

    async def solve(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.solve_youth_allocation, clients.rq_connection, run_id)

    after_commit(session, solve)
    return run_id


async def get_run(session: AsyncSession, run_id: int, *, for_update: bool = False) -> YouthAllocation:
    run = await session.get(YouthAllocation, run_id, with_for_update=for_update)
    if run is None:
        raise RunMissing
    return run


async def runs_of(session: AsyncSession, cohort_id: int, department_code: str) -> list[YouthAllocation]:
    return list(await session.scalars(
        select(YouthAllocation).where(YouthAllocation.cohort_id == cohort_id,
                                      YouthAllocation.department_code == department_code)
        .order_by(YouthAllocation.id.desc()).limit(20)
    ))


# --- the plan as JSON ----------------------------------------------------------------------------------------------

def plan_json(allocation: Allocation) -> dict[str, Any]:
    """What `youth_allocations.plan` keeps: ids, ranks and reason codes only, never a name."""
    return {
        "assignments": [{"young_id": a.young_id, "offer_id": a.offer_id, "rank": a.rank}
                        for a in allocation.assignments],
        "unplaced": [{"young_id": u.young_id, "reason": u.reason} for u in allocation.unplaced],
        "excluded": [{"young_id": e.young_id, "offer_id": e.offer_id, "rank": e.rank, "reason": e.reason}
                     for e in allocation.excluded],
        "fills": [{"offer_id": f.offer_id, "assigned": f.assigned, "places": f.places} for f in allocation.fills],
        "rank_profile": allocation.rank_profile,
        "placed": allocation.placed,
        "adjusted": allocation.adjusted,
        # JSON keys are text: the young person's id → {offer id: rank} of their eligible choices.
        "eligible": {str(y): {str(o): r for o, r in offers.items()} for y, offers in allocation.eligible.items()},
        "order": list(allocation.order),
    }


def allocation_of(plan: Mapping[str, Any]) -> Allocation:
    """The engine's `Allocation` back from `plan_json`, for `Allocation.adjust`."""
    eligible: dict[Hashable, dict[Hashable, int]] = {
        int(y): {int(o): int(r) for o, r in offers.items()} for y, offers in plan["eligible"].items()
    }
    return Allocation(
        assignments=tuple(Assignment(int(a["young_id"]), int(a["offer_id"]), int(a["rank"]))
                          for a in plan["assignments"]),
        unplaced=tuple(Unplaced(int(u["young_id"]), str(u["reason"])) for u in plan["unplaced"]),
        excluded=tuple(ExcludedChoice(int(e["young_id"]), int(e["offer_id"]), int(e["rank"]), str(e["reason"]))
                       for e in plan["excluded"]),
        fills=tuple(OfferFill(int(f["offer_id"]), int(f["assigned"]), int(f["places"])) for f in plan["fills"]),
        adjusted=bool(plan.get("adjusted")),
        eligible=eligible,
        order=tuple(int(y) for y in plan["order"]),
    )


# --- the referent's changes ----------------------------------------------------------------------------------------

async def _preview(session: AsyncSession, run_id: int) -> YouthAllocation:
    run = await get_run(session, run_id, for_update=True)
    if run.status != AllocationStatus.PREVIEW or run.plan is None:
        raise RunRefused(f"Cette affectation est « {STATUS_LABELS[AllocationStatus(run.status)].lower()} » : elle "
                         "ne peut plus être modifiée.")
    return run


async def adjust_run(session: AsyncSession, run_id: int, change: Move | Unassign) -> None:
    """Applies one change to the preview's plan; raises `surge.youth.allocation.AdjustmentError` (French) when the
    rules refuse it, `RunRefused` when the run is no longer a preview."""
    run = await _preview(session, run_id)
    assert run.plan is not None
    adjusted = allocation_of(run.plan).adjust([change])
    run.plan = plan_json(adjusted)
    await session.flush()


async def discard_run(session: AsyncSession, run_id: int) -> None:
    run = await get_run(session, run_id, for_update=True)
    if run.status == AllocationStatus.DISCARDED:
        return
    if run.status not in (AllocationStatus.PREVIEW, AllocationStatus.FAILED):
        raise RunRefused(f"Cette affectation est « {STATUS_LABELS[AllocationStatus(run.status)].lower()} » : elle "
                         "ne peut pas être abandonnée.")
    run.status = AllocationStatus.DISCARDED
    await session.flush()


@dataclass(frozen=True, slots=True)
class Confirmed:
    placement_ids: list[int]
    done_now: bool  # False: an earlier click confirmed it already, nothing was made again


async def open_places(session: AsyncSession, offer_ids: list[int], *, lock: bool = False) -> dict[int, int]:
    """Per offer: its youth places minus its placements not cancelled. `lock` holds the offers' rows until the
    transaction ends, so two confirmations sharing an offer count one after the other."""
    if not offer_ids:
        return {}
    query = select(YouthOffer.id, YouthOffer.places).where(YouthOffer.id.in_(offer_ids)).order_by(YouthOffer.id)
    places = {offer_id: count for offer_id, count in await session.execute(query.with_for_update() if lock else query)}
    taken = dict((await session.execute(
        select(YouthPlacement.offer_id, func.count())
        .where(YouthPlacement.offer_id.in_(offer_ids), YouthPlacement.status != PlacementStatus.CANCELLED)
        .group_by(YouthPlacement.offer_id)
    )).tuples().all())
    return {offer_id: max(0, count - taken.get(offer_id, 0)) for offer_id, count in places.items()}


async def confirm_run(session: AsyncSession, run_id: int, *, confirmed_by: int) -> Confirmed:
    """In the caller's transaction: the preview's placements, their agreements (app/youth/agreements.py), status
    confirmed; once committed, the signature requests and the notifications are queued. A second confirmation
    finds the run confirmed and makes nothing."""
    run = await get_run(session, run_id, for_update=True)
    if run.status == AllocationStatus.CONFIRMED:
        return Confirmed([], done_now=False)
    run = await _preview(session, run_id)
    assert run.plan is not None
    assignments = [(int(a["young_id"]), int(a["offer_id"]), int(a["rank"])) for a in run.plan["assignments"]]
    wanted = Counter(offer_id for _, offer_id, _ in assignments)
    refusal = start_refusal(await cohorts.deadline_of(session, run.cohort_id, run.department_code), age.today())
    if refusal is not None:
        raise RunRefused(refusal)
    still_open = await open_places(session, sorted(wanted), lock=True)
    online = set(await session.scalars(
        select(YouthOffer.id).join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(YouthOffer.id.in_(sorted(wanted)), *offer_online())
    )) if wanted else set()
    gone = sorted(set(wanted) - online)
    if gone:
        raise RunRefused("Des missions du plan ne sont plus proposées (retirées, refusées ou hors ligne) : n° "
                         f"{', '.join(str(i) for i in gone)}. Relancez l'affectation.")
    full = sorted(offer_id for offer_id, count in wanted.items() if count > still_open.get(offer_id, 0))
    if full:
        raise RunRefused("Des places ont été prises depuis le calcul sur les missions n° "
                         f"{', '.join(str(i) for i in full)} : relancez l'affectation.")
    placed = set(await session.scalars(
        select(YouthPlacement.young_person_id)
        .where(YouthPlacement.young_person_id.in_([young_id for young_id, _, _ in assignments]),
               YouthPlacement.status != PlacementStatus.CANCELLED)
    )) if assignments else set()
    if placed:
        raise RunRefused(f"{len(placed)} jeune(s) de ce plan ont été affecté·es entre-temps : relancez "
                         "l'affectation.")
    placement_ids = list(await session.scalars(
        insert(YouthPlacement).values([
            {"young_person_id": young_id, "offer_id": offer_id, "allocation_id": run_id, "rank": rank}
            for young_id, offer_id, rank in assignments
        ]).returning(YouthPlacement.id)
    )) if assignments else []
    run.status = AllocationStatus.CONFIRMED
    run.confirmed_by = confirmed_by
    run.confirmed_at = datetime.now(UTC)
    await session.flush()

    async def announce(clients: Clients) -> None:
        # The agreements (a PDF each) are made by the job, not in this request.
        await asyncio.to_thread(enqueue.notify_youth_allocation, clients.rq_connection, run_id)

    after_commit(session, announce)
    return Confirmed(placement_ids, done_now=True)
