"""The Redis keys of the applications' state (capacity.py and its scripts); no other module spells them."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "renfort:applications:"
SEQUENCE = PREFIX + "seq"
ENGAGED = PREFIX + "engaged"  # volunteer → "<mission>:<expiry>", plus the field `seeded` once rebuilt


@dataclass(frozen=True, slots=True)
class MissionKeys:
    """A mission's keys."""

    mission_id: int

    def _key(self, name: str) -> str:
        return f"{PREFIX}m{self.mission_id}:{name}"

    @property
    def meta(self) -> str:
        # hash: capacity, open ("1" taking applications, "w" full: only promotions, "0"), epoch, minors ("1" open to
        # minors, "0"), start (ISO date, "" none), ages ("1" once `adults` was filled from PostgreSQL)
        return self._key("meta")

    @property
    def holders(self) -> str:  # set: the volunteers holding a place
        return self._key("holders")

    @property
    def waitlist(self) -> str:  # sorted set: volunteer → arrival number
        return self._key("waitlist")

    @property
    def status(self) -> str:  # hash: volunteer → the application's current status
        return self._key("status")

    @property
    def epoch(self) -> str:  # counter bumped after each committed change to the mission's places or openness
        return self._key("epoch")

    @property
    def proposals(self) -> str:  # hash: volunteer → the dispatch run that proposed them this mission
        return self._key("proposals")

    @property
    def adults(self) -> str:
        # hash: volunteer → 18th birthday (ISO date, "" unknown) of the wait-listed and the proposed, whom a promotion
        # or a confirmation checks against the age rule; the entry goes when the application moves on
        return self._key("adults")

    @property
    def closing(self) -> str:  # hash: volunteer → the kind of the closing of their application, until they are told
        return self._key("closing")


def volunteer_missions_key(volunteer_id: int) -> str:
    """Set of the missions a volunteer applied or was proposed to lately (expires INDEX_TTL after the last)."""
    return f"{PREFIX}v{volunteer_id}:missions"
