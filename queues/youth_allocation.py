"""SNU allocation jobs: solve a run (the only place the engine runs), then, once a referent confirmed it, tell each
young person placed (and a minor's guardian), each one left unplaced and each tutor. Payloads hold row ids only;
the letters are rendered from PostgreSQL and handed to the outbox, once per idempotency key."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from rq import get_current_job
from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.db.base import unit_of_work
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.settings import Settings
from app.volunteers import age
from app.youth import agreements
from app.youth.allocation_runs import FAILED, open_places, plan_json
from app.youth.eligibility import ADULT_AGE, YOUTH_MAX_AGE, offer_min_age, offer_online
from app.youth.models import (
    AllocationStatus,
    Cohort,
    ConsentDecision,
    GuardianConsent,
    PlacementStatus,
    YoungPerson,
    YouthAllocation,
    YouthChoice,
    YouthOffer,
    YouthPlacement,
    YouthStatus,
)
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, post
from queues.runtime import JobContext, run_job
from surge.youth.allocation import Offer, Young, age_on, allocate

log = logging.getLogger("renfort.youth")
PLACED = "youth_placed"
GUARDIAN = "youth_placed_guardian"
UNPLACED = "youth_unplaced"
TUTOR = "youth_tutor_placements"
Item = tuple[str, int, int]  # (kind, placement / young person / offer id, allocation id)


def solve_youth_allocation(allocation_id: int) -> dict[str, int]:
    job = get_current_job()
    last_attempt = job is None or not job.retries_left  # RQ runs it again while retries are left
    return run_job(lambda context: _solve(context, int(allocation_id), last_attempt=last_attempt))


async def _solve(context: JobContext, allocation_id: int, *, last_attempt: bool) -> dict[str, int]:
    try:
        return await _plan(context, allocation_id)
    except Exception:
        if last_attempt:  # the referent sees it; the error itself goes to Sentry
            async with unit_of_work(context.engine) as session:
                await session.execute(
                    update(YouthAllocation)
                    .where(YouthAllocation.id == allocation_id, YouthAllocation.status == AllocationStatus.RUNNING)
                    .values(status=AllocationStatus.FAILED, error=FAILED)
                )
        raise


async def _plan(context: JobContext, allocation_id: int) -> dict[str, int]:
    async with unit_of_work(context.engine) as session:
        run = await session.get(YouthAllocation, allocation_id)
        if run is None or run.status != AllocationStatus.RUNNING:
            return {"skipped": 1}  # solved, discarded or confirmed already: a retry changes nothing
        cohort = await session.get(Cohort, run.cohort_id)
        assert cohort is not None
        youths, offers, already_placed = await _inputs(session, run, cohort)
    allocation = allocate(youths, offers)
    plan = plan_json(allocation)
    plan["already_placed"] = already_placed
    async with unit_of_work(context.engine) as session:
        await session.execute(
            update(YouthAllocation)
            .where(YouthAllocation.id == allocation_id, YouthAllocation.status == AllocationStatus.RUNNING)
            .values(status=AllocationStatus.PREVIEW, plan=plan, solved_at=datetime.now(UTC), error=None)
        )
    log.info("youth allocation %d solved: %d of %d placed", allocation_id, allocation.placed, len(youths))
    return {"placed": allocation.placed, "unplaced": len(allocation.unplaced)}


async def _inputs(session: AsyncSession, run: YouthAllocation, cohort: Cohort
                  ) -> tuple[list[Young], list[Offer], int]:
    """The cohort's young people of the department who may choose and hold no placement, their choices in rank
    order, and the validated offers they chose with the places still open."""
    active = exists().where(YouthPlacement.young_person_id == YoungPerson.id,
                            YouthPlacement.status != PlacementStatus.CANCELLED)
    scope = (YoungPerson.cohort_id == run.cohort_id, YoungPerson.department_code == run.department_code,
             YoungPerson.status == YouthStatus.READY)
    people = list((await session.execute(
        select(YoungPerson.id, YoungPerson.birth_date).where(*scope, ~active).order_by(YoungPerson.id)
    )).tuples())
    already_placed = int(await session.scalar(select(func.count()).select_from(YoungPerson).where(*scope, active))
                         or 0)
    choices: dict[int, list[int]] = {}
    for young_id, offer_id in await session.execute(
        select(YouthChoice.young_person_id, YouthChoice.offer_id)
        .where(YouthChoice.young_person_id.in_([young_id for young_id, _ in people]))
        .order_by(YouthChoice.young_person_id, YouthChoice.rank)
    ) if people else []:
        choices.setdefault(young_id, []).append(offer_id)
    chosen = sorted({offer_id for offer_ids in choices.values() for offer_id in offer_ids})
    rows = list(await session.execute(
        select(YouthOffer.id, YouthOffer.start_date, YouthOffer.end_date, Mission.open_to_minors)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(YouthOffer.id.in_(chosen), *offer_online()).order_by(YouthOffer.id)
    )) if chosen else []
    places = await open_places(session, [row.id for row in rows])
    # An offer not validated (withdrawn, refused…) or whose mission left the platform is not given to the engine: its
    # choices are left out as unknown.
    offers = [Offer(row.id, places.get(row.id, 0), row.start_date, row.end_date,
                    min_age=offer_min_age(row.open_to_minors), max_age=YOUTH_MAX_AGE) for row in rows]
    youths = [Young(young_id, tuple(choices.get(young_id, ())), birth_date, available_from=cohort.missions_start,
                    available_until=cohort.missions_end) for young_id, birth_date in people]
    return youths, offers, already_placed


# --- notifications after a confirmation ---------------------------------------------------------------------------

def notify_youth_allocation(allocation_id: int) -> dict[str, int]:
    return run_job(lambda context: _notify(context, int(allocation_id)))


def send_youth_allocation_letters(items: list[list[object]]) -> dict[str, int]:
    """The letters of an earlier notification that the outbox put off."""
    parsed = [(str(kind), int(str(row_id)), int(str(run_id))) for kind, row_id, run_id in items]
    return run_job(lambda context: _send(context, parsed))


async def _notify(context: JobContext, allocation_id: int) -> dict[str, int]:
    """The confirmed run's agreements (made here, not in the referent's request: a PDF each), their signature
    requests, then the e-mails to young people, guardians and tutors. Run again, it makes and sends nothing twice
    (`open_agreements` keeps each placement's agreement, the outbox each e-mail's key)."""
    async with unit_of_work(context.engine) as session:
        run = await session.get(YouthAllocation, allocation_id)
        if run is None or run.status != AllocationStatus.CONFIRMED or run.plan is None:
            return {"skipped": 1}
        placements = list((await session.execute(
            select(YouthPlacement.id, YouthPlacement.offer_id, YoungPerson.birth_date)
            .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
            .where(YouthPlacement.allocation_id == allocation_id, YouthPlacement.status == PlacementStatus.PLACED)
            .order_by(YouthPlacement.id)
        )).tuples())
        agreement_ids = await agreements.open_agreements(
            session, [placement_id for placement_id, _, _ in placements], referent_user_id=run.confirmed_by
        ) if placements else []
    if agreement_ids:
        agreements.enqueue_signature_requests(context.rq_connection, agreement_ids)
    today = age.today()
    items: list[Item] = []
    for placement_id, _, birth_date in placements:
        items.append((PLACED, placement_id, allocation_id))
        if age_on(birth_date, today) < ADULT_AGE:
            items.append((GUARDIAN, placement_id, allocation_id))
    items += [(UNPLACED, int(u["young_id"]), allocation_id) for u in run.plan.get("unplaced", [])]
    items += [(TUTOR, offer_id, allocation_id) for offer_id in sorted({offer_id for _, offer_id, _ in placements})]
    return await _send(context, items)


async def _send(context: JobContext, items: list[Item]) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        letters = [letter for item in items if (letter := await _letter(session, settings, item)) is not None]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_allocation_letters(context.rq_connection, [list(letter.item) for letter in group],
                                              delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("youth allocation e-mails: %s", summary(batch.summary()))
    return batch.summary()


def _dates(start: Any, end: Any) -> dict[str, str]:
    return {"start": f"{start:%d/%m/%Y}", "end": f"{end:%d/%m/%Y}"}


async def _letter(session: AsyncSession, settings: Settings, item: Item) -> Letter | None:
    kind, row_id, allocation_id = item
    base = {"base_url": settings.base_url}
    if kind in (PLACED, GUARDIAN):
        row = (await session.execute(
            select(YouthPlacement.young_person_id, YoungPerson.first_name, YoungPerson.last_name,
                   User.email_normalized, Mission.title, YouthOffer.start_date, YouthOffer.end_date,
                   YouthOffer.hours)
            .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
            .join(User, User.id == YoungPerson.user_id)
            .join(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
            .join(Mission, Mission.id == YouthOffer.mission_id)
            .where(YouthPlacement.id == row_id, YouthPlacement.allocation_id == allocation_id,
                   YouthPlacement.status == PlacementStatus.PLACED)
        )).first()
        if row is None:
            return None  # cancelled since
        values = {**base, "first_name": row.first_name, "last_name": row.last_name, "mission": row.title,
                  "hours": row.hours, **_dates(row.start_date, row.end_date)}
        if kind == PLACED:
            return Letter(f"{PLACED}:{row_id}", PLACED, row.email_normalized, values, item=item,
                          ids=f"youth placement {row_id}")
        guardian = (await session.execute(
            select(GuardianConsent.guardian_name, GuardianConsent.guardian_email)
            .where(GuardianConsent.young_person_id == row.young_person_id,
                   GuardianConsent.decision == ConsentDecision.GIVEN)
            .order_by(GuardianConsent.decided_at.desc().nulls_last(), GuardianConsent.id.desc()).limit(1)
        )).first()
        if guardian is None:
            return None
        return Letter(f"{GUARDIAN}:{row_id}", GUARDIAN, guardian.guardian_email,
                      {**values, "guardian_name": guardian.guardian_name}, item=item,
                      ids=f"youth placement {row_id} guardian")
    if kind == UNPLACED:
        young = (await session.execute(
            select(YoungPerson.first_name, User.email_normalized, Cohort.name)
            .join(User, User.id == YoungPerson.user_id).join(Cohort, Cohort.id == YoungPerson.cohort_id)
            .where(YoungPerson.id == row_id, ~exists().where(YouthPlacement.young_person_id == YoungPerson.id,
                                                            YouthPlacement.status != PlacementStatus.CANCELLED))
        )).first()
        if young is None:
            return None  # gone, or placed since by another allocation
        return Letter(f"{UNPLACED}:{allocation_id}:{row_id}", UNPLACED, young.email_normalized,
                      {**base, "first_name": young.first_name, "cohort_name": young.name}, item=item,
                      ids=f"young person {row_id} allocation {allocation_id}")
    if kind == TUTOR:
        offer = (await session.execute(
            select(YouthOffer.tutor_name, func.coalesce(YouthOffer.tutor_email, User.email_normalized).label("email"),
                   Mission.title, YouthOffer.start_date, YouthOffer.end_date)
            .join(Mission, Mission.id == YouthOffer.mission_id)
            .outerjoin(User, User.id == YouthOffer.tutor_user_id)
            .where(YouthOffer.id == row_id)
        )).first()
        names = [f"{first} {last[:1]}." for first, last in await session.execute(
            select(YoungPerson.first_name, YoungPerson.last_name)
            .join(YouthPlacement, YouthPlacement.young_person_id == YoungPerson.id)
            .where(YouthPlacement.offer_id == row_id, YouthPlacement.allocation_id == allocation_id,
                   YouthPlacement.status == PlacementStatus.PLACED)
            .order_by(YoungPerson.first_name, YoungPerson.id)
        )]
        if offer is None or not offer.email or not names:
            return None
        return Letter(f"{TUTOR}:{allocation_id}:{row_id}", TUTOR, offer.email,
                      {**base, "tutor_name": offer.tutor_name or "", "mission": offer.title, "young": names,
                       **_dates(offer.start_date, offer.end_date)}, item=item,
                      ids=f"youth offer {row_id} allocation {allocation_id}")
    return None
