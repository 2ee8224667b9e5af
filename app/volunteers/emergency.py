"""The emergency a sign-up comes from (`/inscription?urgence=slug`), by its title, for the form to say so.

Read like the emergency pages (surge/emergencies/page.py): from the shared page cache, so a surge of sign-ups from
one emergency page runs no SQL, and an unknown slug (anyone can type one) costs no SQL and no cache entry.
"""

from __future__ import annotations

import msgspec
from redis.exceptions import RedisError
from sqlalchemy import select

from app.cache import CacheUnavailable
from app.db.base import unit_of_work
from app.state import WebState
from surge.emergencies import service
from surge.emergencies.models import Emergency


class SignupEmergency(msgspec.Struct, frozen=True):
    slug: str
    title: str
    live: bool  # False: closed since (its page stays public, as an archive)


async def _public_slugs(web: WebState) -> list[str]:
    async with unit_of_work(web.engine, web.clients) as session:
        return await service.public_slugs(session)


async def find(web: WebState, slug: str) -> SignupEmergency | None:
    """The public emergency of this slug, or None. Raises `CacheUnavailable` when neither the cache nor PostgreSQL
    can answer."""
    slug = slug.strip().lower()
    if not service.SLUG.match(slug) or not await web.pages.is_public(slug, lambda: _public_slugs(web)):
        return None

    async def build() -> bytes | None:
        async with unit_of_work(web.engine, web.clients) as session:
            row = (await session.execute(
                select(Emergency.title, Emergency.status).where(Emergency.slug == slug)
            )).first()
        if row is None or row.status == "draft":
            return None
        return msgspec.json.encode(SignupEmergency(slug, row.title, row.status == "live"))

    found = await web.pages.get(f"inscription-urgence:{slug}", "", build)
    return None if found is None else msgspec.json.decode(found, type=SignupEmergency)


async def lookup(web: WebState, slug: str) -> tuple[SignupEmergency | None, bool]:
    """(the emergency, whether the answer is known): when Redis or PostgreSQL cannot say, the form is shown anyway
    (sign-ups keep being accepted through an outage) and the slug kept as it came."""
    try:
        return await find(web, slug), True
    except (CacheUnavailable, RedisError):
        return None, False
