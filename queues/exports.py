"""The applicant export job: the CSV is built here, not in the request."""

from __future__ import annotations

from app.accounts.schemas import Roles
from app.applications import exports, service
from app.db.base import unit_of_work
from queues.runtime import JobContext, run_job


def export_applicants(token: str, organisation_id: int) -> int:
    """`organisation_id` is the one the web checked the requester manages; returns the number of rows."""

    async def body(context: JobContext) -> int:
        request = await exports.find_any(context.redis, token)
        if request is None:
            return 0  # expired before a worker got to it
        async with unit_of_work(context.engine) as session:
            _, applications = await service.of_mission(
                session, context.redis, request.mission_id, Roles(organisations=(organisation_id,))
            )
        await exports.store(context.redis, token, request, exports.to_csv(applications))
        return len(applications)

    return run_job(body)
