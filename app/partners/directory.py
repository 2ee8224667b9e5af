"""This process's copy of every active API key (digest → PartnerContext), so that authenticating a partner costs no
SQL. The copy is checked against the partners' version in Redis at most a second old, and reloaded whole when it
changes: a revoked key or a deactivated partner stops working within a second in every web process. Holding all
the active keys (a few hundred at most) means an unknown key is refused from the copy: a flood of random keys grows
nothing and costs at most one reload a second."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.after_commit import Clients, after_commit
from app.db.base import unit_of_work
from app.partners.context import PartnerContext
from app.partners.models import Partner, PartnerApiKey
from app.partners.rate_limit import PartnerKeys

log = logging.getLogger("renfort.partners.directory")
MAX_AGE_SECONDS = 1.0
# A version bump lost (Redis briefly away right after a commit) is made up for by reloading this often anyway.
RELOAD_SECONDS = 60.0
UNKNOWN_RELOAD_SECONDS = 1.0


def mark_partners_changed(session: AsyncSession) -> None:
    """After the commit of any change to a partner or a key: every web process reloads its copy within a second."""
    after_commit(session, _bump, key=PartnerKeys.version)


async def _bump(clients: Clients) -> None:
    await clients.redis.incr(PartnerKeys.version)


def context_of(partner: Partner) -> PartnerContext:
    return PartnerContext(
        id=partner.id, name=partner.name, rate_limit_per_minute=partner.rate_limit_per_minute,
        diffusion_domains=tuple(partner.diffusion_domains), diffusion_departments=tuple(partner.diffusion_departments),
        diffusion_organisation_ids=tuple(partner.diffusion_organisation_ids),
        diffuses_partner_missions=partner.diffuses_partner_missions,
    )


async def load_active_keys(engine: AsyncEngine) -> dict[str, PartnerContext]:
    async with unit_of_work(engine) as session:
        rows = (await session.execute(
            select(PartnerApiKey.digest, Partner).join(Partner, Partner.id == PartnerApiKey.partner_id)
            .where(PartnerApiKey.revoked_at.is_(None), Partner.active)
        )).all()
    contexts: dict[int, PartnerContext] = {}
    return {digest: contexts.setdefault(partner.id, context_of(partner)) for digest, partner in rows}


class PartnerDirectory:
    def __init__(self, engine: AsyncEngine, redis: Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self._redis = redis
        self._clock = clock
        self._by_digest: dict[str, PartnerContext] = {}
        self._version: str | None = None  # None until the first load
        self._checked_at = -math.inf
        self._loaded_at = -math.inf
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._by_digest)

    async def find(self, digest: str, *, check: bool = False) -> PartnerContext | None:
        """The partner of this key digest, from a copy at most a second older than Redis's version (current, with
        `check`)."""
        if check or self._version is None or self._clock() - self._checked_at >= MAX_AGE_SECONDS:
            version = await self._redis.get(PartnerKeys.version)
            await self.saw(version.decode() if isinstance(version, bytes) else str(version or ""))
        return self._by_digest.get(digest)

    async def find_or_reload(self, digest: str) -> PartnerContext | None:
        """As `find`. A digest the copy does not know costs one Redis read (a key just made is known at once), and
        reloads the copy at most once a second whatever the number of unknown keys sent (so a key whose version
        bump was lost, or that a script wrote, works within a second)."""
        partner = await self.find(digest)
        if partner is None:
            partner = await self.find(digest, check=True)
        if partner is None and self._clock() - self._loaded_at >= UNKNOWN_RELOAD_SECONDS:
            async with self._lock:
                if self._clock() - self._loaded_at >= UNKNOWN_RELOAD_SECONDS:
                    self._by_digest = await load_active_keys(self._engine)
                    self._loaded_at = self._clock()
            partner = self._by_digest.get(digest)
        return partner

    async def saw(self, version: str) -> None:
        """Redis holds `version` now: reload the copy if it is another one (requests wait for it: a revoked key must
        not pass), or in the background if it is only old (requests go on with it meanwhile)."""
        now = self._clock()
        if version != self._version:
            async with self._lock:
                # Another request may have reloaded for this very version while this one waited.
                if version != self._version:
                    await self._reload(version)
        elif now - self._loaded_at >= RELOAD_SECONDS and (self._refresh is None or self._refresh.done()):
            self._loaded_at = now  # one refresh at a time; a failed one is tried again a minute later
            self._refresh = asyncio.create_task(self._refreshed(version))
        self._checked_at = now

    async def _reload(self, version: str) -> None:
        # The version was read before the keys: a change committed meanwhile bumps it again.
        self._by_digest = await load_active_keys(self._engine)
        self._version = version
        self._loaded_at = self._clock()

    async def _refreshed(self, version: str) -> None:
        try:
            async with self._lock:
                if version == self._version:
                    await self._reload(version)
        except Exception:  # the copy stays as it was; PostgreSQL away is logged, not raised into a request
            log.exception("could not refresh the partners' keys")

    async def settled(self) -> None:
        """Waits for the background refresh under way, if any (for tests)."""
        if self._refresh is not None:
            await asyncio.gather(self._refresh, return_exceptions=True)
