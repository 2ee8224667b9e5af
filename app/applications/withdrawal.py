"""Withdrawing a volunteer from every mission at once (their account is being deleted), freeing their places."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from app.applications.capacity import Places
from app.applications.service import CANCELLABLE, move


async def withdraw_everywhere(places: Places, volunteer_id: int, mission_ids: Iterable[int], *,
                              engine: AsyncEngine) -> bool:
    """Cancels the volunteer's live applications in Redis, promoting the wait-listed into the freed places; returns
    whether the caller should request a drain of applications. An application already over (declined, done,
    cancelled) is left as it is: the rows go with the volunteer's anyway."""
    drain = False
    for mission_id in sorted(set(mission_ids)):
        # Through the service's move, so a mission Redis holds stale state for is re-seeded first.
        _, needed = await move(places, engine, mission_id, volunteer_id, target="cancelled", allowed=CANCELLABLE,
                               kind="withdrawn")
        drain = drain or needed
    return drain
