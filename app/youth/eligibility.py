"""Who may take a MIG offer: the age rule that the choosing pages and the allocation share."""

from __future__ import annotations

YOUTH_MIN_AGE = 15  # the SNU's youngest
YOUTH_MAX_AGE = 25  # the oldest a young person may be for a later mission
ADULT_AGE = 18


def offer_min_age(open_to_minors: bool) -> int:
    """A mission closed to minors takes young people of age only; one open to them takes them from the SNU's 15."""
    return YOUTH_MIN_AGE if open_to_minors else ADULT_AGE
