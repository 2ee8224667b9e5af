"""The personal-data jobs: building a person's data download, the daily inactivity sweep (warnings, anonymisation)
and its e-mails. Payloads hold ids, tokens and keys only; log lines hold counts only."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import String, literal, select

from app.accounts.models import User
from app.db.base import unit_of_work
from app.geo.models import Commune
from app.organisations.models import Organisation
from app.privacy import document, download
from app.privacy.inactivity import (
    FIRST_NOTICE,
    SUSPENDED,
    WARNING,
    Sweep,
    accounts_batch,
    handle,
    queue_mails,
    volunteers_batch,
)
from app.volunteers.models import Volunteer
from queues import enqueue
from queues.mail import summary
from queues.outbox import Letter, post
from queues.referent_digest import _readers as moderation_readers
from queues.runtime import JobContext, run_job

log = logging.getLogger("renfort.privacy")


def build_data_download(token: str) -> str:
    return run_job(lambda context: _build(context, token))


async def _build(context: JobContext, token: str) -> str:
    request = await download.find_any(context.redis, token)
    if request is None or request.status != download.DownloadStatus.QUEUED:
        return "moot"  # expired, or built by an earlier run (and maybe downloaded since)
    async with unit_of_work(context.engine) as session:
        data = await document.personal_data(session, request.user_id)
    if data is None:
        await download.forget(context.redis, token, request.user_id)
        return "gone"
    await download.store(context.redis, token, request, document.encode(data))
    return "ready"


def sweep_inactivity() -> dict[str, int]:
    return run_job(_sweep)


async def _sweep(context: JobContext) -> dict[str, int]:
    settings = context.settings
    now = datetime.now(UTC)
    period = timedelta(days=settings.inactivity_days)
    horizon = now - period + FIRST_NOTICE  # activity more recent than this: nothing is due, not even a warning
    secret = settings.secret_key.reveal()
    total = Sweep()
    for fetch, id_of in ((volunteers_batch, lambda person: person.volunteer_id),
                         (accounts_batch, lambda person: person.user_id)):
        after = 0
        while True:
            batch = Sweep()
            async with unit_of_work(context.engine, context.clients) as session:
                people = await fetch(session, after, horizon)
                await handle(session, people, now=now, period=period, secret=secret, sweep=batch)
                queue_mails(session, batch.mails)
            for name, count in batch.counts.items():
                total.counts[name] += count
            if not people:
                break
            after = max(id_of(person) for person in people)
    log.info("inactivity sweep: %s", ", ".join(f"{count} {name}" for name, count in total.counts.items()))
    return total.counts


def send_inactivity_mails(items: list[list[Any]]) -> dict[str, int]:
    return run_job(lambda context: _send(context, [list(item) for item in items]))


async def _send(context: JobContext, items: list[list[Any]]) -> dict[str, int]:
    settings = context.settings
    letters: list[Letter] = []
    async with unit_of_work(context.engine) as session:
        for item in items:
            kind, target, key, day, days = str(item[0]), str(item[1]), str(item[2]), str(item[3]), int(item[4])
            if kind == WARNING:
                letter = await _warning(session, target, key, day, days, settings.base_url, tuple(item))
                if letter is not None:
                    letters.append(letter)
            elif kind == SUSPENDED and target.startswith("o") and target[1:].isdecimal():
                letters.extend(await _suspension(session, int(target[1:]), key, settings.base_url, tuple(item)))

    def again(group: list[Letter], delay: int) -> None:
        # The organisation's item once, however many of its referents wait: the others' keys are sent already.
        later = {tuple(letter.item): list(letter.item) for letter in group}
        enqueue.send_inactivity_mails(context.rq_connection, list(later.values()), delay=delay)

    batch = await post(settings, context.redis, letters, again)
    log.info("inactivity e-mails: %s", summary(batch.summary()))
    return batch.summary()


async def _warning(session: Any, target: str, key: str, day: str, days: int, base_url: str,
                   item: tuple[Any, ...]) -> Letter | None:
    """None when the person is anonymised or gone since (nothing to warn of)."""
    row_id = int(target[1:]) if target[1:].isdecimal() else 0
    if target.startswith("v"):
        row = (await session.execute(
            select(Volunteer.email_normalized, Volunteer.first_name)
            .where(Volunteer.id == row_id, Volunteer.anonymised_at.is_(None))
        )).first()
    elif target.startswith("u"):
        row = (await session.execute(
            select(User.email_normalized, literal(None, String)).where(User.id == row_id, User.anonymised_at.is_(None))
        )).first()
    else:
        row = None
    if row is None:
        return None
    values = {"first_name": row[1], "days": days, "day": f"{date.fromisoformat(day):%d/%m/%Y}",
              "base_url": base_url}
    return Letter(key, WARNING, row[0], values, item=item, ids=target)


async def _suspension(session: Any, organisation_id: int, key: str, base_url: str,
                      item: tuple[Any, ...]) -> list[Letter]:
    """One e-mail to each referent of the organisation's department (the admins where none covers it)."""
    row = (await session.execute(
        select(Organisation.name, Organisation.status, Commune.department_code)
        .join(Commune, Commune.code == Organisation.commune_code).where(Organisation.id == organisation_id)
    )).first()
    if row is None or row.status != "suspended":
        return []  # reinstated (or deleted) since: nothing to tell
    readers = await moderation_readers(session, {row.department_code})
    addresses = dict((await session.execute(
        select(User.id, User.email_normalized).where(User.id.in_(list(readers)), User.anonymised_at.is_(None))
    )).all()) if readers else {}
    values = {"organisation_name": row.name, "organisation_id": organisation_id, "department": row.department_code,
              "base_url": base_url}
    return [Letter(f"{key}:u{user_id}", SUSPENDED, address, values, item=item, ids=f"organisation {organisation_id}")
            for user_id, address in sorted(addresses.items())]
