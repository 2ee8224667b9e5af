"""Who a referent's reminder writes to, in one cohort and department: young people who can choose and have made no
choice while the deadline is still ahead, and each party yet to sign an agreement. A party is reminded once per
REMINDER_GAP whoever asks and however often: the claim is one UPDATE that stamps `reminded_at`, so two reminders at
once write once. A young person's reminder is keyed by the day it is sent (the outbox sends a key once)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.youth.models import (
    AgreementParty,
    PlacementStatus,
    YoungPerson,
    YouthAgreement,
    YouthAgreementSignature,
    YouthChoice,
    YouthPlacement,
    YouthStatus,
)

REMINDER_GAP = timedelta(hours=24)
CHOICE = "choice"
SIGNATURE = "signature"


async def young_without_choice(session: AsyncSession, *, cohort_id: int, department_code: str,
                               deadline: date | None, today: date) -> list[int]:
    """Those who may still choose (ready, deadline set and not passed, not placed) and have no choice yet."""
    if deadline is None or today > deadline:
        return []
    placed = exists().where(YouthPlacement.young_person_id == YoungPerson.id,
                            YouthPlacement.status != PlacementStatus.CANCELLED.value)
    chose = exists().where(YouthChoice.young_person_id == YoungPerson.id)
    return list(await session.scalars(
        select(YoungPerson.id).where(YoungPerson.cohort_id == cohort_id,
                                     YoungPerson.department_code == department_code,
                                     YoungPerson.status == YouthStatus.READY.value, ~placed, ~chose)
        .order_by(YoungPerson.id)
    ))


async def claim_signatures(session: AsyncSession, *, cohort_id: int, department_code: str,
                           now: datetime) -> list[tuple[int, str, int]]:
    """Stamps and returns (agreement id, party, stamp) for each unsigned party of the cohort and department's
    agreements not reminded within REMINDER_GAP; the stamp keys the e-mail so it leaves once."""
    agreements = (
        select(YouthAgreement.id)
        .join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .join(YoungPerson, YoungPerson.id == YouthPlacement.young_person_id)
        .where(YoungPerson.cohort_id == cohort_id, YoungPerson.department_code == department_code,
               YouthPlacement.status == PlacementStatus.PLACED.value, YouthAgreement.signed_at.is_(None))
    )
    claimed = await session.execute(
        update(YouthAgreementSignature)
        .where(YouthAgreementSignature.agreement_id.in_(agreements), YouthAgreementSignature.signed_at.is_(None),
               YouthAgreementSignature.party != AgreementParty.REFERENT.value,  # they sign from /snu/referent
               (YouthAgreementSignature.reminded_at.is_(None))
               | (YouthAgreementSignature.reminded_at < now - REMINDER_GAP))
        .values(reminded_at=now)
        .returning(YouthAgreementSignature.agreement_id, YouthAgreementSignature.party)
    )
    stamp = int(now.timestamp())
    return sorted((agreement_id, party, stamp) for agreement_id, party in claimed)
