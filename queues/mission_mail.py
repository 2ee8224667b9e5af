"""Mission status e-mails: a referent's decision (validated, refused, suspended, reinstated) told to the managers of
the mission's organisation. Rendered from PostgreSQL when sent and handed to the outbox (queues/outbox.py: once per
idempotency key, within the recipient's budget, later rather than never); payloads hold ids only."""

from __future__ import annotations

import logging

from sqlalchemy import select

from app.db.base import unit_of_work
from app.missions.models import Mission
from app.missions.moderation import stamp
from app.organisations.managers import manager_addresses
from app.organisations.models import Organisation
from app.organisations.service import slugify
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, Outcome, count_drop, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
KINDS = {"validate": "mission_validated", "refuse": "mission_refused", "suspend": "mission_suspended",
         "reinstate": "mission_reinstated"}


def send_mission_status_mails(mission_id: int, action: str, changed: int,
                              user_ids: list[int] | None = None) -> dict[str, int]:
    return run_job(lambda context: _send(
        context, int(mission_id), str(action), int(changed),
        None if user_ids is None else [int(user_id) for user_id in user_ids],
    ))


async def _send(context: JobContext, mission_id: int, action: str, changed: int,
                user_ids: list[int] | None) -> dict[str, int]:
    settings, kind = context.settings, KINDS[action]
    async with unit_of_work(context.engine) as session:
        mission = (await session.execute(
            select(Mission.id, Mission.organisation_id, Mission.title, Mission.status_reason, Mission.status_changed_at,
                   Organisation.name.label("organisation_name"))
            .join(Organisation, Organisation.id == Mission.organisation_id).where(Mission.id == mission_id)
        )).first()
        managers = [] if mission is None else await manager_addresses(session, mission.organisation_id, user_ids)
    if mission is None or stamp(mission.status_changed_at) != changed:
        # Deleted, or its status changed again since: that change has its own e-mail, or needs none.
        await count_drop(context.redis, kind, Outcome.LAPSED.value)
        log.info("a mission's status e-mail is moot (mission %d)", mission_id)
        return {Outcome.LAPSED.value: 1}
    values = {"mission_title": mission.title, "organisation_name": mission.organisation_name,
              "reason": mission.status_reason, "base_url": settings.base_url,
              "mission_path": f"/missions/{mission_id}-{slugify(mission.title)}", "mission_id": mission_id}
    letters = [Letter(f"mission_status:{mission_id}:{changed}:{user_id}", kind, email, values, item=(user_id,),
                      ids=f"mission {mission_id}, user {user_id}")
               for user_id, email in managers]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_mission_status_mails(context.rq_connection, mission_id, action, changed,
                                          [int(letter.item[0]) for letter in group], delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("mission status e-mails (%s): %s (mission %d)", action, summary(batch.summary()), mission_id)
    return batch.summary()
