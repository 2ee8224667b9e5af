"""Who may take a MIG offer, and which offers may be taken now: the rules the choosing pages and the allocation
share."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from app.missions.models import Mission
from app.missions.search import ONLINE_ORGANISATIONS
from app.missions.service import ONLINE_STATUSES
from app.organisations.models import Organisation
from app.youth.models import OfferStatus, YouthOffer

YOUTH_MIN_AGE = 15  # the SNU's youngest
YOUTH_MAX_AGE = 25  # the oldest a young person may be for a later mission
ADULT_AGE = 18


def offer_min_age(open_to_minors: bool) -> int:
    """A mission closed to minors takes young people of age only; one open to them takes them from the SNU's 15."""
    return YOUTH_MIN_AGE if open_to_minors else ADULT_AGE


def offer_online() -> list[ColumnElement[bool]]:
    """An offer young people may choose and be placed on now: validated, its mission online and its organisation
    too. The query joins `Mission` and `Organisation`."""
    return [
        YouthOffer.status == OfferStatus.VALIDATED.value,
        Mission.status.in_(ONLINE_STATUSES),
        Mission.deleted_at.is_(None),
        Organisation.status.in_(ONLINE_ORGANISATIONS),
    ]
