"""A minor's guardian consents, or refuses, through a signed link (app/youth/links.py, `Purpose.CONSENT`) whose
subject is the consent request's id. The e-mail job mints the link from the id (the payload holds nothing else);
the page shows what is consented to and records the answer once: a decided request stays decided, so a second
click, or the other button, changes nothing. The young person's status follows the answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.after_commit import Clients, after_commit
from app.youth import links
from app.youth.links import Purpose, YouthLinkExpired
from app.youth.models import Cohort, ConsentDecision, GuardianConsent, YoungPerson, YouthStatus
from queues import enqueue

CONSENT_DAYS = 21
PATH = "/snu/consentement"
SIGNED_NAME_LENGTH = 200


class ConsentAlreadyDecided(Exception):
    """The guardian answered already; `decision` is that answer."""

    def __init__(self, decision: str) -> None:
        super().__init__(decision)
        self.decision = decision


async def request_consent(session: AsyncSession, *, young_person_id: int, guardian_name: str, guardian_email: str,
                          now: datetime | None = None) -> int:
    """Records the request; once committed, the guardian's e-mail job is queued (with the request's id only)."""
    now = now or datetime.now(UTC)
    consent_id = int(await session.scalar(
        insert(GuardianConsent).values(
            young_person_id=young_person_id, guardian_name=guardian_name, guardian_email=guardian_email,
            expires_at=now + timedelta(days=CONSENT_DAYS),
        ).returning(GuardianConsent.id)
    ) or 0)

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_guardian_consent_mail, clients.rq_connection, consent_id)

    after_commit(session, send)
    return consent_id


def url(base_url: str, secret: str, consent_id: int, expires_at: datetime) -> str:
    token = links.mint(secret, Purpose.CONSENT, consent_id, int(expires_at.timestamp()))
    return links.url(base_url, PATH, token)


@dataclass(frozen=True, slots=True)
class ConsentView:
    """What the guardian's page shows: who asks, for which cohort, when."""

    consent_id: int
    young_first_name: str
    young_last_name: str
    guardian_name: str
    cohort_name: str
    missions_start: date
    missions_end: date
    decision: str | None


async def check(session: AsyncSession, *, secret: str, token: object, now: float) -> ConsentView:
    """A genuine, unexpired link's request (decided or not). Changes nothing. Raises `YouthLinkInvalid` or
    `YouthLinkExpired`."""
    consent_id = links.read_id(secret, Purpose.CONSENT, token, now)
    row = (await session.execute(
        select(GuardianConsent.id, YoungPerson.first_name, YoungPerson.last_name, GuardianConsent.guardian_name,
               Cohort.name, Cohort.missions_start, Cohort.missions_end, GuardianConsent.decision,
               GuardianConsent.expires_at)
        .join(YoungPerson, YoungPerson.id == GuardianConsent.young_person_id)
        .join(Cohort, Cohort.id == YoungPerson.cohort_id)
        .where(GuardianConsent.id == consent_id)
    )).first()
    if row is None or (row.decision is None and row.expires_at.timestamp() <= now):
        raise YouthLinkExpired
    return ConsentView(consent_id=row[0], young_first_name=row[1], young_last_name=row[2], guardian_name=row[3],
                       cohort_name=row[4], missions_start=row[5], missions_end=row[6], decision=row[7])


async def decide(session: AsyncSession, *, secret: str, token: object, now: float, given: bool,
                 signed_name: str) -> ConsentDecision:
    """Records the guardian's answer (atomically: only an undecided, unexpired request takes it) and moves the young
    person to `ready` or `consent_refused`. Raises `YouthLinkInvalid`, `YouthLinkExpired` or `ConsentAlreadyDecided`."""
    consent_id = links.read_id(secret, Purpose.CONSENT, token, now)
    decision = ConsentDecision.GIVEN if given else ConsentDecision.REFUSED
    young_person_id = await session.scalar(
        update(GuardianConsent)
        .where(GuardianConsent.id == consent_id, GuardianConsent.decision.is_(None),
               GuardianConsent.expires_at > func.now())
        .values(decision=decision.value, decided_at=func.now(), signed_name=signed_name)
        .returning(GuardianConsent.young_person_id)
    )
    if young_person_id is None:
        earlier = await session.scalar(select(GuardianConsent.decision).where(GuardianConsent.id == consent_id))
        if earlier is not None:
            raise ConsentAlreadyDecided(earlier)
        raise YouthLinkExpired
    status = YouthStatus.READY if given else YouthStatus.CONSENT_REFUSED
    await session.execute(
        update(YoungPerson).where(YoungPerson.id == young_person_id, YoungPerson.status == YouthStatus.AWAITING_CONSENT)
        .values(status=status.value)
    )
    return decision
