"""The export jobs: each CSV is built here, not in the request."""

from __future__ import annotations

from app.accounts.schemas import Roles
from app.applications import exports, service
from app.db.base import unit_of_work
from app.youth import dashboard
from app.youth import export as youth_export
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


def export_youth(token: str) -> int:
    """The request in Redis names the cohort and the department the web checked the requester is referent of;
    returns the number of rows."""

    async def body(context: JobContext) -> int:
        request = await exports.find_any(context.redis, token)
        if request is None or request.kind != exports.YOUTH:
            return 0  # expired before a worker got to it
        async with unit_of_work(context.engine) as session:
            rows = await dashboard.young_rows(session, cohort_id=request.cohort_id,
                                              department_code=request.department_code)
        await exports.store(context.redis, token, request, youth_export.to_csv(rows))
        return len(rows)

    return run_job(body)
