"""The e-mail jobs: volunteer, sign-in and application e-mails, each rendered from PostgreSQL when it is sent and
handed to the outbox (queues/outbox.py), which sends it at most once per idempotency key. An e-mail over its
recipient's budget, or refused for now, is enqueued again for later (RQ's scheduler) with its ids and key only,
and rendered again then: a person deleted or a proposal answered meanwhile gets nothing."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy import ARRAY, BigInteger, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.models import User
from app.accounts.service import forget_request, prepare_signin_mail
from app.applications.models import Application
from app.applications.statuses import ApplicationStatus as Status
from app.db.base import unit_of_work
from app.formats import PARIS
from app.missions.models import Mission
from app.organisations.models import Organisation, OrganisationManager
from app.settings import Settings
from app.sms import SmsSender, sender_for
from app.volunteers import confirmation
from app.volunteers.models import Volunteer
from queues import enqueue
from queues.mail_keys import SENT_TTL, MailKeys
from queues.outbox import Letter, Outcome, count_drop, keep_body, post
from queues.runtime import JobContext, run_job
from surge.dispatch import links
from surge.emergencies.models import Emergency

log = logging.getLogger("renfort.mail")
CONFIRM = "confirm_email"


def send_volunteer_mails(kind: str, recipients: list[list]) -> dict[str, int]:
    return run_job(lambda context: _send_volunteer_mails(context, kind, [(int(v), str(k)) for v, k in recipients]))


async def _send_volunteer_mails(context: JobContext, kind: str, recipients: list[tuple[int, str]]) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        rows = await session.execute(
            select(Volunteer.id, Volunteer.email_normalized, Volunteer.first_name, Volunteer.emergency_slug,
                   Volunteer.unconfirmed, Volunteer.accepted_at)
            .where(Volunteer.id.in_([volunteer_id for volunteer_id, _ in recipients]))
        )
        volunteers = {row.id: row for row in rows}
        titles = await emergency_titles(session, {row.emergency_slug for row in volunteers.values()})
    letters = []
    for volunteer_id, key in recipients:
        volunteer = volunteers.get(volunteer_id)
        if volunteer is None:
            continue  # deleted since: nothing to send
        # Held back, a sign-up gets the confirmation e-mail only; confirmed meanwhile, not even that.
        if volunteer.unconfirmed != (kind == CONFIRM):
            continue
        values = {"first_name": volunteer.first_name, "emergency": titles.get(volunteer.emergency_slug or ""),
                  "base_url": settings.base_url}
        letter_key, lapses_at = key, None
        if kind == CONFIRM:
            expiry = confirmation.expiry_of(volunteer.accepted_at)
            values |= {"confirm_url": confirmation.url(settings.base_url, settings.secret_key.reveal(), volunteer_id,
                                                         expiry), "days": confirmation.HOLD_DAYS}
            # The drain names it by the welcome's key, which the welcome itself needs once the address is confirmed.
            letter_key, lapses_at = f"{CONFIRM}:{key}", float(expiry)
        letters.append(Letter(letter_key, kind, volunteer.email_normalized, values, item=(volunteer_id, key),
                              ids=f"volunteer {volunteer_id}", lapses_at=lapses_at))

    def again(group: list[Letter], delay: int) -> None:
        pairs = [(int(letter.item[0]), str(letter.item[1])) for letter in group]
        enqueue.send_volunteer_mails(context.rq_connection, kind, pairs, delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("%s e-mails: %s, %d gone or moot", kind, summary(batch.summary()), len(recipients) - len(letters))
    return batch.summary()


async def emergency_titles(session: AsyncSession, slugs: set[str | None]) -> dict[str, str]:
    """Slug → title of the emergencies these sign-ups came from (a draft, or one deleted since, is named by none)."""
    wanted = sorted(slug for slug in slugs if slug)
    if not wanted:
        return {}
    rows = await session.execute(
        select(Emergency.slug, Emergency.title).where(Emergency.slug.in_(wanted), Emergency.status != "draft")
    )
    return {slug: title for slug, title in rows}


def send_signin_mail(key: str) -> dict[str, int]:
    """`key` names the sign-in request in Redis; the job payload never holds the address."""
    return run_job(lambda context: _send_signin_mail(context, key))


async def _send_signin_mail(context: JobContext, key: str) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    letter_key = f"signin:{key}"
    if await redis.exists(MailKeys(letter_key).sent):
        await forget_request(redis, key)
        return {Outcome.DUPLICATE.value: 1}  # a retry of a job that got as far as sending
    # The request lives as long as a link would: past it, the e-mail is worth nothing and must not leave.
    left_ms = await redis.pttl(tokens.request_key(key))
    now = time.time()
    async with unit_of_work(context.engine) as session:
        mail = await prepare_signin_mail(
            session,
            redis,
            secret=settings.secret_key.reveal(),
            key=key,
            link_ttl=settings.signin_link_ttl_seconds,
            base_url=settings.base_url,
            now=now,
        )
    if mail is None or left_ms <= 0:
        await count_drop(redis, "signin", Outcome.LAPSED.value)
        log.info("a sign-in request lapsed before its e-mail could leave")
        return {Outcome.LAPSED.value: 1}
    letter = Letter(letter_key, mail.kind, mail.email_normalized, mail.context, item=(key,),
                    lapses_at=now + left_ms / 1000)

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_signin_mail(context.rq_connection, key, delay=delay)

    batch = await post(settings, redis, [letter], again)
    if not batch.later:
        await forget_request(redis, key)
    log.info("sign-in e-mail (%s): %s", mail.kind, summary(batch.summary()))
    return batch.summary()


def send_application_mails(items: list[list], sender_user_id: int | None = None) -> dict[str, int]:
    """`items`: (mission id, volunteer id, kind, key); a manager's message is read from Redis by its key (a fifth
    element, the body itself, is still accepted from jobs queued before). `sender_user_id`: the manager who wrote
    it, whom the volunteers' answers go to (Reply-To) while they manage the mission's organisation."""
    return run_job(lambda context: _send_application_mails(
        context, items, None if sender_user_id is None else int(sender_user_id)))


async def _send_application_mails(context: JobContext, items: list[list], sender_user_id: int | None = None
                                  ) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    mission_ids = {int(item[0]) for item in items}
    volunteer_ids = list({int(item[1]) for item in items})
    async with unit_of_work(context.engine) as session:
        volunteers = {row.id: row for row in await session.execute(
            select(Volunteer.id, Volunteer.email_normalized, Volunteer.first_name, Volunteer.phone,
                   Volunteer.mail_applications, Volunteer.mail_emergencies, Volunteer.unconfirmed)
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
        reply_to = await _reply_to(session, sender_user_id, mission_ids)
    bodies = await _message_bodies(redis, items)
    skipped, letters = 0, []
    sms = sender_for(settings)
    for item in items:
        mission_id, volunteer_id, kind, key = int(item[0]), int(item[1]), str(item[2]), str(item[3])
        volunteer, mission = volunteers.get(volunteer_id), missions.get(mission_id)
        application = applications.get((mission_id, volunteer_id))
        if volunteer is None or mission is None:
            continue  # deleted since
        if volunteer.unconfirmed:
            skipped += 1  # held back until their e-mail is confirmed: no mail but the confirmation
            continue
        wanted = volunteer.mail_emergencies if kind.startswith("dispatch_") else volunteer.mail_applications
        if not wanted and kind != "application_message":
            skipped += 1  # the volunteer turned these e-mails off in their preferences
            continue
        ids = f"mission {mission_id}, volunteer {volunteer_id}"
        proposal: dict[str, str] = {}
        lapses_at = None
        if kind == "dispatch_proposal":
            if (application is None or application.status != Status.PROPOSED or application.expires_at is None
                    or application.expires_at.timestamp() <= time.time()):
                skipped += 1  # answered, lapsed or withdrawn before this e-mail left
                continue
            lapses_at = application.expires_at.timestamp()
            proposal = proposal_links(settings, mission_id, volunteer_id, application.dispatch_run_id or 0,
                                      application.expires_at)
        body = bodies.get(key, "")
        if kind == "application_message" and not body:
            await count_drop(redis, kind, Outcome.LAPSED.value)
            log.warning("a manager's message was gone before it could leave (%s)", ids)
            continue
        letters.append(Letter(key, kind, volunteer.email_normalized, {
            "first_name": volunteer.first_name, "mission_title": mission.title,
            "organisation_name": mission.organisation_name, "reason": application.reason if application else None,
            "body": body, "base_url": settings.base_url, "answered_by_manager": mission_id in reply_to, **proposal,
        }, item=(mission_id, volunteer_id, kind, key), ids=ids, lapses_at=lapses_at,
            reply_to=reply_to.get(mission_id) if kind == "application_message" else None))
        if proposal and volunteer.phone:
            await send_sms(redis, sms, key, volunteer_id, volunteer.phone,
                           f"Renfort : une mission vous est proposée ({mission.title[:60]}). Confirmez ici : "
                           f"{proposal['confirm_url']}")

    def again(group: list[Letter], delay: int) -> None:
        later = [(int(letter.item[0]), int(letter.item[1]), letter.kind, letter.key) for letter in group]
        enqueue.send_application_mails(context.rq_connection, later, sender_user_id=sender_user_id, delay=delay)

    batch = await post(settings, redis, letters, again)
    log.info("application e-mails: %s, %d skipped (preferences, unconfirmed or moot)", summary(batch.summary()),
             skipped)
    return batch.summary()


async def _reply_to(session: AsyncSession, sender_user_id: int | None, mission_ids: set[int]) -> dict[int, str]:
    """Mission → the sender's address, for the missions whose organisation the sender still manages."""
    if sender_user_id is None:
        return {}
    rows = await session.execute(
        select(Mission.id, User.email_normalized)
        .join(OrganisationManager, OrganisationManager.organisation_id == Mission.organisation_id)
        .join(User, User.id == OrganisationManager.user_id)
        .where(User.id == sender_user_id, Mission.id.in_(mission_ids))
    )
    return {mission_id: email for mission_id, email in rows}


async def _message_bodies(redis: Redis, items: list[list]) -> dict[str, str]:
    """Managers' messages by key: from Redis, or from a job queued before they moved there (kept for later)."""
    bodies: dict[str, str] = {}
    for item in items:
        if str(item[2]) == "application_message" and len(item) > 4:
            bodies[str(item[3])] = str(item[4])
            await keep_body(redis, str(item[3]), str(item[4]))
    wanted = [str(item[3]) for item in items if str(item[2]) == "application_message" and str(item[3]) not in bodies]
    if wanted:
        for key, raw in zip(wanted, await redis.mget([MailKeys(key).body for key in wanted]), strict=True):
            if raw is not None:
                bodies[key] = raw.decode() if isinstance(raw, bytes) else str(raw)
    return bodies


def summary(counts: dict[str, int]) -> str:
    """A batch's outcomes for a log line."""
    return ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if count) or "nothing to send"


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
    if await redis.set(MailKeys(f"sms:{key}").sent, "1", nx=True, ex=SENT_TTL):
        sender.send(volunteer_id=volunteer_id, phone=phone, text=text)
