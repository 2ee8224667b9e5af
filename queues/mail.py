"""The e-mail job: sends volunteer e-mails through SMTP, at most once per idempotency key, throttled per person."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.db.base import unit_of_work
from app.mail import build, render, smtp_connection
from app.volunteers.models import Volunteer
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
SENT_TTL = 30 * 86_400


def send_volunteer_mails(kind: str, recipients: list[list]) -> dict[str, int]:
    return run_job(lambda context: _send(context, kind, [(int(vid), str(key)) for vid, key in recipients]))


async def _send(context: JobContext, kind: str, recipients: list[tuple[int, str]]) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    async with unit_of_work(context.engine) as session:
        rows = await session.execute(
            select(Volunteer.id, Volunteer.email, Volunteer.first_name, Volunteer.emergency_slug).where(
                Volunteer.id.in_([volunteer_id for volunteer_id, _ in recipients])
            )
        )
        volunteers = {row.id: row for row in rows}
    sent = throttled = 0
    with smtp_connection(settings.smtp_url) as smtp:
        for volunteer_id, key in recipients:
            volunteer = volunteers.get(volunteer_id)
            if volunteer is None or await redis.exists(f"renfort:mail:sent:{key}"):
                continue  # deleted since, or already sent by an earlier run of this job
            hourly = f"renfort:mail:hourly:{volunteer_id}"
            count = await redis.incr(hourly)
            if count == 1:
                await redis.expire(hourly, 3600)
            if count > settings.mails_per_recipient_per_hour:
                throttled += 1
                await redis.set(f"renfort:mail:sent:{key}", "throttled", ex=SENT_TTL)
                continue
            subject, body = render(
                kind, first_name=volunteer.first_name, emergency=volunteer.emergency_slug, base_url=settings.base_url
            )
            smtp.send_message(build(settings.mail_from, volunteer.email, subject, body))
            # Marked after sending: a crash in between may send twice, never zero times.
            await redis.set(f"renfort:mail:sent:{key}", "1", ex=SENT_TTL)
            sent += 1
    log.info("%s e-mails: %d sent, %d throttled", kind, sent, throttled)
    return {"sent": sent, "throttled": throttled}
