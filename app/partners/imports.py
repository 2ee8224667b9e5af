"""A partner's feed import: asked for (`request_import`, by the partner or the schedule), then run by a job
(`run_import`): fetch → parse → upsert in batches → soft-delete what the feed no longer holds, logged on its
`partner_imports` row.

A row is "running" from the moment it is asked for until its job ends it ("succeeded"/"failed"): one per partner at a
time, so asking again returns it. Nothing is deleted unless the whole feed was fetched, parsed and written: an empty,
broken or hostile feed fails the run and leaves the catalogue as it was. A run whose worker died stays "running" until
the next request or schedule tick finds it older than the job timeout and fails it ("interrompu")."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.after_commit import Clients, after_commit
from app.db.base import unit_of_work
from app.partners.feeds import FeedError
from app.partners.feeds.fetch import FetchLimits, fetch_feed
from app.partners.feeds.parse import ParsedFeed, parse_feed
from app.partners.models import Partner, PartnerImport
from app.partners.placing import Placer
from app.partners.upsert import UpsertResult, delete_absent, upsert_records
from app.settings import Settings
from queues import enqueue

BATCH = 500  # missions per transaction: a 20,000-mission feed never holds its locks for long
MAX_REFUSALS = 500  # kept on the row; the counts are complete
STALE_AFTER = timedelta(seconds=enqueue.PARTNER_FEED_JOB_TIMEOUT + 300)
ASK_AGAIN_AFTER = timedelta(minutes=1)  # after a run ends, before a partner may ask for the next one
INTERRUPTED = ("Import interrompu avant la fin (le traitement s'est arrêté) : aucune mission n'a été supprimée. "
               "Relancez-le ou attendez le prochain import programmé.")
UNEXPECTED = ("Erreur interne pendant l'enregistrement des missions : celles déjà traitées sont enregistrées, aucune "
              "n'a été supprimée. L'équipe Renfort est prévenue ; le prochain import reprendra.")
NO_FEED = "Aucun flux XML n'est configuré pour ce partenaire (ou il est désactivé)."


class NoFeed(Exception):
    """The partner has no feed to import (no URL, or not active)."""


async def request_import(session: AsyncSession, partner_id: int) -> int:
    """The id of the partner's running import: the one already running, or a new one whose job is enqueued once
    this transaction commits. Raises NoFeed."""
    # The partner's row, locked: two requests at the same moment make one run, not two.
    partner = await session.get(Partner, partner_id, with_for_update=True)
    if partner is None or not partner.active or not partner.feed_url:
        raise NoFeed
    await fail_stale(session, partner_id=partner_id)
    running = (await session.execute(
        select(PartnerImport.id).where(PartnerImport.partner_id == partner_id, PartnerImport.status == "running")
        .order_by(PartnerImport.id).limit(1)
    )).scalar_one_or_none()
    if running is not None:
        return int(running)
    row = PartnerImport(partner_id=partner_id, status="running", started_at=datetime.now(UTC))
    session.add(row)
    await session.flush()
    import_id = int(row.id)

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.import_partner_feed, clients.rq_connection, partner_id, import_id)

    after_commit(session, send, key=f"partner_import:{import_id}")
    return import_id


async def cooldown_left(session: AsyncSession, partner_id: int) -> int:
    """Seconds before the partner may ask for another run (`POST /v2/import`): a feed asked for again and again
    would keep a worker busy for everyone."""
    finished = (await session.execute(
        select(func.max(PartnerImport.finished_at)).where(PartnerImport.partner_id == partner_id)
    )).scalar_one_or_none()
    if finished is None:
        return 0
    left = ASK_AGAIN_AFTER - (datetime.now(UTC) - finished)
    return max(0, math.ceil(left.total_seconds()))


async def fail_stale(session: AsyncSession, *, partner_id: int | None = None) -> int:
    """Fails the runs left "running" past the job timeout (a killed worker); returns how many."""
    statement = (
        update(PartnerImport)
        .where(PartnerImport.status == "running", PartnerImport.started_at < datetime.now(UTC) - STALE_AFTER)
        .values(status="failed", error=INTERRUPTED, finished_at=datetime.now(UTC))
    )
    if partner_id is not None:
        statement = statement.where(PartnerImport.partner_id == partner_id)
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Tally:
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    refused: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, refusals: Sequence[dict[str, Any]], count: int) -> None:
        self.refused += count
        self.refusals.extend(refusals[: MAX_REFUSALS - len(self.refusals)])

    def add(self, result: UpsertResult) -> None:
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.refuse([{"clientId": refusal.client_id, "reason": refusal.reason} for refusal in result.refusals],
                    result.refused)


@dataclass(frozen=True)
class _Feed:
    partner_id: int
    url: str
    username: str | None
    password: str | None


async def run_import(engine: AsyncEngine, clients: Clients, settings: Settings, import_id: int) -> str:
    """The job's body: the run's final status, or "moot" when the row is no longer running (done, or failed as
    stale). Unexpected errors fail the run (nothing deleted) and propagate, for the job's failure and Sentry."""
    feed = await _claim(engine, import_id)
    if feed is None:
        return "moot"
    if not feed.url:
        await _finish(engine, import_id, Tally(), error=NO_FEED)
        return "failed"
    tally = Tally()
    try:
        parsed = await asyncio.to_thread(_fetch_and_parse, feed, settings)
    except FeedError as error:
        await _finish(engine, import_id, tally, error=error.message)
        return "failed"
    tally.received = parsed.received
    tally.refuse(parsed.refusals, parsed.refused)
    try:
        await _write(engine, clients, feed.partner_id, parsed, tally)
    except Exception:
        await _finish(engine, import_id, tally, error=UNEXPECTED)
        raise
    await _finish(engine, import_id, tally)
    return "succeeded"


async def _claim(engine: AsyncEngine, import_id: int) -> _Feed | None:
    async with unit_of_work(engine) as session:
        row = await session.get(PartnerImport, import_id, with_for_update=True)
        if row is None or row.status != "running":
            return None
        # The stale clock starts when the work does, not when it was asked for (the queue may have been long).
        row.started_at = datetime.now(UTC)
        partner = await session.get(Partner, row.partner_id)
        if partner is None or not partner.active or not partner.feed_url:
            return _Feed(partner_id=row.partner_id, url="", username=None, password=None)
        return _Feed(partner_id=partner.id, url=partner.feed_url, username=partner.feed_username,
                     password=partner.feed_password)


def _fetch_and_parse(feed: _Feed, settings: Settings) -> ParsedFeed:
    limits = FetchLimits(allow_loopback=settings.partner_feeds_allow_loopback,
                         max_bytes=settings.partner_feed_max_bytes,
                         timeout_seconds=settings.partner_feed_timeout_seconds)
    body, _ = fetch_feed(feed.url, limits=limits, username=feed.username, password=feed.password)
    with body:
        return parse_feed(body)


async def _write(engine: AsyncEngine, clients: Clients, partner_id: int, parsed: ParsedFeed, tally: Tally) -> None:
    async with unit_of_work(engine) as session:
        placer = await Placer.load(session)
    present: list[str] = []
    for start in range(0, len(parsed.records), BATCH):
        async with unit_of_work(engine, clients) as session:
            result = await upsert_records(session, partner_id=partner_id,
                                          records=parsed.records[start:start + BATCH], placer=placer)
        tally.add(result)
        present.extend(result.client_ids)
    # Only now: every mission of the feed is written, so what it lacks is what the partner took down.
    async with unit_of_work(engine, clients) as session:
        tally.deleted = await delete_absent(session, partner_id=partner_id, present=present)


async def _finish(engine: AsyncEngine, import_id: int, tally: Tally, *, error: str | None = None) -> None:
    async with unit_of_work(engine) as session:
        await session.execute(
            update(PartnerImport)
            .where(PartnerImport.id == import_id, PartnerImport.status == "running")
            .values(status="failed" if error else "succeeded", error=error, finished_at=datetime.now(UTC),
                    received=tally.received, created=tally.created, updated=tally.updated,
                    unchanged=tally.unchanged, deleted=tally.deleted, refused=tally.refused,
                    refusals=tally.refusals[:MAX_REFUSALS])
        )


async def due_partners(session: AsyncSession) -> list[tuple[int, int]]:
    """(partner id, interval in minutes) of the active partners with a feed whose last run started longer ago than
    their interval (or that never ran)."""
    last = (select(PartnerImport.partner_id, PartnerImport.started_at)
            .distinct(PartnerImport.partner_id)
            .order_by(PartnerImport.partner_id, PartnerImport.started_at.desc())
            .subquery())
    rows = await session.execute(
        select(Partner.id, Partner.feed_interval_minutes)
        .outerjoin(last, last.c.partner_id == Partner.id)
        .where(Partner.active, Partner.feed_url.is_not(None), Partner.feed_url != "")
        .where((last.c.started_at.is_(None))
               | (last.c.started_at < func.now() - func.make_interval(0, 0, 0, 0, 0, Partner.feed_interval_minutes)))
        .order_by(Partner.id)
    )
    return [(int(partner_id), int(interval)) for partner_id, interval in rows.all()]
