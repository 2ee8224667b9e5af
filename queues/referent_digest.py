"""The referents' daily digest: each referent gets, once a day, what awaits moderation in their departments (those
of their scope: a department, a region's, or all of them) — organisations and missions awaiting validation, oldest
first. A department no referent covers is the admins'. Nothing waiting, no e-mail.

"Once a day" is the outbox's: the e-mail's key names the day (Paris), so running the job again that day sends
nothing more. Rendered from PostgreSQL when it leaves; a deferred run renders what waits then."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import ReferentScope, User
from app.db.base import unit_of_work
from app.formats import PARIS
from app.geo.models import Commune, Department
from app.missions import scope
from app.missions.models import Mission
from app.organisations.models import Organisation
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.notices")
KIND = "referent_digest"
MAX_LISTED = 20  # of each kind in one e-mail; the rest are counted


@dataclass
class Waiting:
    """What awaits moderation, by department, oldest first."""

    organisations: dict[str, list[Any]] = field(default_factory=dict)
    missions: dict[str, list[Any]] = field(default_factory=dict)

    def departments(self) -> set[str]:
        return set(self.organisations) | set(self.missions)


def send_referent_digests(day: str | None = None, user_ids: list[int] | None = None) -> dict[str, int]:
    return run_job(lambda context: _send(context, day or datetime.now(PARIS).date().isoformat(),
                                         None if user_ids is None else {int(user_id) for user_id in user_ids}))


async def _send(context: JobContext, day: str, only: set[int] | None) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        waiting = await _waiting(session)
        readers = await _readers(session, waiting.departments()) if waiting.departments() else {}
        addresses = dict((await session.execute(
            select(User.id, User.email_normalized).where(User.id.in_(list(readers)))
        )).all()) if readers else {}
    letters = []
    for user_id, departments in sorted(readers.items()):
        if (only is not None and user_id not in only) or user_id not in addresses:
            continue
        organisations = _merged(waiting.organisations, departments)
        missions = _merged(waiting.missions, departments)
        if not organisations and not missions:
            continue
        values = {
            "organisations": organisations[:MAX_LISTED], "organisations_total": len(organisations),
            "missions": missions[:MAX_LISTED], "missions_total": len(missions), "base_url": settings.base_url,
        }
        letters.append(Letter(f"{KIND}:{day}:{user_id}", KIND, addresses[user_id], values, item=(user_id,),
                              ids=f"user {user_id}"))

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_referent_digests(context.rq_connection, day=day,
                                      user_ids=[int(letter.item[0]) for letter in group], delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("referent digests for %s: %s", day, summary(batch.summary()))
    return batch.summary()


def _merged(by_department: dict[str, list[Any]], departments: Iterable[str]) -> list[dict[str, object]]:
    rows = [row for department in departments for row in by_department.get(department, [])]
    rows.sort(key=lambda row: (row.since, row.id))
    return [{"id": row.id, "title": row.title, "organisation_name": row.organisation_name,
             "department": row.department, "since": f"{row.since.astimezone(PARIS):%d/%m/%Y}"} for row in rows]


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    title: str
    organisation_name: str
    department: str
    since: datetime


async def _waiting(session: AsyncSession) -> Waiting:
    waiting = Waiting()
    organisations = await session.execute(
        select(Organisation.id, Organisation.name.label("title"), Organisation.name.label("organisation_name"),
               Commune.department_code.label("department"), Organisation.status_changed_at.label("since"))
        .join(Commune, Commune.code == Organisation.commune_code)
        .where(Organisation.status == "awaiting_validation")
    )
    for row in organisations:
        waiting.organisations.setdefault(row.department, []).append(row)
    mission_rows = (await session.execute(
        select(Mission.id, Mission.title, Organisation.name.label("organisation_name"),
               Mission.status_changed_at.label("since"))
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Mission.status == "awaiting_validation")
    )).all()
    # A mission is moderated where its first address is (its organisation's department when remote).
    departments = await scope.departments_of(session, [row.id for row in mission_rows])
    for mission in mission_rows:
        department = departments[mission.id][0]
        waiting.missions.setdefault(department, []).append(_Row(mission.id, mission.title, mission.organisation_name,
                                                                 department, mission.since))
    return waiting


async def _readers(session: AsyncSession, wanted: set[str]) -> dict[int, set[str]]:
    """User → the departments (among `wanted`) whose waiting items they get: the referents' own, and for the admins
    every department no referent covers."""
    regions = dict((await session.execute(
        select(Department.code, Department.region_code).where(Department.code.in_(wanted))
    )).all())
    readers: dict[int, set[str]] = {}
    for user_id, department, region in await session.execute(
        select(ReferentScope.user_id, ReferentScope.department_code, ReferentScope.region_code)
    ):
        if department is not None:
            covered = {department} & wanted
        elif region is not None:
            covered = {code for code in wanted if regions.get(code) == region}
        else:
            covered = set(wanted)
        readers.setdefault(user_id, set()).update(covered)
    orphans = wanted - set().union(*readers.values())
    if orphans:
        for user_id in await session.scalars(select(User.id).where(User.is_admin)):
            readers.setdefault(user_id, set()).update(orphans)
    return {user_id: departments for user_id, departments in readers.items() if departments}
