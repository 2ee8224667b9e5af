"""Bodies and payloads of the sign-up path."""

from __future__ import annotations

from datetime import date, datetime

import msgspec


class QueuedSignup(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A validated sign-up as it waits in Redis for a worker. `duplicate` marks a repeat of a known e-mail: it
    carries no personal data beyond the key, and ends in a reminder e-mail instead of a row. `unconfirmed` is set by
    the accept script past the per-address limit: saved, but held back until its e-mail is confirmed. Default
    fields are left out of the encoding (the accept script relies on it to add `unconfirmed`)."""

    receipt: str
    email_normalized: str
    accepted_at: datetime
    duplicate: bool = False
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str | None = None
    birth_date: date | None = None
    postal_code: str = ""
    commune_code: str = ""
    domains: list[str] = []
    availability: str = ""
    skills: list[str] = []
    emergency: str | None = None
    consent_at: datetime | None = None
    unconfirmed: bool = False
    # The terms of use version consented to (app/legal/current.py); None when Redis did not know it, and the drain
    # then records the version in force at `accepted_at`.
    terms_version: int | None = None


class SignupAccepted(msgspec.Struct, frozen=True):
    receipt: str
    status: str = "accepted"


class ReceiptStatus(msgspec.Struct, frozen=True):
    receipt: str
    status: str


class ValidationErrors(msgspec.Struct, frozen=True):
    errors: dict[str, str]
