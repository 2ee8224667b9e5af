"""The states of an application, the one spelling Python uses (the Lua scripts and SQL spell the same values)."""

from __future__ import annotations

from enum import StrEnum


class ApplicationStatus(StrEnum):
    PENDING = "pending"  # holds a place, waiting for the organisation's answer
    WAITLISTED = "waitlisted"  # waiting for a place; promoted to pending in arrival order
    ACCEPTED = "accepted"
    DECLINED = "declined"  # by the organisation
    CANCELLED = "cancelled"  # by the volunteer, their account's deletion, a lapsed or withdrawn proposal
    DONE = "done"
    PROPOSED = "proposed"  # a coordinator's dispatch, waiting for the volunteer's answer


# The statuses that hold one of the mission's places.
HOLDING = (ApplicationStatus.PENDING, ApplicationStatus.ACCEPTED, ApplicationStatus.DONE, ApplicationStatus.PROPOSED)
# The statuses a volunteer may still leave (the place, if any, goes to the first wait-listed).
CANCELLABLE = (ApplicationStatus.PENDING, ApplicationStatus.WAITLISTED, ApplicationStatus.ACCEPTED,
               ApplicationStatus.PROPOSED)
