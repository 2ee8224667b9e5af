"""The MIG offers' e-mails: a referent's decision (validated, refused with its reason) told to the offer's tutor.
Rendered from PostgreSQL when sent; the payload is the offer's id only."""

from __future__ import annotations

import logging

from app.db.base import unit_of_work
from app.youth import offers
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, Outcome, count_drop, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
DECISION = "youth_offer_decision"


def send_youth_offer_decision_mail(offer_id: int) -> dict[str, int]:
    return run_job(lambda context: _send_decision_mail(context, int(offer_id)))


async def _send_decision_mail(context: JobContext, offer_id: int) -> dict[str, int]:
    settings, redis = context.settings, context.redis
    async with unit_of_work(context.engine) as session:
        mail = await offers.decision_mail(session, offer_id)
    if mail is None:
        await count_drop(redis, DECISION, Outcome.LAPSED.value)
        return {Outcome.LAPSED.value: 1}
    address = mail.pop("address")
    values = {**mail, "link": f"{settings.base_url}/missions/{mail['mission_id']}/snu"}
    # One e-mail per decision: a later decision (after an edit) has its own key.
    letter = Letter(f"{DECISION}:{offer_id}:{mail['decided_at']}", DECISION, address, values, item=(offer_id,),
                    ids=f"youth offer {offer_id}")

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_offer_decision_mail(context.rq_connection, offer_id, delay=delay)

    batch = await post(settings, redis, [letter], again)
    log.info("youth offer decision e-mail: %s (offer %d)", summary(batch.summary()), offer_id)
    return batch.summary()
