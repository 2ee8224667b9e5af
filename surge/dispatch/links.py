"""The links of a proposal e-mail: `<mission>.<volunteer>.<run>.<expiry>.<signature>`, HMAC-SHA256 with SECRET_KEY
over the action (confirm or decline), the ids and the expiry.

The signature makes a forged or altered link worthless and binds it to one answer; the expiry is the proposal's;
single use comes from the proposal itself: answering moves it out of `proposed` atomically in Redis, so a second
click, or the other link, finds nothing left to answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

ACTIONS = ("confirmer", "decliner")


class LinkInvalid(Exception):
    """Not a proposal link we signed: malformed, forged, altered, or made for the other answer."""


class LinkExpired(Exception):
    """A genuine link past the proposal's expiry."""


@dataclass(frozen=True, slots=True)
class ProposalLink:
    action: str
    mission_id: int
    volunteer_id: int
    run_id: int
    expires_at: int


def _signature(secret: str, action: str, body: str) -> str:
    # The purpose is part of the message: a sign-in signature, or the other answer's, never matches.
    mac = hmac.new(secret.encode(), f"dispatch-{action}:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def mint(secret: str, action: str, mission_id: int, volunteer_id: int, run_id: int, expires_at: int) -> str:
    body = f"{mission_id}.{volunteer_id}.{run_id}.{expires_at}"
    return f"{body}.{_signature(secret, action, body)}"


def url(base_url: str, secret: str, action: str, mission_id: int, volunteer_id: int, run_id: int,
        expires_at: int) -> str:
    token = mint(secret, action, mission_id, volunteer_id, run_id, expires_at)
    return f"{base_url}/mobilisation/{action}?jeton={token}"


def read(secret: str, action: str, token: str, now: float) -> ProposalLink:
    """Checks the action, the signature, then the expiry; raises `LinkInvalid` or `LinkExpired`."""
    parts = token.strip().split(".")
    if action not in ACTIONS or len(parts) != 5 or len(token) > 200 or not all(p.isdecimal() for p in parts[:4]):
        raise LinkInvalid
    body, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(signature.encode(), _signature(secret, action, body).encode()):
        raise LinkInvalid
    mission_id, volunteer_id, run_id, expiry = (int(part) for part in parts[:4])
    if expiry <= now:
        raise LinkExpired
    return ProposalLink(action, mission_id, volunteer_id, run_id, expiry)
