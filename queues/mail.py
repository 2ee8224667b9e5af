"""The e-mail jobs: volunteer e-mails and sign-in e-mails through SMTP, each at most once per idempotency key and
throttled per person (all kinds counted together)."""

from __future__ import annotations

import logging
import smtplib
import time

from redis.asyncio import Redis
from sqlalchemy import select

from app.accounts.service import forget_request, prepare_signin_mail
from app.applications.models import Application
from app.db.base import unit_of_work
from app.mail import build, render, smtp_connection
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.settings import Settings
from app.volunteers.models import Volunteer
from app.volunteers.signup_queue import digest
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
SENT_TTL = 30 * 86_400


def sent_key(key: str) -> str:
    return f"renfort:mail:sent:{key}"


class Outbox:
    """Sends through one SMTP connection, skipping keys already sent and recipients over their hourly quota."""

    def __init__(self, settings: Settings, redis: Redis, smtp: smtplib.SMTP) -> None:
        self.settings, self.redis, self.smtp = settings, redis, smtp
        self.counts = {"sent": 0, "throttled": 0}

    async def already_sent(self, key: str) -> bool:
        return bool(await self.redis.exists(sent_key(key)))

    async def send(self, key: str, *, email: str, email_normalized: str, kind: str, **context: object) -> None:
        if await self.already_sent(key):
            return  # by an earlier run of this job
        # Keyed by the address's digest, not an id: sign-in e-mails go to people who may have no row yet.
        hourly = f"renfort:mail:hourly:{digest(self.settings.secret_key.reveal(), email_normalized)}"
        count = await self.redis.incr(hourly)
        if count == 1:
            await self.redis.expire(hourly, 3600)
        if count > self.settings.mails_per_recipient_per_hour:
            self.counts["throttled"] += 1
            await self.redis.set(sent_key(key), "throttled", ex=SENT_TTL)
            return
        subject, body = render(kind, **context)
        self.smtp.send_message(build(self.settings.mail_from, email, subject, body))
        # Marked after sending: a crash in between may send twice, never zero times.
        await self.redis.set(sent_key(key), "1", ex=SENT_TTL)
        self.counts["sent"] += 1


def send_volunteer_mails(kind: str, recipients: list[list]) -> dict[str, int]:
    return run_job(lambda context: _send_volunteer_mails(context, kind, [(int(v), str(k)) for v, k in recipients]))


async def _send_volunteer_mails(context: JobContext, kind: str, recipients: list[tuple[int, str]]) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        rows = await session.execute(
            select(Volunteer.id, Volunteer.email, Volunteer.email_normalized, Volunteer.first_name,
                   Volunteer.emergency_slug).where(Volunteer.id.in_([volunteer_id for volunteer_id, _ in recipients]))
        )
        volunteers = {row.id: row for row in rows}
    with smtp_connection(settings.smtp_url) as smtp:
        outbox = Outbox(settings, context.redis, smtp)
        for volunteer_id, key in recipients:
            volunteer = volunteers.get(volunteer_id)
            if volunteer is None:
                continue  # deleted since
            await outbox.send(
                key,
                email=volunteer.email,
                email_normalized=volunteer.email_normalized,
                kind=kind,
                first_name=volunteer.first_name,
                emergency=volunteer.emergency_slug,
                base_url=settings.base_url,
            )
    log.info("%s e-mails: %d sent, %d throttled", kind, outbox.counts["sent"], outbox.counts["throttled"])
    return outbox.counts


def send_signin_mail(key: str) -> dict[str, int]:
    """`key` names the sign-in request in Redis; the job payload never holds the address."""
    return run_job(lambda context: _send_signin_mail(context, key))


async def _send_signin_mail(context: JobContext, key: str) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    if await redis.exists(sent_key(f"signin:{key}")):
        return {"sent": 0, "throttled": 0}  # a retry of a job that got as far as sending
    async with unit_of_work(context.engine) as session:
        mail = await prepare_signin_mail(
            session,
            redis,
            secret=settings.secret_key.reveal(),
            key=key,
            link_ttl=settings.signin_link_ttl_seconds,
            base_url=settings.base_url,
            now=time.time(),
        )
    if mail is None:
        log.info("sign-in request expired before its e-mail was sent")
        return {"sent": 0, "throttled": 0}
    with smtp_connection(settings.smtp_url) as smtp:
        outbox = Outbox(settings, redis, smtp)
        await outbox.send(
            f"signin:{key}", email=mail.email, email_normalized=mail.email_normalized, kind=mail.kind, **mail.context
        )
    await forget_request(redis, key)
    log.info("sign-in e-mail (%s): %d sent, %d throttled", mail.kind, outbox.counts["sent"], outbox.counts["throttled"])
    return outbox.counts


def send_application_mails(items: list[list]) -> dict[str, int]:
    """`items`: (mission id, volunteer id, kind, key[, body]); a body is a manager's message, read from the job."""
    return run_job(lambda context: _send_application_mails(context, items))


async def _send_application_mails(context: JobContext, items: list[list]) -> dict[str, int]:
    settings = context.settings
    mission_ids = {int(item[0]) for item in items}
    volunteer_ids = {int(item[1]) for item in items}
    async with unit_of_work(context.engine) as session:
        volunteers = {row.id: row for row in await session.execute(
            select(Volunteer.id, Volunteer.email, Volunteer.email_normalized, Volunteer.first_name,
                   Volunteer.mail_applications).where(Volunteer.id.in_(volunteer_ids))
        )}
        missions = {row.id: row for row in await session.execute(
            select(Mission.id, Mission.title, Organisation.name.label("organisation_name"))
            .join(Organisation, Organisation.id == Mission.organisation_id).where(Mission.id.in_(mission_ids))
        )}
        reasons = {(row.mission_id, row.volunteer_id): row.reason for row in await session.execute(
            select(Application.mission_id, Application.volunteer_id, Application.reason)
            .where(Application.mission_id.in_(mission_ids), Application.volunteer_id.in_(volunteer_ids))
        )}
    skipped = 0
    with smtp_connection(settings.smtp_url) as smtp:
        outbox = Outbox(settings, context.redis, smtp)
        for item in items:
            mission_id, volunteer_id, kind, key = int(item[0]), int(item[1]), str(item[2]), str(item[3])
            volunteer, mission = volunteers.get(volunteer_id), missions.get(mission_id)
            if volunteer is None or mission is None:
                continue  # deleted since
            if not volunteer.mail_applications and kind != "application_message":
                skipped += 1  # the volunteer turned these e-mails off in their preferences
                continue
            await outbox.send(
                key, email=volunteer.email, email_normalized=volunteer.email_normalized, kind=kind,
                first_name=volunteer.first_name, mission_title=mission.title,
                organisation_name=mission.organisation_name, reason=reasons.get((mission_id, volunteer_id)),
                body=str(item[4]) if len(item) > 4 else "", base_url=settings.base_url,
            )
    log.info("application e-mails: %d sent, %d throttled, %d off by preference", outbox.counts["sent"],
             outbox.counts["throttled"], skipped)
    return outbox.counts
