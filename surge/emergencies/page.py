"""The public emergency page `/urgence/{slug}` (and the home page's banner), served from the shared Redis cache
(app/cache): a visit costs at most one Redis call and no SQL, visits of one variant in the same event-loop tick share
that call, and the HTML is built at most once per FRESH_SECONDS per variant (with or without a postal code) by
whichever read finds it stale, while the others keep serving the previous copy. A change to the emergency or its
missions bumps the missions' cache version, so the next visit after the commit builds the new page. Counters are
computed by that build.

Only slugs in the directory of public emergencies reach the cache (`is_public`), and variants are bounded: no
postal code, one of the postal codes the process knows (`PostcodeIndex`), or one shared variant per kind of wrong
code, so typing random slugs or codes creates no entry and runs no SQL.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheKeys, CacheUnavailable, Policy, SharedCache
from app.geo.index import PostcodeIndex
from app.missions.cache import VERSION_KEY
from app.missions.models import Mission
from app.missions.service import ONLINE_STATUSES, taken
from app.volunteers.models import Volunteer

PREFIX = "renfort:pages:"
FRESH_SECONDS = 5
KEEP_SECONDS = 86_400  # the copy served while PostgreSQL is unreachable
FOUND, MISSING = b"2", b"4"  # the first byte of a cached entry: a page, or "no such public emergency"
POSTAL_CODE = re.compile(r"[0-9]{5}")  # ASCII digits only: `\d` takes any script's digits
NO_CODE, MALFORMED, UNKNOWN = "", "invalid", "unknown"  # the variants that are not a known postal code

# The page's error variants, with the message their page shows above the search form.
ERRORS = {MALFORMED: "Saisissez un code postal à 5 chiffres.",
          UNKNOWN: "Nous ne connaissons pas ce code postal : vérifiez-le."}

# Kept for app/errors.py, which maps it to the French 503.
PageUnavailable = CacheUnavailable


def variant_of(query_string: bytes, postcodes: PostcodeIndex) -> str:
    """The page variant a visit asks for, from its `code_postal` parameter (the first one)."""
    if b"code_postal" not in query_string:
        return NO_CODE
    typed = ""
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "code_postal":
            typed = value.strip().replace(" ", "")
            break
    if not typed:
        return NO_CODE
    if not POSTAL_CODE.fullmatch(typed):
        return MALFORMED
    return typed if postcodes.communes(typed) else UNKNOWN


@dataclass(frozen=True, slots=True)
class Counters:
    volunteers: int  # signed up from this emergency's page (saved in PostgreSQL)
    missions: int  # online missions attached to it
    places_open: int
    places_filled: int


async def counters(session: AsyncSession, slug: str) -> Counters:
    volunteers = await session.scalar(select(func.count()).where(Volunteer.emergency_slug == slug,
                                                                 ~Volunteer.unconfirmed))
    missions = dict((await session.execute(
        # A partner's missions take their applications on its site: our places counters leave them out.
        select(Mission.id, Mission.places).where(Mission.emergency_slug == slug, Mission.status.in_(ONLINE_STATUSES),
                                                 Mission.partner_id.is_(None))
    )).all())
    held = await taken(session, list(missions))  # the places held on these missions only
    filled = sum(min(held.get(mission_id, 0), places) for mission_id, places in missions.items())
    return Counters(volunteers=int(volunteers or 0), missions=len(missions),
                    places_open=sum(missions.values()) - filled, places_filled=filled)


Build = Callable[[], Awaitable[bytes | None]]  # the page's HTML, or None when there is no such public page


class PageCache:
    def __init__(self, redis: Redis) -> None:
        policy = Policy(fresh_seconds=FRESH_SECONDS, keep_seconds=KEEP_SECONDS, missing=MISSING)
        self._cache = SharedCache(redis, policy)
        self._slugs: frozenset[str] = frozenset()  # public slugs seen so far: a page once public stays public

    async def is_public(self, slug: str, build: Callable[[], Awaitable[list[str]]]) -> bool:
        """Whether an emergency of this slug has a public page, from the directory of public slugs (cached like the
        pages, and copied in this process). A slug this process does not know yet reads the directory again — one
        Redis call, which sees a page put live a moment ago — so an unknown slug (anyone can type one) costs no SQL
        and no cache entry."""
        if slug not in self._slugs:
            async def directory() -> bytes:
                return "\n".join(await build()).encode()

            listing = await self._cache.get(CacheKeys.of(VERSION_KEY, PREFIX, "public-slugs"), directory)
            self._slugs = frozenset(listing.decode().split("\n")) - {""}
        return slug in self._slugs

    async def get(self, name: str, variant: str, build: Build) -> bytes | None:
        """The page, or None when there is no such public page (cached too: a 404 costs no SQL either)."""
        async def entry() -> bytes:
            html = await build()
            return MISSING if html is None else FOUND + html

        found = await self._cache.get(CacheKeys.of(VERSION_KEY, PREFIX + name + ":", variant), entry)
        return found[1:] if found[:1] == FOUND else None
