"""The agreements' e-mails: each unsigned party's signature request, the notice to every party once all signed (the
tutor's with their hours link), and the certificate to the young person and their guardian. Rendered from
PostgreSQL (the agreement's snapshot and signatures) when sent and handed to the outbox; payloads hold kinds, ids and
parties only, and every link is minted here."""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import unit_of_work
from app.settings import Settings
from app.youth import agreements, hours
from app.youth.models import AgreementParty, PlacementStatus, YouthAgreement, YouthAgreementSignature, YouthPlacement
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, post
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.mail")
REQUEST = "request"
SIGNED = "signed"
CERTIFICATE = "certificate"
KINDS = {REQUEST: "youth_agreement_request", SIGNED: "youth_agreement_signed",
         CERTIFICATE: "youth_certificate"}
Item = tuple[str, int, str]  # (kind, agreement or placement id, party; "" for every party)


def send_youth_agreement_letters(items: list[list[object]]) -> dict[str, int]:
    parsed = [(str(item[0]), int(str(item[1])), str(item[2]) if len(item) > 2 else "") for item in items]
    return run_job(lambda context: _send(context, parsed))


async def _send(context: JobContext, items: list[Item]) -> dict[str, int]:
    settings = context.settings
    async with unit_of_work(context.engine) as session:
        letters = [letter for item in items for letter in await _letters(session, settings, item)]

    def again(group: list[Letter], delay: int) -> None:
        enqueue.send_youth_agreement_letters(context.rq_connection, [list(letter.item) for letter in group],
                                             delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("youth agreement e-mails: %s", summary(batch.summary()))
    return batch.summary()


async def _letters(session: AsyncSession, settings: Settings, item: Item) -> list[Letter]:
    kind, row_id, party = item
    if kind == CERTIFICATE:
        return await _certificate_letters(session, settings, row_id, party)
    if kind not in (REQUEST, SIGNED):
        return []
    row = (await session.execute(
        select(YouthAgreement.content, YouthAgreement.signed_at, YouthAgreement.placement_id, YouthPlacement.status)
        .join(YouthPlacement, YouthPlacement.id == YouthAgreement.placement_id)
        .where(YouthAgreement.id == row_id)
    )).first()
    if row is None or row.status == PlacementStatus.CANCELLED:
        return []
    if kind == REQUEST and row.signed_at is not None:
        return []  # signed by all since
    if kind == SIGNED and row.signed_at is None:
        return []
    signatures = (await session.execute(
        select(YouthAgreementSignature.party, YouthAgreementSignature.name, YouthAgreementSignature.email,
               YouthAgreementSignature.signed_at)
        .where(YouthAgreementSignature.agreement_id == row_id)
    )).all()
    content: dict[str, Any] = row.content
    young = content.get("young", {})
    secret, now = settings.secret_key.reveal(), time.time()
    expires_at = int(now) + agreements.SIGNATURE_DAYS * 86_400
    hours_link = hours.hours_url(settings.base_url, secret, row.placement_id,
                                 hours.hours_link_expiry(_end_date(content), now))
    letters = []
    for signature in signatures:
        if party and signature.party != party:
            continue
        if kind == REQUEST and signature.signed_at is not None:
            continue
        if signature.party == AgreementParty.REFERENT:
            continue  # the department's referents sign from their follow-up page (/snu/referent), in a batch
        values = {"name": signature.name, "first_name": young.get("first_name", ""),
                  "last_name": young.get("last_name", ""), "mission": content.get("mission_title", ""),
                  "cohort_name": content.get("cohort_name", ""), "days": agreements.SIGNATURE_DAYS,
                  "link": agreements.signature_url(settings.base_url, secret, row_id, signature.party, expires_at),
                  "hours_link": hours_link if signature.party == AgreementParty.ORGANISATION else "",
                  "base_url": settings.base_url}
        letters.append(Letter(f"{KINDS[kind]}:{row_id}:{signature.party}", KINDS[kind], signature.email, values,
                              item=(kind, row_id, signature.party), ids=f"agreement {row_id} {signature.party}",
                              lapses_at=float(expires_at) if kind == REQUEST else None))
    return letters


def _end_date(content: dict[str, Any]) -> date:
    return date.fromisoformat(str(content.get("offer", {}).get("end_date")))


async def _certificate_letters(session: AsyncSession, settings: Settings, placement_id: int, party: str
                               ) -> list[Letter]:
    found = await hours.certificate(session, placement_id)
    if found is None:
        return []
    content = found.content
    young = content.get("young", {})
    expires_at = int(time.time()) + hours.CERTIFICATE_DAYS * 86_400
    link = hours.certificate_url(settings.base_url, settings.secret_key.reveal(), placement_id, expires_at)
    recipients = [(AgreementParty.YOUNG.value, f"{young.get('first_name', '')}", str(young.get("email", "")))]
    guardian = content.get("guardian")
    if guardian:
        recipients.append((AgreementParty.GUARDIAN.value, str(guardian.get("name", "")),
                           str(guardian.get("email", ""))))
    letters = []
    for recipient, name, email in recipients:
        if (party and recipient != party) or not email:
            continue
        values = {"name": name, "first_name": young.get("first_name", ""), "last_name": young.get("last_name", ""),
                  "mission": content.get("mission_title", ""), "hours": f"{found.hours.normalize():f}",
                  "guardian": recipient == AgreementParty.GUARDIAN, "link": link, "base_url": settings.base_url}
        letters.append(Letter(f"youth_certificate:{placement_id}:{recipient}", KINDS[CERTIFICATE], email, values,
                              item=(CERTIFICATE, placement_id, recipient), ids=f"placement {placement_id} {recipient}"))
    return letters
