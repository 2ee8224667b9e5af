"""Campaigns: the administrators' create and edit, the managers' tags, and the reads of the public pages."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime

import msgspec
from redis.asyncio import Redis
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheUnavailable
from app.campaigns import cache
from app.campaigns.images import EXTENSIONS, Sniffed
from app.campaigns.models import Campaign, CampaignImage, CampaignMission
from app.campaigns.schemas import CampaignInput, CampaignList, CampaignRead
from app.campaigns.validation import CampaignInvalid, CampaignNotFound
from app.db.base import unit_of_work
from app.missions.models import Mission

log = logging.getLogger("renfort.campaigns")
SLUG_TAKEN = "Une autre campagne a déjà cette adresse : choisissez-en une autre."


def image_url(image: CampaignImage) -> str:
    return f"/campagnes/images/{image.id}-{image.sha256[:16]}.{EXTENSIONS[image.content_type]}"


def _read(campaign: Campaign, image: CampaignImage | None) -> CampaignRead:
    return CampaignRead(
        id=campaign.id, slug=campaign.slug, name=campaign.name, text=campaign.text, starts_on=campaign.starts_on,
        ends_on=campaign.ends_on, domains=list(campaign.domains),
        image_url=image_url(image) if image else None, image_alt=campaign.image_alt or "",
        image_width=image.width if image else None, image_height=image.height if image else None,
    )


async def all_campaigns(session: AsyncSession) -> list[CampaignRead]:
    rows = await session.execute(
        select(Campaign, CampaignImage).outerjoin(CampaignImage, CampaignImage.id == Campaign.image_id)
        .order_by(Campaign.starts_on.desc(), Campaign.id.desc())
    )
    return [_read(campaign, image) for campaign, image in rows.tuples()]


async def get(session: AsyncSession, campaign_id: int) -> CampaignRead:
    row = (await session.execute(
        select(Campaign, CampaignImage).outerjoin(CampaignImage, CampaignImage.id == Campaign.image_id)
        .where(Campaign.id == campaign_id)
    )).tuples().first()
    if row is None:
        raise CampaignNotFound
    return _read(*row)


async def _store_image(session: AsyncSession, data: bytes, sniffed: Sniffed) -> int:
    image_id = await session.scalar(insert(CampaignImage).values(
        content_type=sniffed.content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        width=sniffed.width, height=sniffed.height, data=data,
    ).returning(CampaignImage.id))
    assert image_id is not None
    return int(image_id)


async def _slug_taken(session: AsyncSession, slug: str, campaign_id: int | None) -> bool:
    query = select(func.count()).where(Campaign.slug == slug)
    if campaign_id is not None:
        query = query.where(Campaign.id != campaign_id)
    return bool(await session.scalar(query))


async def save(session: AsyncSession, data: CampaignInput, image: tuple[bytes, Sniffed] | None, *,
               campaign_id: int | None = None, user_id: int | None = None) -> CampaignRead:
    """Creates (`campaign_id` None) or updates a campaign; raises `CampaignInvalid` for a slug already used."""
    if await _slug_taken(session, data.slug, campaign_id):
        raise CampaignInvalid({"slug": SLUG_TAKEN})
    values: dict[str, object] = {"slug": data.slug, "name": data.name, "text": data.text,
                                 "starts_on": data.starts_on, "ends_on": data.ends_on, "domains": data.domains,
                                 "image_alt": data.image_alt or None}
    if image is not None:
        values["image_id"] = await _store_image(session, *image)
    if campaign_id is None:
        campaign = Campaign(**values, created_by_id=user_id)
        session.add(campaign)
    else:
        found = await session.get(Campaign, campaign_id, with_for_update=True)
        if found is None:
            raise CampaignNotFound
        campaign = found
        old_image = campaign.image_id
        if data.remove_image:
            values["image_id"], values["image_alt"] = None, None
        elif image is None and old_image is None:
            values["image_alt"] = None
        for key, value in values.items():
            setattr(campaign, key, value)
        campaign.updated_at = datetime.now(UTC)
        if old_image is not None and campaign.image_id != old_image:
            # Nothing else points at it: the stored bytes go with it.
            await session.flush()
            await session.execute(delete(CampaignImage).where(CampaignImage.id == old_image))
    await session.flush()
    cache.mark_changed(session)
    return await get(session, campaign.id)


# The managers' tags ---------------------------------------------------------------------------------------------


async def offered(session: AsyncSession, today: date) -> list[CampaignRead]:
    """The campaigns a mission may be tagged for: running or to come."""
    return [campaign for campaign in await all_campaigns(session) if campaign.ends_on >= today]


async def tags_of(session: AsyncSession, mission_id: int) -> set[int]:
    rows = await session.scalars(select(CampaignMission.campaign_id).where(CampaignMission.mission_id == mission_id))
    return set(rows)


async def set_tags(session: AsyncSession, mission_id: int, chosen: set[int], today: date) -> bool:
    """The mission is tagged for exactly the `chosen` campaigns among those offered (tags of ended campaigns stay as
    they are); unknown ids are ignored. True when something changed."""
    open_ids = {campaign.id for campaign in await offered(session, today)}
    wanted = chosen & open_ids
    current = await tags_of(session, mission_id) & open_ids
    added, removed = wanted - current, current - wanted
    if added:
        await session.execute(pg_insert(CampaignMission).values(
            [{"campaign_id": campaign_id, "mission_id": mission_id} for campaign_id in sorted(added)]
        ).on_conflict_do_nothing())
    if removed:
        await session.execute(delete(CampaignMission).where(
            CampaignMission.mission_id == mission_id, CampaignMission.campaign_id.in_(removed)
        ))
    if added or removed:
        cache.mark_changed(session)
    return bool(added or removed)


async def mission_organisation(session: AsyncSession, mission_id: int) -> tuple[int, str] | None:
    query = select(Mission.organisation_id, Mission.title).where(Mission.id == mission_id)
    row = (await session.execute(query)).first()
    return None if row is None else (int(row[0]), str(row[1]))


# The public reads, from the cache -------------------------------------------------------------------------------


async def current(engine: AsyncEngine, redis: Redis, today: date) -> list[CampaignRead]:
    """The campaigns running `today`, from Redis (no SQL when cached)."""
    return [campaign for campaign in await current_and_coming(engine, redis, today) if campaign.running(today)]


async def on_home(engine: AsyncEngine, redis: Redis, today: date) -> list[CampaignRead]:
    """As `current`, for the home page's build: none rather than no home page while PostgreSQL is unreachable."""
    try:
        return await current(engine, redis, today)
    except CacheUnavailable:
        log.warning("home page built without its campaigns: their source is unreachable")
        return []


async def current_and_coming(engine: AsyncEngine, redis: Redis, today: date) -> list[CampaignRead]:
    async def build() -> bytes:
        async with unit_of_work(engine) as session:
            rows = await session.execute(
                select(Campaign, CampaignImage).outerjoin(CampaignImage, CampaignImage.id == Campaign.image_id)
                .where(Campaign.ends_on >= today).order_by(Campaign.starts_on, Campaign.name)
            )
            return msgspec.json.encode(CampaignList([_read(campaign, image) for campaign, image in rows.tuples()]))

    listing = msgspec.json.decode(await cache.directory(redis, build), type=CampaignList)
    return [campaign for campaign in listing.items if campaign.ends_on >= today]


async def by_slug(engine: AsyncEngine, redis: Redis, slug: str) -> CampaignRead:
    """Raises `CampaignNotFound`; an unknown slug is cached a minute."""
    async def build() -> bytes:
        async with unit_of_work(engine) as session:
            row = (await session.execute(
                select(Campaign, CampaignImage).outerjoin(CampaignImage, CampaignImage.id == Campaign.image_id)
                .where(Campaign.slug == slug)
            )).tuples().first()
        return cache.MISSING if row is None else msgspec.json.encode(_read(*row))

    found = await cache.by_slug(redis, slug, build)
    if found == cache.MISSING:
        raise CampaignNotFound
    return msgspec.json.decode(found, type=CampaignRead)


async def image(session: AsyncSession, image_id: int) -> CampaignImage | None:
    return await session.get(CampaignImage, image_id)
