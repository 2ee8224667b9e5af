"""A referent's reminders for one cohort and department (app/youth/reminders.py says who): rendered from PostgreSQL
here and handed to the outbox. Payloads hold ids only; a letter sent later is re-rendered from its item."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.db.base import unit_of_work
from app.missions.models import Mission
from app.settings import Settings
from app.volunteers import age
from app.youth import agreements, cohorts, reminders
from app.youth.models import (
    Cohort,
    YoungPerson,
    YouthAgreement,
    YouthAgreementSignature,
    YouthOffer,
    YouthPlacement,
)
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
CHOICE_KIND = "youth_choice_reminder"
SIGNATURE_KIND = "youth_signature_reminder"
LETTERS_PER_JOB = 200
Item = tuple[str, int, str, int]  # (CHOICE, young person id, Paris day, 0) or (SIGNATURE, agreement id, party, stamp)


def send_youth_reminders(cohort_id: int, department_code: str) -> dict[str, int]:
    return run_job(lambda context: _remind(context, int(cohort_id), str(department_code)))


def send_youth_reminder_letters(items: list[list[object]]) -> dict[str, int]:
    """The letters of an earlier reminder that the outbox put off."""
    parsed = [(str(kind), int(str(row_id)), str(detail), int(str(stamp))) for kind, row_id, detail, stamp in items]
    return run_job(lambda context: _send(context, parsed))


async def _remind(context: JobContext, cohort_id: int, department_code: str) -> dict[str, int]:
    """Claims who to remind and hands the letters to their own job before the claim commits: a failure after
    the claim leaves the letters queued, and a failure before it leaves nothing claimed (RQ runs this again)."""
    today = age.today()
    async with unit_of_work(context.engine) as session:
        deadline = await cohorts.deadline_of(session, cohort_id, department_code)
        young = await reminders.young_without_choice(session, cohort_id=cohort_id, department_code=department_code,
                                                     deadline=deadline, today=today)
        signatures = await reminders.claim_signatures(session, cohort_id=cohort_id, department_code=department_code,
                                                      now=datetime.now(UTC))
        items: list[list[object]] = [[reminders.CHOICE, young_id, today.isoformat(), 0] for young_id in young]
        items += [[reminders.SIGNATURE, agreement_id, party, stamp] for agreement_id, party, stamp in signatures]
        for start in range(0, len(items), LETTERS_PER_JOB):
            enqueue.send_youth_reminder_letters(context.rq_connection, items[start:start + LETTERS_PER_JOB])
    return {"queued": len(items)}


async def _send(context: JobContext, items: list[Item]) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        letters = [letter for item in items if (letter := await _letter(session, settings, item)) is not None]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_reminder_letters(context.rq_connection, [list(letter.item) for letter in group],
                                            delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("youth reminders: %s", summary(batch.summary()))
    return batch.summary()


async def _letter(session: AsyncSession, settings: Settings, item: Item) -> Letter | None:
    kind, row_id, detail, stamp = item
    if kind == reminders.CHOICE:
        return await _choice_letter(session, settings, row_id, detail)
    if kind == reminders.SIGNATURE:
        return await _signature_letter(session, settings, row_id, detail, stamp)
    return None


async def _choice_letter(session: AsyncSession, settings: Settings, young_id: int, day: str) -> Letter | None:
    row = (await session.execute(
        select(User.email_normalized, YoungPerson.first_name, YoungPerson.cohort_id, YoungPerson.department_code,
               Cohort.name)
        .join(User, User.id == YoungPerson.user_id).join(Cohort, Cohort.id == YoungPerson.cohort_id)
        .where(YoungPerson.id == young_id)
    )).first()
    if row is None:
        return None
    deadline = await cohorts.deadline_of(session, row.cohort_id, row.department_code)
    if deadline is None or age.today() > deadline:
        return None  # the deadline passed, or was removed, since the reminder was asked
    values = {"first_name": row.first_name, "cohort_name": row.name, "deadline": f"{deadline:%d/%m/%Y}",
              "link": f"{settings.base_url}/snu/missions", "base_url": settings.base_url}
    return Letter(f"youth_choice_reminder:{young_id}:{day}", CHOICE_KIND, row.email_normalized, values,
                  item=(reminders.CHOICE, young_id, day, 0), ids=f"young person {young_id}")


async def _signature_letter(session: AsyncSession, settings: Settings, agreement_id: int, party: str,
                            stamp: int) -> Letter | None:
    row = (await session.execute(
        select(YouthAgreementSignature.name, YouthAgreementSignature.email, YouthAgreementSignature.signed_at,
               YouthAgreement.signed_at.label("agreement_signed_at"), YoungPerson.first_name,
               YoungPerson.last_name, Mission.title)
        .join(YouthAgreement, YouthAgreement.id == YouthAgreementSignature.agreement_id)
        .join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .join(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .where(YouthAgreementSignature.agreement_id == agreement_id, YouthAgreementSignature.party == party)
    )).first()
    if row is None or row.signed_at is not None or row.agreement_signed_at is not None:
        return None  # signed since
    expires_at = int(time.time()) + agreements.SIGNATURE_DAYS * 86_400
    values = {"name": row.name, "first_name": row.first_name, "last_name": row.last_name, "mission": row.title,
              "link": agreements.signature_url(settings.base_url, settings.secret_key.reveal(), agreement_id, party,
                                               expires_at),
              "days": agreements.SIGNATURE_DAYS, "base_url": settings.base_url}
    return Letter(f"youth_signature_reminder:{agreement_id}:{party}:{stamp}", SIGNATURE_KIND, row.email, values,
                  item=(reminders.SIGNATURE, agreement_id, party, stamp), ids=f"agreement {agreement_id} {party}",
                  lapses_at=float(expires_at))
