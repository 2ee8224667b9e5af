"""The e-mail jobs: volunteer e-mails and sign-in e-mails through SMTP, each at most once per idempotency key and
throttled per person (all kinds counted together)."""

from __future__ import annotations

import logging
import smtplib
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from redis.asyncio import Redis
from sqlalchemy import ARRAY, BigInteger, bindparam, func, select

from app.accounts.service import forget_request, prepare_signin_mail
from app.applications.models import Application
from app.db.base import unit_of_work
from app.mail import build, render, smtp_connection
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.settings import Settings
from app.sms import SmsSender, sender_for
from app.volunteers.models import Volunteer
from app.volunteers.signup_queue import digest
from queues.runtime import JobContext, run_job
from surge.dispatch import links

log = logging.getLogger("renfort.mail")
SENT_TTL = 30 * 86_400
PARIS = ZoneInfo("Europe/Paris")


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
    volunteer_ids = list({int(item[1]) for item in items})
    async with unit_of_work(context.engine) as session:
        volunteers = {row.id: row for row in await session.execute(
            select(Volunteer.id, Volunteer.email, Volunteer.email_normalized, Volunteer.first_name, Volunteer.phone,
                   Volunteer.mail_applications, Volunteer.mail_emergencies)
            .where(Volunteer.id == func.any(bindparam("ids", volunteer_ids, type_=ARRAY(BigInteger))))
        )}
        missions = {row.id: row for row in await session.execute(
            select(Mission.id, Mission.title, Organisation.name.label("organisation_name"))
            .join(Organisation, Organisation.id == Mission.organisation_id).where(Mission.id.in_(mission_ids))
        )}
        applications = {(row.mission_id, row.volunteer_id): row for row in await session.execute(
            select(Application.mission_id, Application.volunteer_id, Application.reason, Application.status,
                   Application.dispatch_run_id, Application.expires_at)
            .where(Application.mission_id.in_(mission_ids),
                   Application.volunteer_id == func.any(bindparam("vids", volunteer_ids, type_=ARRAY(BigInteger))))
        )}
    skipped = 0
    sms = sender_for(settings)
    with smtp_connection(settings.smtp_url) as smtp:
        outbox = Outbox(settings, context.redis, smtp)
        for item in items:
            mission_id, volunteer_id, kind, key = int(item[0]), int(item[1]), str(item[2]), str(item[3])
            volunteer, mission = volunteers.get(volunteer_id), missions.get(mission_id)
            application = applications.get((mission_id, volunteer_id))
            if volunteer is None or mission is None:
                continue  # deleted since
            wanted = volunteer.mail_emergencies if kind.startswith("dispatch_") else volunteer.mail_applications
            if not wanted and kind != "application_message":
                skipped += 1  # the volunteer turned these e-mails off in their preferences
                continue
            links: dict[str, str] = {}
            if kind == "dispatch_proposal":
                if application is None or application.status != "proposed" or application.expires_at is None:
                    continue  # answered, lapsed or withdrawn before this e-mail left
                links = proposal_links(settings, mission_id, volunteer_id, application.dispatch_run_id or 0,
                                       application.expires_at)
            await outbox.send(
                key, email=volunteer.email, email_normalized=volunteer.email_normalized, kind=kind,
                first_name=volunteer.first_name, mission_title=mission.title,
                organisation_name=mission.organisation_name, reason=application.reason if application else None,
                body=str(item[4]) if len(item) > 4 else "", base_url=settings.base_url, **links,
            )
            if links and volunteer.phone:
                await send_sms(context.redis, sms, key, volunteer_id, volunteer.phone,
                               f"Renfort : une mission vous est proposée ({mission.title[:60]}). Confirmez ici : "
                               f"{links['confirm_url']}")
    log.info("application e-mails: %d sent, %d throttled, %d off by preference", outbox.counts["sent"],
             outbox.counts["throttled"], skipped)
    return outbox.counts


def proposal_links(settings: Settings, mission_id: int, volunteer_id: int, run_id: int,
                   expires_at: datetime) -> dict[str, str]:
    """The signed confirm and decline links of a proposal, and its expiry in words (Paris time)."""
    secret, expiry = settings.secret_key.reveal(), int(expires_at.timestamp())
    local = expires_at.astimezone(PARIS)
    return {
        "confirm_url": links.url(settings.base_url, secret, "confirmer", mission_id, volunteer_id, run_id, expiry),
        "decline_url": links.url(settings.base_url, secret, "decliner", mission_id, volunteer_id, run_id, expiry),
        "expires": f"{local:%d/%m/%Y} à {local:%H} h {local:%M}",
    }


async def send_sms(redis: Redis, sender: SmsSender, key: str, volunteer_id: int, phone: str, text: str) -> None:
    """At most once per key: a text message costs money and a second one helps nobody."""
    if await redis.set(sent_key(f"sms:{key}"), "1", nx=True, ex=SENT_TTL):
        sender.send(volunteer_id=volunteer_id, phone=phone, text=text)
