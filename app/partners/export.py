"""Our missions diffused to a partner, as an XML feed in API Engagement's import format (`<source><mission>…`): what
a partner's importer already reads. Built from the same `MissionV0` as the JSON API, and kept in Redis per partner
until any mission changes (app/missions/cache.py's version) or for at most TTL_SECONDS."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.missions.cache import VERSION_KEY
from app.partners.context import PartnerContext
from app.partners.read import fetch, shared_statement
from app.partners.wire import MissionV0, Rendering

TTL_SECONDS = 300
# Characters XML 1.0 cannot carry at all, even escaped: removed rather than sent broken.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ExportKeys:
    """The Redis key of one partner's feed, for one version of what is online."""

    def __init__(self, partner_id: int) -> None:
        self.partner_id = partner_id

    def document(self, version: str) -> str:
        return f"renfort:partners:export:{self.partner_id}:{version}"


def cdata(text: str) -> str:
    """Text as CDATA; a `]]>` inside is split across two sections, the only way CDATA can hold it."""
    return "<![CDATA[" + NOT_XML.sub("", text).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _tag(name: str, value: str | int | float | None, *, raw: bool = False) -> str:
    if value is None:
        return ""
    text = str(value) if raw else cdata(str(value))
    return f"<{name}>{text}</{name}>"


def mission_xml(mission: MissionV0) -> str:
    addresses = "".join(
        "<address>" + _tag("street", address.street) + _tag("postalCode", address.postal_code)
        + _tag("city", address.city) + _tag("departmentCode", address.department_code)
        + _tag("departmentName", address.department_name) + _tag("region", address.region)
        + _tag("country", address.country)
        + (f"<location><lat>{address.location.lat!r}</lat><lon>{address.location.lon!r}</lon></location>"
           if address.location else "")
        + "</address>"
        for address in mission.addresses
    )
    return (
        "<mission>"
        # We are the advertiser of this feed: our mission id is the one id unique across it.
        + _tag("clientId", mission.id, raw=True)
        + _tag("title", mission.title) + _tag("description", mission.description)
        + _tag("applicationUrl", mission.application_url)
        + _tag("postedAt", mission.created_at, raw=True) + _tag("startAt", mission.start_at, raw=True)
        + _tag("endAt", mission.end_at, raw=True) + _tag("createdAt", mission.created_at, raw=True)
        + _tag("updatedAt", mission.updated_at, raw=True)
        + _tag("domain", mission.domain) + _tag("activity", mission.activity) + _tag("type", mission.type, raw=True)
        + _tag("remote", mission.remote, raw=True) + _tag("openToMinors", mission.open_to_minors, raw=True)
        + _tag("reducedMobilityAccessible", mission.reduced_mobility_accessible, raw=True)
        + _tag("places", mission.places, raw=True) + _tag("schedule", mission.schedule)
        + _tag("publisherId", mission.publisher_id) + _tag("publisherName", mission.publisher_name)
        + _tag("organizationName", mission.organization_name)
        + _tag("organizationClientId", mission.organization_client_id)
        + _tag("organizationRNA", mission.organization_rna) + _tag("organizationSiret", mission.organization_siret)
        + (f"<addresses>{addresses}</addresses>" if addresses else "")
        + "</mission>"
    )


def document(missions: Iterable[MissionV0]) -> bytes:
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<source><publisher>Renfort</publisher>']
    parts.extend(mission_xml(mission) for mission in missions)
    parts.append("</source>\n")
    return "".join(parts).encode("utf-8")


async def build(engine: AsyncEngine, partner: PartnerContext, render: Rendering) -> bytes:
    rows = await fetch(engine, ("shared", partner), lambda: shared_statement(partner), {})
    return document(render.mission(row) for row in rows)


async def feed(engine: AsyncEngine, redis: Redis, partner: PartnerContext, render: Rendering) -> bytes:
    """The cached document when what is online has not changed since it was built; else a fresh one. Redis failing
    (down, or at its memory limit) only costs the cache."""
    keys = ExportKeys(partner.id)
    try:
        raw = await redis.get(VERSION_KEY)
        version = raw.decode() if isinstance(raw, bytes) else str(raw or 0)
        cached = await redis.get(keys.document(version))
    except RedisError:
        return await build(engine, partner, render)
    if cached:
        return cached if isinstance(cached, bytes) else cached.encode()
    built = await build(engine, partner, render)
    with contextlib.suppress(RedisError):
        await redis.set(keys.document(version), built, ex=TTL_SECONDS)
    return built
