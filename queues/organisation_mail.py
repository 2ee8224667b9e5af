"""Organisation e-mails: invitations to manage one, and moderation decisions told to its managers. Rendered from
PostgreSQL when sent and handed to the outbox (queues/outbox.py: once per idempotency key, within the recipient's
budget, later rather than never); payloads hold ids only."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from app.db.base import unit_of_work
from app.organisations import invitations
from app.organisations.managers import manager_addresses
from app.organisations.models import ManagerInvitation, Organisation
from app.organisations.notifications import stamp
from queues import enqueue
from queues.mail import summary
from queues.mail_keys import MailKeys
from queues.outbox import Letter, Outcome, count_drop, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
INVITATION = "organisation_invitation"
STATUS = "organisation_status"


def send_invitation_mail(invitation_id: int) -> dict[str, int]:
    return run_job(lambda context: _send_invitation_mail(context, int(invitation_id)))


async def _send_invitation_mail(context: JobContext, invitation_id: int) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    letter_key, token_key = f"invitation:{invitation_id}", invitations.InvitationKeys(invitation_id).token
    if await redis.exists(MailKeys(letter_key).sent):
        await redis.delete(token_key)
        return {Outcome.DUPLICATE.value: 1}  # a retry of a job that got as far as sending
    async with unit_of_work(context.engine) as session:
        row = (await session.execute(
            select(ManagerInvitation.email_normalized, ManagerInvitation.invited_by, ManagerInvitation.expires_at,
                   ManagerInvitation.accepted_at, Organisation.name)
            .join(Organisation, Organisation.id == ManagerInvitation.organisation_id)
            .where(ManagerInvitation.id == invitation_id)
        )).first()
    raw = await redis.get(token_key)
    if row is None or row.accepted_at is not None or raw is None or row.expires_at.timestamp() <= time.time():
        # Cancelled, accepted, expired, or its organisation purged meanwhile: the link would be worth nothing.
        await redis.delete(token_key)
        await count_drop(redis, INVITATION, Outcome.LAPSED.value)
        return {Outcome.LAPSED.value: 1}
    token = raw.decode() if isinstance(raw, bytes) else str(raw)
    context_values = {
        "organisation_name": row.name, "creator": row.invited_by is None, "days": settings.invitation_days,
        "link": invitations.url(settings.base_url, token), "base_url": settings.base_url,
    }
    letter = Letter(letter_key, INVITATION, row.email_normalized, context_values, item=(invitation_id,),
                    ids=f"invitation {invitation_id}", lapses_at=row.expires_at.timestamp())

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_invitation_mail(context.rq_connection, invitation_id, delay=delay)

    batch = await post(settings, redis, [letter], again)
    if not batch.later:
        await redis.delete(token_key)  # sent or given up: the token lives on in the e-mail only
    log.info("invitation e-mail: %s (invitation %d)", summary(batch.summary()), invitation_id)
    return batch.summary()


def send_organisation_status_mails(organisation_id: int, action: str, changed: int,
                                   user_ids: list[int] | None = None) -> dict[str, int]:
    return run_job(lambda context: _send_status_mails(
        context, int(organisation_id), str(action), int(changed),
        None if user_ids is None else [int(user_id) for user_id in user_ids],
    ))


async def _send_status_mails(context: JobContext, organisation_id: int, action: str, changed: int,
                             user_ids: list[int] | None) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        organisation = (await session.execute(
            select(Organisation.id, Organisation.name, Organisation.status, Organisation.status_reason,
                   Organisation.status_changed_at).where(Organisation.id == organisation_id)
        )).first()
        managers = await manager_addresses(session, organisation_id, user_ids)
    if organisation is None or stamp(organisation.status_changed_at) != changed:
        # Deleted, or decided again since: the later decision has its own e-mail.
        await count_drop(context.redis, STATUS, Outcome.LAPSED.value)
        log.info("an organisation's status e-mail is moot (organisation %d)", organisation_id)
        return {Outcome.LAPSED.value: 1}
    values = {"organisation_name": organisation.name, "action": action, "reason": organisation.status_reason,
              "organisation_id": organisation_id, "base_url": settings.base_url}
    letters = [Letter(f"organisation_status:{organisation_id}:{changed}:{user_id}", STATUS, email, values,
                      item=(user_id,), ids=f"organisation {organisation_id}, user {user_id}")
               for user_id, email in managers]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_organisation_status_mails(context.rq_connection, organisation_id, action, changed,
                                               [int(letter.item[0]) for letter in group], delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("organisation status e-mails (%s): %s (organisation %d)", action, summary(batch.summary()),
             organisation_id)
    return batch.summary()
