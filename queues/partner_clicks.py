"""Crediting partners: an application through our flow by a visitor a partner's tracked link sent us. The payload
holds the click's random id and the mission id only."""

from __future__ import annotations

from app.db.base import unit_of_work
from app.partners import tracking
from queues.runtime import JobContext, run_job


def credit_inbound_click(token: str, mission_id: int) -> bool:
    return run_job(lambda context: _credit(context, token, mission_id))


async def _credit(context: JobContext, token: str, mission_id: int) -> bool:
    async with unit_of_work(context.engine) as session:
        return await tracking.credit_inbound(session, token, mission_id)
