"""The Redis keys of the e-mail outbox, spelled here only: the enqueue helpers (web side) and the outbox (workers)
both use them, and neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "renfort:mail:"
# Kept as long as a job, a retry or a deferral can still name the e-mail.
SENT_TTL = 30 * 86_400
BODY_TTL = 7 * 86_400
# Hash of e-mails given up, by "<kind>:<reason>": counted, never with an address.
DROPPED = PREFIX + "dropped"


@dataclass(frozen=True, slots=True)
class MailKeys:
    """The keys of one e-mail, named by its idempotency key."""

    key: str

    @property
    def sent(self) -> str:
        """Set once the e-mail left (or was given up): a later run of any job naming it sends nothing."""
        return f"{PREFIX}sent:{self.key}"

    @property
    def claim(self) -> str:
        """Held while one worker sends it, so two jobs naming it (a retry and a deferral) never both send."""
        return f"{PREFIX}claim:{self.key}"

    @property
    def failures(self) -> str:
        """Hash of refusals by the receiving server: `all` and `permanent` (5xx)."""
        return f"{PREFIX}failures:{self.key}"

    @property
    def body(self) -> str:
        """A manager's message, kept here rather than in job payloads."""
        return f"{PREFIX}body:{self.key}"


def budget_key(family: str, recipient_digest: str) -> str:
    """A recipient's count for one family of e-mails; by the address's digest, since sign-in e-mails go to people
    who may have no row yet."""
    return f"{PREFIX}budget:{family}:{recipient_digest}"


NOTICES = "renfort:notices:"


@dataclass(frozen=True, slots=True)
class NoticeKeys:
    """The keys that keep one organisation's new-applications e-mails to one job at a time and one digest per
    window (queues/manager_notifications.py)."""

    organisation_id: int

    @property
    def requested(self) -> str:
        """Set while a notification job is queued and not started: drains committing meanwhile ask for nothing
        more, since that job will read what they wrote."""
        return f"{NOTICES}o{self.organisation_id}:requested"

    def digest(self, due: int) -> str:
        """Set once the digest due at `due` (epoch seconds) is scheduled: one per window, however many jobs ask."""
        return f"{NOTICES}o{self.organisation_id}:digest:{due}"


def daily_lock(name: str, day: str) -> str:
    """Held for two days once the daily e-mail job `name` (reminders, the referents' digest) was scheduled for `day`
    (ISO date, Paris): one run a day, however many workers tick (queues/worker.py)."""
    return f"{NOTICES}daily:{name}:{day}"
