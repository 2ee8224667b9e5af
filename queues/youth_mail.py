"""The youth space's e-mails: sign-up confirmations, referents' invitations and guardians' consent requests.
Rendered from PostgreSQL (or the sign-up's Redis record) when sent and handed to the outbox (queues/outbox.py: once
per idempotency key, within the recipient's budget, later rather than never); payloads hold ids and keys only, and
every link is minted here from them (app/youth/links.py)."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from app.db.base import unit_of_work
from app.youth import consent, service
from app.youth.models import Cohort, GuardianConsent, YoungPerson, YouthInvitation
from queues import enqueue
from queues.mail import summary
from queues.mail_keys import MailKeys
from queues.outbox import Letter, Outcome, count_drop, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
INVITATION = "youth_invitation"
CONSENT = "youth_guardian_consent"


def send_youth_signup_mail(key: str) -> dict[str, int]:
    """`key` names the sign-up in Redis; the job payload never holds the address."""
    return run_job(lambda context: _send_signup_mail(context, str(key)))


async def _send_signup_mail(context: JobContext, key: str) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    letter_key = f"youth_signup:{key}"
    if await redis.exists(MailKeys(letter_key).sent):
        return {Outcome.DUPLICATE.value: 1}
    async with unit_of_work(context.engine) as session:
        mail = await service.prepare_signup_mail(session, redis, secret=settings.secret_key.reveal(), key=key,
                                                 base_url=settings.base_url)
    if mail is None:
        await count_drop(redis, "youth_signup", Outcome.LAPSED.value)
        return {Outcome.LAPSED.value: 1}
    letter = Letter(letter_key, mail.kind, mail.email_normalized, mail.context, item=(key,), lapses_at=mail.lapses_at)

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_signup_mail(context.rq_connection, key, delay=delay)

    batch = await post(settings, redis, [letter], again)
    log.info("youth sign-up e-mail (%s): %s", mail.kind, summary(batch.summary()))
    return batch.summary()


def send_youth_invitation_mail(invitation_id: int) -> dict[str, int]:
    return run_job(lambda context: _send_invitation_mail(context, int(invitation_id)))


async def _send_invitation_mail(context: JobContext, invitation_id: int) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    async with unit_of_work(context.engine) as session:
        row = (await session.execute(
            select(YouthInvitation.email_normalized, YouthInvitation.first_name, YouthInvitation.expires_at,
                   YouthInvitation.accepted_at, Cohort.name)
            .join(Cohort, Cohort.id == YouthInvitation.cohort_id).where(YouthInvitation.id == invitation_id)
        )).first()
    if row is None or row.accepted_at is not None or row.expires_at.timestamp() <= time.time():
        await count_drop(redis, INVITATION, Outcome.LAPSED.value)
        return {Outcome.LAPSED.value: 1}
    values = {"first_name": row.first_name, "cohort_name": row.name, "days": service.INVITATION_DAYS,
              "link": service.invitation_url(settings.base_url, settings.secret_key.reveal(), invitation_id,
                                             row.expires_at),
              "base_url": settings.base_url}
    letter = Letter(f"youth_invitation:{invitation_id}", INVITATION, row.email_normalized, values,
                    item=(invitation_id,), ids=f"youth invitation {invitation_id}",
                    lapses_at=row.expires_at.timestamp())

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_invitation_mail(context.rq_connection, invitation_id, delay=delay)

    batch = await post(settings, redis, [letter], again)
    log.info("youth invitation e-mail: %s (invitation %d)", summary(batch.summary()), invitation_id)
    return batch.summary()


def send_guardian_consent_mail(consent_id: int) -> dict[str, int]:
    return run_job(lambda context: _send_consent_mail(context, int(consent_id)))


async def _send_consent_mail(context: JobContext, consent_id: int) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    async with unit_of_work(context.engine) as session:
        row = (await session.execute(
            select(GuardianConsent.guardian_email, GuardianConsent.guardian_name, GuardianConsent.expires_at,
                   GuardianConsent.decision, YoungPerson.first_name, YoungPerson.last_name, Cohort.name,
                   Cohort.missions_start, Cohort.missions_end)
            .join(YoungPerson, YoungPerson.id == GuardianConsent.young_person_id)
            .join(Cohort, Cohort.id == YoungPerson.cohort_id)
            .where(GuardianConsent.id == consent_id)
        )).first()
    if row is None or row.decision is not None or row.expires_at.timestamp() <= time.time():
        await count_drop(redis, CONSENT, Outcome.LAPSED.value)
        return {Outcome.LAPSED.value: 1}
    values = {"guardian_name": row.guardian_name, "first_name": row.first_name, "last_name": row.last_name,
              "cohort_name": row.name, "missions_start": f"{row.missions_start:%d/%m/%Y}",
              "missions_end": f"{row.missions_end:%d/%m/%Y}", "days": consent.CONSENT_DAYS,
              "link": consent.url(settings.base_url, settings.secret_key.reveal(), consent_id, row.expires_at),
              "base_url": settings.base_url}
    letter = Letter(f"youth_consent:{consent_id}", CONSENT, row.guardian_email, values, item=(consent_id,),
                    ids=f"guardian consent {consent_id}", lapses_at=row.expires_at.timestamp())

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_guardian_consent_mail(context.rq_connection, consent_id, delay=delay)

    batch = await post(settings, redis, [letter], again)
    log.info("guardian consent e-mail: %s (consent %d)", summary(batch.summary()), consent_id)
    return batch.summary()
