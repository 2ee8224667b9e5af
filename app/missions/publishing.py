"""Where a manager's "Publier" takes a draft: online at once when its text comes from a validated template or its
organisation is trusted, to the referents of its department otherwise. The same rule decides whether an edit of an
online mission that changes what it says (`Content`) sends it back to the referents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.missions.models import Mission, MissionAddress, MissionModeration, MissionTemplate

# Decisions that cost an organisation its trust for 12 months.
BLAMES = ("refuse", "suspend")

# The managers' side of the lifecycle: (status, action) → new status. A draft's "publish" may go further than
# awaiting_validation: see `target`. The referents' side is in moderation.py.
TRANSITIONS = {
    ("draft", "publish"): "awaiting_validation",
    ("published", "close"): "full",
    ("full", "reopen"): "published",
    ("published", "finish"): "finished",
    ("full", "finish"): "finished",
    ("draft", "cancel"): "cancelled",
    ("awaiting_validation", "cancel"): "cancelled",
    ("published", "cancel"): "cancelled",
    ("full", "cancel"): "cancelled",
    ("suspended", "cancel"): "cancelled",
}
ACTIONS = {"publier": "publish", "completer": "close", "rouvrir": "reopen", "terminer": "finish", "annuler": "cancel"}
BUTTONS = {"publish": "Publier", "close": "Marquer complète", "reopen": "Rouvrir", "finish": "Terminer la mission",
           "cancel": "Annuler la mission"}
FINAL = frozenset({"finish", "cancel"})  # cannot be undone: the manager confirms first


def allowed(status: str) -> dict[str, str]:
    """The managers' actions from this status, French path segment → action: the mission page offers exactly these
    and `service.transition` refuses any other."""
    return {segment: action for segment, action in ACTIONS.items() if (status, action) in TRANSITIONS}


@dataclass(frozen=True, slots=True)
class Content:
    """What a referent validated: the mission's text, where and for whom. Places and dates are not in it."""

    text: tuple[object, ...]
    places: tuple[tuple[str, str, str], ...]  # (address line, postal code, commune), in the form's order

    @classmethod
    async def of(cls, session: AsyncSession, mission: Mission) -> Content:
        rows = await session.execute(
            select(MissionAddress.address_line, MissionAddress.postal_code, MissionAddress.commune_code)
            .where(MissionAddress.mission_id == mission.id).order_by(MissionAddress.id)
        )
        text = (mission.title, mission.description, mission.domain, tuple(mission.activities), mission.prerequisites,
                mission.schedule, mission.open_to_minors, mission.remote)
        return cls(text, tuple((line, postal, commune) for line, postal, commune in rows))


async def trusted(session: AsyncSession, organisation_id: int, *, needed: int) -> bool:
    """`needed` missions validated and none refused or suspended in the last 12 months (0: nobody is trusted this
    way)."""
    if needed <= 0:
        return False
    validated, blamed = (await session.execute(
        select(func.count().filter(MissionModeration.decision == "validate"),
               func.count().filter(MissionModeration.decision.in_(BLAMES)))
        .where(MissionModeration.organisation_id == organisation_id,
               MissionModeration.decided_at >= func.now() - func.make_interval(0, 12))
    )).one()
    return validated >= needed and blamed == 0


async def at_once(session: AsyncSession, mission: Mission, *, trusted_after: int) -> bool:
    """Whether this mission goes online without a referent's decision."""
    if mission.template_id is not None and await session.scalar(
        select(MissionTemplate.status).where(MissionTemplate.id == mission.template_id)
    ) == "validated":
        return True
    return await trusted(session, mission.organisation_id, needed=trusted_after)


async def target(session: AsyncSession, mission: Mission, *, trusted_after: int) -> str:
    return "published" if await at_once(session, mission, trusted_after=trusted_after) else "awaiting_validation"
