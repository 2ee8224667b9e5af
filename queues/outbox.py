"""The outbox: sends a batch of e-mails through one SMTP session, each at most once per idempotency key, within
the recipient's budget for that family of e-mails. Nothing is dropped for being over budget: it waits until the
budget frees up. Only e-mails whose content lapses (a sign-in request, a dispatch proposal) are dropped, when they
cannot leave in time. One recipient's refusal never holds back the rest of the batch."""

from __future__ import annotations

import logging
import smtplib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from math import ceil
from pathlib import Path

from jinja2 import TemplateError
from redis.asyncio import Redis

from app.mail import SmtpSession, build, render, sender_address
from app.redis_scripts import script
from app.rehearsal import is_rehearsal_address
from app.settings import Settings
from app.volunteers.signup_queue import digest
from queues.mail_keys import BODY_TTL, DROPPED, SENT_TTL, MailKeys, budget_key

log = logging.getLogger("renfort.mail")
HERE = Path(__file__).resolve().parent

# Families have their own budget per recipient, so a flood of sign-in requests never holds back a proposal.
FAMILIES = {
    "signin_link": "signin",
    "signin_unknown": "signin",
    "welcome": "account",
    "confirm_email": "account",
    "reminder": "account",
    "application_received": "application",
    "application_waitlisted": "application",
    "application_promoted": "application",
    "application_accepted": "application",
    "application_declined": "application",
    "application_message": "application",
    "application_mission_cancelled": "application",
    "application_mission_finished": "application",
    "dispatch_proposal": "dispatch",
    "dispatch_cancelled": "dispatch",
    # To managers and referents: their own counters, so a person both volunteer and manager is never held back
    # in one role by the other's e-mails.
    "manager_new_application": "organisation",
    "manager_applications_digest": "organisation",
    "manager_reminder": "organisation",
    "organisation_status": "organisation",
    "mission_validated": "organisation",
    "mission_refused": "organisation",
    "mission_suspended": "organisation",
    "mission_reinstated": "organisation",
    # Anyone may type an address to invite: a flood of invitations never holds back that person's own e-mails.
    "organisation_invitation": "invitation",
    "referent_digest": "moderation",
    # The SNU's follow-up, to young people, guardians and tutors: a budget of its own (MAIL_BUDGET_YOUTH).
    "youth_agreement_request": "youth",
    "youth_agreement_signed": "youth",
    "youth_certificate": "youth",
    "youth_signature_reminder": "youth",
    "youth_choice_reminder": "youth",
    "youth_placed": "youth",
    "youth_placed_guardian": "youth",
    "youth_unplaced": "youth",
    "youth_tutor_placements": "youth",
    "youth_offer_decision": "organisation",
}
# Refusals before an e-mail is given up: a few 5xx (the address does not exist), more when temporary (4xx).
MAX_PERMANENT_REFUSALS = 3
MAX_ATTEMPTS = 8
MAX_RETRY_SECONDS = 6 * 3600
# Longer than sending one message can take, so a claim outlives its sender only when that worker died.
CLAIM_SECONDS = 120


class Outcome(StrEnum):
    SENT = "sent"
    DUPLICATE = "duplicate"  # already sent by an earlier job naming it
    DEFERRED = "deferred"  # over budget (or being sent by another worker): to be run again later
    RETRYING = "retrying"  # the server refused it for now: to be run again later
    LAPSED = "lapsed"  # its content would be worthless by the time it could leave
    GIVEN_UP = "given_up"  # refused too often
    SKIPPED = "skipped"  # to a rehearsal address (app/rehearsal): never sent, only counted


@dataclass(frozen=True, slots=True)
class Letter:
    """One e-mail, rendered from PostgreSQL by the job. `item` is what the job re-enqueues to send it later: ids and
    the idempotency key only."""

    key: str
    kind: str
    # The address as validated and normalised at sign-up, never a raw value from a form or a header.
    recipient: str
    context: dict[str, object]
    item: tuple[int | str, ...]
    ids: str = ""  # for log lines: ids only, never an address or a name
    lapses_at: float | None = None  # epoch seconds past which the e-mail must not leave
    reply_to: str | None = None  # an address read from PostgreSQL by the job (a manager's), never from a payload

    @property
    def family(self) -> str:
        return FAMILIES.get(self.kind, "account")


@dataclass
class Batch:
    counts: Counter[str] = field(default_factory=Counter)
    later: dict[int, list[Letter]] = field(default_factory=lambda: defaultdict(list))

    def summary(self) -> dict[str, int]:
        return {outcome.value: self.counts[outcome.value] for outcome in Outcome}


def family_budget(settings: Settings, family: str) -> int:
    return {
        "signin": settings.mail_budget_signin,
        "account": settings.mail_budget_account,
        "application": settings.mail_budget_application,
        "dispatch": settings.mail_budget_dispatch,
        # Managers' and referents' e-mails share the numbers of the nearest family, with counters of their own.
        "organisation": settings.mail_budget_application,
        "moderation": settings.mail_budget_account,
        "invitation": settings.mail_budget_account,
        "youth": settings.mail_budget_youth,
    }[family]


async def count_drop(redis: Redis, kind: str, reason: str) -> None:
    await redis.hincrby(DROPPED, f"{kind}:{reason}", 1)


async def keep_body(redis: Redis, key: str, body: str) -> None:
    await redis.set(MailKeys(key).body, body, ex=BODY_TTL)


class Outbox:
    def __init__(self, settings: Settings, redis: Redis, session: SmtpSession) -> None:
        self.settings, self.redis, self.session = settings, redis, session
        self._budget = script(redis, HERE, "outbox_budget")
        self._refund = script(redis, HERE, "outbox_refund")
        self._sender = sender_address(settings.mail_from).addr_spec

    async def deliver(self, letter: Letter) -> tuple[Outcome, float]:
        """The outcome, and for DEFERRED and RETRYING the seconds to wait before running it again."""
        if is_rehearsal_address(letter.recipient):  # checked first: no claim, budget or sent mark left behind
            await count_drop(self.redis, letter.kind, Outcome.SKIPPED.value)
            return Outcome.SKIPPED, 0
        keys = MailKeys(letter.key)
        if await self.redis.exists(keys.sent):
            return Outcome.DUPLICATE, 0
        if self._lapses_within(letter, 0):
            return await self._drop(letter, Outcome.LAPSED), 0
        if not await self.redis.set(keys.claim, b"1", nx=True, ex=CLAIM_SECONDS):
            return Outcome.DEFERRED, CLAIM_SECONDS  # another worker is sending it: look again once it is done
        try:
            return await self._deliver_claimed(letter, keys)
        finally:
            await self.redis.delete(keys.claim)

    async def _deliver_claimed(self, letter: Letter, keys: MailKeys) -> tuple[Outcome, float]:
        if await self.redis.exists(keys.sent):
            return Outcome.DUPLICATE, 0  # sent by the worker that held the claim just before us
        try:
            subject, body = render(letter.kind, **letter.context)
            message = build(self.settings.mail_from, letter.recipient, subject, body, reply_to=letter.reply_to)
        except (ValueError, TemplateError):  # a bad value or template fails this e-mail, not the batch
            log.warning("a %s e-mail could not be built and is given up (%s)", letter.kind, letter.ids)
            return await self._drop(letter, Outcome.GIVEN_UP), 0
        budget = budget_key(letter.family, digest(self.settings.secret_key.reveal(), letter.recipient))
        allowed = family_budget(self.settings, letter.family)
        if allowed > 0:
            window_ms = self.settings.mail_budget_window_seconds * 1000
            left_ms = int(await self._budget(keys=[budget], args=[allowed, window_ms]))
            if left_ms > 0:
                # The scheduler moves due jobs each second: one more second and the window has surely ended.
                wait = ceil(left_ms / 1000) + 1
                if self._lapses_within(letter, wait):
                    return await self._drop(letter, Outcome.LAPSED), 0
                return Outcome.DEFERRED, wait
        try:
            self.session.send(message, self._sender, letter.recipient)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            return await self._refused(letter, budget, codes[0] if codes else 0)
        except smtplib.SMTPDataError as error:
            return await self._refused(letter, budget, error.smtp_code)
        except smtplib.SMTPServerDisconnected:
            return await self._refused(letter, budget, 0)
        # Marked after sending: a crash in between may send twice, never zero times.
        await self.redis.set(keys.sent, b"1", ex=SENT_TTL)
        return Outcome.SENT, 0

    def _lapses_within(self, letter: Letter, seconds: float) -> bool:
        return letter.lapses_at is not None and time.time() + seconds >= letter.lapses_at

    async def _refused(self, letter: Letter, budget: str, code: int) -> tuple[Outcome, float]:
        """The server would not take this one message; the rest of the batch goes on."""
        await self._refund(keys=[budget], args=[])  # it did not leave: it costs the recipient nothing
        keys = MailKeys(letter.key)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(keys.failures, "all", 1)
            pipe.hincrby(keys.failures, "permanent", 1 if 500 <= code < 600 else 0)
            pipe.expire(keys.failures, SENT_TTL)
            attempts, permanent, _ = await pipe.execute()
        if permanent >= MAX_PERMANENT_REFUSALS or attempts >= MAX_ATTEMPTS:
            log.warning("gave up on a %s e-mail after %d refusals, the last %s (%s)", letter.kind, attempts,
                        code or "a dropped connection", letter.ids)
            return await self._drop(letter, Outcome.GIVEN_UP), 0
        wait = min(self.settings.mail_retry_seconds * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        if self._lapses_within(letter, wait):
            return await self._drop(letter, Outcome.LAPSED), 0
        log.info("a %s e-mail was refused (%s), trying again in %d s (%s)", letter.kind, code or "connection lost",
                 wait, letter.ids)
        return Outcome.RETRYING, wait

    async def _drop(self, letter: Letter, outcome: Outcome) -> Outcome:
        keys = MailKeys(letter.key)
        # Marked like a sent one, so no deferred or retried job naming it tries again.
        await self.redis.set(keys.sent, outcome.value, ex=SENT_TTL)
        await self.redis.delete(keys.body)
        await count_drop(self.redis, letter.kind, outcome.value)
        if outcome is Outcome.LAPSED:
            log.info("a %s e-mail lapsed before it could leave (%s)", letter.kind, letter.ids)
        return outcome


async def post(settings: Settings, redis: Redis, letters: Sequence[Letter],
               again: Callable[[list[Letter], int], object]) -> Batch:
    """Delivers `letters` in order; those to send later are handed to `again(letters, delay)`, grouped by delay,
    even when the batch stops halfway (the SMTP server went away): what was decided is not decided twice."""
    batch = Batch()
    try:
        with SmtpSession(settings.smtp_url) as session:
            outbox = Outbox(settings, redis, session)
            for letter in letters:
                outcome, wait = await outbox.deliver(letter)
                batch.counts[outcome.value] += 1
                if outcome in (Outcome.DEFERRED, Outcome.RETRYING):
                    batch.later[int(wait)].append(letter)
    finally:
        for wait, group in sorted(batch.later.items()):
            again(group, wait)
    return batch

