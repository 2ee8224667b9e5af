"""Caps on co-manager invitations, shared by every web process: per organisation and per recipient address, over a
rolling day, counting every invitation sent (one cancelled or replaced since still counts, or cancelling would
reset the count). Checked and counted in one Lua call (`invitation_limits.lua`), so concurrent invitations never get
past a cap. The address's key holds a keyed digest of it, never the address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from app.accounts import tokens
from app.redis_scripts import script
from app.volunteers.signup_queue import digest

PREFIX = "renfort:invitation-limits:"
WINDOW = 86_400
PER_ORGANISATION = 20
PER_ADDRESS = 5  # whichever organisations invite it: nobody floods an address by opening several


@dataclass(frozen=True, slots=True)
class InvitationLimitKeys:
    organisation_id: int
    address_digest: str

    @property
    def organisation(self) -> str:
        return f"{PREFIX}organisation:{self.organisation_id}"

    @property
    def address(self) -> str:
        return f"{PREFIX}address:{self.address_digest}"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  # ok | organisation | address
    retry_after: int  # seconds until one more is allowed


class InvitationLimits:
    def __init__(self, redis: Redis, secret: str, *, per_organisation: int = PER_ORGANISATION,
                 per_address: int = PER_ADDRESS) -> None:
        self.secret = secret
        self.per_organisation = per_organisation
        self.per_address = per_address
        self._take = script(redis, Path(__file__).parent, "invitation_limits")

    def keys(self, organisation_id: int, email_normalized: str) -> InvitationLimitKeys:
        # One mailbox, however many "+tag" spellings of it are typed.
        local, at, domain = email_normalized.rpartition("@")
        mailbox = f"{local.split('+', 1)[0]}{at}{domain}" if at else email_normalized
        return InvitationLimitKeys(organisation_id, digest(self.secret, f"invitation:{mailbox}"))

    async def take(self, organisation_id: int, email_normalized: str) -> Verdict:
        """Counts one invitation, unless a cap is reached (then nothing is counted)."""
        keys = self.keys(organisation_id, email_normalized)
        outcome, retry_ms = await self._take(
            keys=[keys.organisation, keys.address],
            args=[int(time.time() * 1000), WINDOW * 1000, self.per_organisation, self.per_address, tokens.new_id()],
        )
        outcome = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        return Verdict(outcome=outcome, retry_after=max(1, -(-int(retry_ms) // 1000)))
