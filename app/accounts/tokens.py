"""Sign-in link tokens: `<id>.<expiry>.<signature>`, HMAC-SHA256 with SECRET_KEY over the id and the expiry.

The signature makes a forged or altered token worthless; the expiry bounds a leaked link; single use comes from the
link's record in Redis (`link_key`), which confirming the link deletes atomically.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "renfort:signin:"


class LinkInvalid(Exception):
    """Not a token we signed: malformed, forged or altered."""


class LinkExpired(Exception):
    """A genuine token past its expiry, or already used."""


@dataclass(frozen=True, slots=True)
class LinkToken:
    token_id: str
    expires_at: int


def request_key(key: str) -> str:
    return PREFIX + "request:" + key


def link_key(token_id: str) -> str:
    return PREFIX + "link:" + token_id


def new_id() -> str:
    return secrets.token_urlsafe(18)


def _signature(secret: str, token_id: str, expires_at: int) -> str:
    # The purpose is part of the message, so a signature made for anything else with the same key never matches.
    mac = hmac.new(secret.encode(), f"signin-link:{token_id}:{expires_at}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def mint(secret: str, token_id: str, expires_at: int) -> str:
    return f"{token_id}.{expires_at}.{_signature(secret, token_id, expires_at)}"


def read(secret: str, token: str, now: float) -> LinkToken:
    """Checks the signature, then the expiry; raises `LinkInvalid` or `LinkExpired`."""
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1].isdecimal() or len(token) > 200:
        raise LinkInvalid
    token_id, expiry, signature = parts
    if not hmac.compare_digest(signature.encode(), _signature(secret, token_id, int(expiry)).encode()):
        raise LinkInvalid
    if int(expiry) <= now:
        raise LinkExpired
    return LinkToken(token_id=token_id, expires_at=int(expiry))
