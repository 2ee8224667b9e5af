"""The youth space's e-mailed links: `<subject>.<expiry>.<signature>` as app/accounts/tokens.py mints sign-in links,
signed with a key derived from SECRET_KEY for one purpose alone. A consent link is never an invitation nor a sign-up
confirmation (nor a sign-in link), an altered subject or expiry breaks the signature, and the expiry bounds a link
that leaked. Single use is each purpose's own record: a consent decided, an invitation accepted, a sign-up request
consumed."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

from app.accounts import tokens


class Purpose(StrEnum):
    CONSENT = "youth-consent"
    INVITATION = "youth-invitation"
    SIGNUP = "youth-signup"
    AGREEMENT = "youth-agreement"  # subject `<agreement id>:<party>`
    HOURS = "youth-hours"  # subject: a placement id (the tutor declares its hours)
    CERTIFICATE = "youth-certificate"  # subject: a placement id


class YouthLinkInvalid(Exception):
    """Not a link we signed for this purpose: malformed, forged, altered, or made for another purpose."""


class YouthLinkExpired(Exception):
    """A genuine link past its expiry, already used, or whose record is gone."""


@dataclass(frozen=True, slots=True)
class YouthLink:
    subject: str  # a row id, or the key of a request kept in Redis
    expires_at: int


def _key(secret: str, purpose: Purpose) -> str:
    return hmac.new(secret.encode(), purpose.value.encode(), hashlib.sha256).hexdigest()


def mint(secret: str, purpose: Purpose, subject: str | int, expires_at: int) -> str:
    return tokens.mint(_key(secret, purpose), str(subject), expires_at)


def read(secret: str, purpose: Purpose, token: object, now: float) -> YouthLink:
    """Checks the signature, then the expiry; raises `YouthLinkInvalid` or `YouthLinkExpired`."""
    if not isinstance(token, str) or not token:
        raise YouthLinkInvalid
    try:
        link = tokens.read(_key(secret, purpose), token, now)
    except tokens.LinkInvalid:
        raise YouthLinkInvalid from None
    except tokens.LinkExpired:
        raise YouthLinkExpired from None
    return YouthLink(subject=link.token_id, expires_at=link.expires_at)


def read_id(secret: str, purpose: Purpose, token: object, now: float) -> int:
    """For the purposes whose subject is a row id."""
    link = read(secret, purpose, token, now)
    if not link.subject.isdecimal() or len(link.subject) > 18:
        raise YouthLinkInvalid
    return int(link.subject)


def url(base_url: str, path: str, token: str) -> str:
    return f"{base_url}{path}?jeton={token}"
