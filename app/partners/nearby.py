"""Radius queries of `GET /v0/mission` answered from memory: this process's snapshot of every online mission (status
published or full, organisation online, not deleted: app/partners/diffusion.py's notion minus the per-partner part)
as numpy arrays, and each of those missions encoded once as the JSON partners read (a `wire.Fragment`, the caller's
tracked link put in per request). numpy (installed for ortools) is used by the web process for this.

A data index, not a result cache: each request computes its own page and total from the arrays, with its own
filters and diffusion rules. The snapshot is checked against the missions' version in Redis at most a second old and
rebuilt in the background when it changed (requests keep the previous one meanwhile), so a mission taken offline
leaves the answers within about a second. A rebuild encodes again only the missions whose rows changed: each carries
a stamp, a hash of the row versions (`xmin`) of the mission, its organisation, its partner and its addresses, which
PostgreSQL changes on every update, whichever code path wrote it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.db.errors import Failure, classify
from app.missions.cache import VERSION_KEY
from app.missions.search import EARTH_RADIUS_KM, ONLINE_ORGANISATIONS
from app.missions.service import ONLINE_STATUSES
from app.partners import details
from app.partners.context import PartnerContext
from app.partners.wire import Fragment, Rendering

log = logging.getLogger("renfort.partners.nearby")
MAX_AGE_SECONDS = 1.0
# A version bump lost (Redis briefly away right after a commit) is made up for by rebuilding this often anyway.
REBUILD_SECONDS = 60.0
POOL_SIZE = 4
DETAILS_CHUNK = 1000  # missions whose details one statement reads when a snapshot is built
ENCODE_SLICE = 100  # missions encoded between two yields to the event loop (a few milliseconds)
ACQUIRE_TIMEOUT_SECONDS = 10.0  # then a TimeoutError, answered 503 like the engine's pool timeout
MAX_MASKS = 256  # diffusion masks kept per snapshot (one per partner's rules, ~25 kB each)
NO_DAY = -1  # a mission without a start date: no start bound matches it, as NULL compares in SQL
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The latitude band is a hair wider than the circle: the exact distance decides, the band only narrows.
BAND_MARGIN = 1e-9
# City names whose folding in Python is known to equal PostgreSQL's lower(unaccent(…)); others take the SQL path.
PLAIN_LETTERS = frozenset("àáâãäåçèéêëìíîïñòóôõöùúûüýÿ" "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝŸ")

# One row of columns, one sort per table (the aggregates share their order). asyncpg decodes arrays in C, so a rebuild
# of 25k missions costs this process tens of milliseconds, not a Python loop over rows. Days count as toordinal().
SNAPSHOT_SQL = """
WITH online AS MATERIALIZED (
  SELECT m.id, coalesce(m.partner_id, 0) AS partner_id, m.organisation_id, m.domain, m.remote, m.open_to_minors,
         coalesce(m.start_date - DATE '0001-01-01' + 1, -1) AS start_day,
         (extract(epoch FROM m.created_at) * 1000000)::bigint AS created,
         hashtextextended(concat_ws(':', m.xmin, o.xmin, p.xmin, (
           SELECT string_agg(a.id || '.' || a.xmin, ',' ORDER BY a.id) FROM mission_addresses a
           WHERE a.mission_id = m.id)), 0) AS stamp
  FROM missions m JOIN organisations o ON o.id = m.organisation_id LEFT JOIN partners p ON p.id = m.partner_id
  WHERE m.status = ANY($1::text[]) AND m.deleted_at IS NULL AND o.status = ANY($2::text[])
), placed AS MATERIALIZED (
  SELECT a.id, a.mission_id, a.latitude, a.longitude, a.commune_code, c.department_code,
         lower(unaccent(c.name)) AS city
  FROM mission_addresses a JOIN online ON online.id = a.mission_id JOIN communes c ON c.code = a.commune_code
)
SELECT * FROM (
  SELECT array_agg(id ORDER BY id) AS ids, array_agg(partner_id ORDER BY id) AS partners,
         array_agg(organisation_id ORDER BY id) AS organisations, array_agg(domain ORDER BY id) AS domains,
         array_agg(remote ORDER BY id) AS remote, array_agg(open_to_minors ORDER BY id) AS minors,
         array_agg(start_day ORDER BY id) AS starts, array_agg(created ORDER BY id) AS created,
         array_agg(stamp ORDER BY id) AS stamps
  FROM online
) AS missions, (
  SELECT array_agg(mission_id ORDER BY latitude, id) AS address_missions,
         array_agg(latitude ORDER BY latitude, id) AS latitudes,
         array_agg(longitude ORDER BY latitude, id) AS longitudes,
         array_agg(commune_code ORDER BY latitude, id) AS communes,
         array_agg(department_code ORDER BY latitude, id) AS departments,
         array_agg(city ORDER BY latitude, id) AS cities
  FROM placed
) AS addresses
"""

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Masks = npt.NDArray[np.bool_]


def fold_city(name: str) -> str | None:
    """The name as PostgreSQL's lower(unaccent(…)) writes it, or None when Python cannot be sure to agree."""
    if not all(char.isascii() or char in PLAIN_LETTERS for char in name):
        return None
    decomposed = unicodedata.normalize("NFD", name)
    return "".join(char for char in decomposed if not unicodedata.combining(char)).lower()


def microseconds(instant: datetime) -> int:
    """Exact, unlike a float of seconds: a bound equal to a creation instant compares as in SQL."""
    delta = instant - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _codes(values: Iterable[str]) -> tuple[dict[str, int], list[int]]:
    codes: dict[str, int] = {}
    return codes, [codes.setdefault(value, len(codes)) for value in values]


@dataclass(eq=False)
class Snapshot:
    version: str
    built_at: float
    # Per address, sorted by latitude.
    lat: Floats  # radians
    lon: Floats
    cos_lat: Floats
    row: Ints  # its mission's index in the per-mission arrays
    shares_a_mission: Masks  # its mission has other addresses
    department: Ints
    commune: Ints
    # Per mission.
    ids: Ints
    partner: Ints  # 0 for ours
    organisation: Ints
    domain: Ints
    remote: Masks
    minors: Masks
    start: Ints  # date ordinal, NO_DAY when none
    created: Ints  # microseconds since the epoch
    stamps: Ints  # changes whenever what a partner reads of the mission does
    domain_codes: dict[str, int]
    department_codes: dict[str, int]
    communes_by_city: dict[str, list[int]]  # lower(unaccent(name)) → commune indexes
    fragments: dict[int, Fragment] = field(default_factory=dict)  # mission id → its JSON, for any caller
    _shared: dict[PartnerContext, Masks] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def shared_with(self, partner: PartnerContext) -> Masks:
        """app/partners/diffusion.py's `shared_with` on the missions, computed once per partner and snapshot."""
        mask = self._shared.get(partner)
        if mask is None:
            ours = self.partner == 0
            if partner.diffusion_domains:
                ours &= np.isin(self.domain, self._known(self.domain_codes, partner.diffusion_domains))
            if partner.diffusion_organisation_ids:
                ours &= np.isin(self.organisation, np.array(partner.diffusion_organisation_ids, dtype=np.int64))
            if partner.diffusion_departments:
                reached = np.zeros(len(self.ids), dtype=np.bool_)
                chosen = np.isin(self.department, self._known(self.department_codes, partner.diffusion_departments))
                reached[self.row[chosen]] = True  # any address in one of them
                ours &= reached
            mask = ours
            if partner.diffuses_partner_missions:
                mask = ours | ((self.partner != 0) & (self.partner != partner.id))
            if len(self._shared) >= MAX_MASKS:
                self._shared.clear()
            self._shared[partner] = mask
        return mask

    @staticmethod
    def _known(codes: dict[str, int], values: Iterable[str]) -> Ints:
        return np.array([codes[value] for value in values if value in codes], dtype=np.int64)


def _carried(snapshot: Snapshot, previous: Snapshot | None) -> dict[int, Fragment]:
    """The previous snapshot's fragments of the missions whose stamp is unchanged."""
    if previous is None or not len(previous) or not len(snapshot):
        return {}
    at = np.minimum(np.searchsorted(previous.ids, snapshot.ids), len(previous) - 1)
    unchanged = (previous.ids[at] == snapshot.ids) & (previous.stamps[at] == snapshot.stamps)
    old = previous.fragments
    return {key: old[key] for key in snapshot.ids[unchanged].tolist() if key in old}


def _build(row: asyncpg.Record, version: str, built_at: float, previous: Snapshot | None = None) -> Snapshot:
    def column(name: str, kind: type) -> npt.NDArray[Any]:
        return np.array(row[name] or [], dtype=kind)

    ids = column("ids", np.int64)  # sorted: each address finds its mission's index by bisection
    domain_codes, domain_index = _codes(row["domains"] or [])
    commune_codes, commune_index = _codes(row["communes"] or [])
    department_codes, department_index = _codes(row["departments"] or [])
    communes_by_city: dict[str, list[int]] = {}
    for code, city in zip(row["communes"] or [], row["cities"] or [], strict=True):
        indexes = communes_by_city.setdefault(city, [])
        if commune_codes[code] not in indexes:
            indexes.append(commune_codes[code])
    latitudes = np.radians(column("latitudes", np.float64))
    rows = np.searchsorted(ids, column("address_missions", np.int64)).astype(np.int64)
    addresses_of = np.bincount(rows, minlength=len(ids))
    snapshot = Snapshot(
        version=version,
        built_at=built_at,
        lat=latitudes,
        lon=np.radians(column("longitudes", np.float64)),
        cos_lat=np.cos(latitudes),
        row=rows,
        shares_a_mission=addresses_of[rows] > 1,
        department=np.array(department_index, dtype=np.int64),
        commune=np.array(commune_index, dtype=np.int64),
        ids=ids,
        partner=column("partners", np.int64),
        organisation=column("organisations", np.int64),
        domain=np.array(domain_index, dtype=np.int64),
        remote=column("remote", np.bool_),
        minors=column("minors", np.bool_),
        start=column("starts", np.int64),
        created=column("created", np.int64),
        stamps=column("stamps", np.int64),
        domain_codes=domain_codes,
        department_codes=department_codes,
        communes_by_city=communes_by_city,
    )
    snapshot.fragments = _carried(snapshot, previous)
    return snapshot


@dataclass(frozen=True, slots=True)
class Around:
    """A radius query in the snapshot's terms (app/partners/read.py's MissionQuery, checked there)."""

    lat: float  # degrees
    lon: float
    radius_km: float
    skip: int
    limit: int
    domains: frozenset[str] | None = None
    remote: frozenset[bool] | None = None
    open_to_minors: bool | None = None
    cities: tuple[str, ...] = ()  # folded by fold_city
    departments: frozenset[str] | None = None
    created_above: int | None = None  # microseconds, exclusive
    created_below: int | None = None
    start_after: int | None = None  # day ordinal, exclusive
    start_before: int | None = None  # day ordinal, exclusive
    start_until: int | None = None  # day ordinal, inclusive


def _longitude_reach(phi: float, band: float) -> float | None:
    """How far in longitude (radians) a circle of angular radius `band` around latitude `phi` reaches, a hair wider;
    None when it takes in a pole (every longitude)."""
    if abs(phi) + band >= math.pi / 2:
        return None
    return math.asin(min(1.0, math.sin(band) / math.cos(phi))) + BAND_MARGIN


def around(snapshot: Snapshot, query: Around, partner: PartnerContext) -> tuple[int, list[int]]:
    """The number of matching missions and the page's ids, nearest first (then by id), as read.py's SQL orders."""
    phi, lam = math.radians(query.lat), math.radians(query.lon)
    band = query.radius_km / EARTH_RADIUS_KM + BAND_MARGIN
    low = int(np.searchsorted(snapshot.lat, phi - band, side="left"))
    high = int(np.searchsorted(snapshot.lat, phi + band, side="right"))
    picked = np.arange(low, high)
    reach = _longitude_reach(phi, band)
    if reach is not None and -math.pi < lam - reach and lam + reach < math.pi:
        # The longitudes of the band first (cheap), then the exact distance on the few left.
        picked = picked[np.abs(snapshot.lon[low:high] - lam) <= reach]
    lat, lon = snapshot.lat[picked], snapshot.lon[picked]
    # The haversine of app/missions/search.py, term for term.
    h = np.sin((lat - phi) / 2) ** 2 + math.cos(phi) * snapshot.cos_lat[picked] * np.sin((lon - lam) / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    keep = km <= query.radius_km
    if query.cities:
        chosen = [index for city in query.cities for index in snapshot.communes_by_city.get(city, ())]
        keep &= np.isin(snapshot.commune[picked], np.array(chosen, dtype=np.int64))
    if query.departments is not None:
        codes = Snapshot._known(snapshot.department_codes, query.departments)
        keep &= np.isin(snapshot.department[picked], codes)
    picked, km = picked[keep], km[keep]
    rows = snapshot.row[picked]
    keep = snapshot.shared_with(partner)[rows] & _mission_filters(snapshot, rows, query)
    picked, rows, km = picked[keep], rows[keep], km[keep]
    if not len(rows):
        return 0, []
    if snapshot.shares_a_mission[picked].any():
        by_mission = np.lexsort((km, rows))  # each mission's nearest address first
        rows, km = rows[by_mission], km[by_mission]
        first = np.empty(len(rows), dtype=np.bool_)
        first[0] = True
        np.not_equal(rows[1:], rows[:-1], out=first[1:])
        rows, km = rows[first], km[first]
    ids = snapshot.ids[rows]
    if query.limit == 0 or query.skip >= len(ids):
        return len(ids), []
    page = np.lexsort((ids, km))[query.skip:query.skip + query.limit]
    return len(ids), ids[page].tolist()


def _mission_filters(snapshot: Snapshot, rows: Ints, query: Around) -> Masks:
    keep = np.ones(len(rows), dtype=np.bool_)
    if query.domains is not None:
        keep &= np.isin(snapshot.domain[rows], Snapshot._known(snapshot.domain_codes, query.domains))
    if query.remote is not None:
        keep &= np.isin(snapshot.remote[rows], np.array(sorted(query.remote), dtype=np.bool_))
    if query.open_to_minors is not None:
        keep &= snapshot.minors[rows] == query.open_to_minors
    if query.created_above is not None:
        keep &= snapshot.created[rows] > query.created_above
    if query.created_below is not None:
        keep &= snapshot.created[rows] < query.created_below
    if query.start_after is not None or query.start_before is not None or query.start_until is not None:
        start = snapshot.start[rows]
        keep &= start != NO_DAY
        if query.start_after is not None:
            keep &= start > query.start_after
        if query.start_before is not None:
            keep &= start < query.start_before
        if query.start_until is not None:
            keep &= start <= query.start_until
    return keep


async def _no_reset(connection: asyncpg.Connection) -> None:
    """Only single autocommitted reads run on these connections: nothing to reset (asyncpg's default costs a round
    trip per request)."""


class Nearby:
    """This process's snapshot and the small asyncpg pool of the partner read API (no checkout ping, no
    BEGIN/ROLLBACK around one read, unlike the pooled engine)."""

    def __init__(self, database_url: str, redis: Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self._dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self._redis = redis
        self._clock = clock
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._snapshot: Snapshot | None = None
        self._checked_at = -math.inf
        self._first = asyncio.Lock()
        self._rebuild: asyncio.Task[None] | None = None

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=0, max_size=POOL_SIZE,
                                                           reset=_no_reset)
        return self._pool

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """One autocommitted read. PostgreSQL away (or restarting) surfaces as a ConnectionError, which the app
        answers with a 503 as it does for the engine's errors."""
        try:
            pool = await self.pool()
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                rows: list[asyncpg.Record] = await connection.fetch(sql, *args)
                return rows
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if classify(error) is Failure.UNAVAILABLE:
                raise ConnectionError("PostgreSQL is unavailable") from error
            raise

    async def snapshot(self) -> Snapshot:
        """The current snapshot: built on the very first call, then at most a second behind Redis's version."""
        if self._snapshot is None:
            async with self._first:
                if self._snapshot is None:
                    self._snapshot = await self._load(await self._version())
                    self._checked_at = self._clock()
            return self._snapshot
        now = self._clock()
        if now - self._checked_at >= MAX_AGE_SECONDS and (self._rebuild is None or self._rebuild.done()):
            self._checked_at = now
            try:
                version = await self._version()
            except RedisError as error:
                log.warning("could not read the missions' version (%s); keeping the snapshot", type(error).__name__)
                return self._snapshot
            if version != self._snapshot.version or now - self._snapshot.built_at >= REBUILD_SECONDS:
                self._rebuild = asyncio.create_task(self._replace(version))
        return self._snapshot

    async def settled(self) -> None:
        """Waits for the rebuild under way, if any (for tests)."""
        if self._rebuild is not None:
            await asyncio.gather(self._rebuild, return_exceptions=True)

    async def _version(self) -> str:
        raw = await self._redis.get(VERSION_KEY)
        return raw.decode() if isinstance(raw, bytes) else str(raw or "")

    async def _replace(self, version: str) -> None:
        try:
            self._snapshot = await self._load(version)
        except Exception:  # a failed rebuild keeps the previous snapshot; the next check tries again
            log.exception("could not rebuild the partner missions snapshot")

    async def _load(self, version: str) -> Snapshot:
        """The version is read before the missions: a change committed meanwhile bumps it again, and is taken up."""
        started = time.perf_counter()
        rows = await self.fetch(SNAPSHOT_SQL, list(ONLINE_STATUSES), list(ONLINE_ORGANISATIONS))
        fetched = time.perf_counter()
        # In a thread: tens of milliseconds of Python and numpy that would otherwise stall this process's requests.
        snapshot = await asyncio.to_thread(_build, rows[0], version, self._clock(), self._snapshot)
        encoded = await self._encode(snapshot)
        log.info("partner missions snapshot built: %d missions (%d encoded again), %d addresses in %.0f ms "
                 "(%.0f ms of SQL for the arrays)", len(snapshot), encoded, len(snapshot.row),
                 (time.perf_counter() - started) * 1000, (fetched - started) * 1000)
        return snapshot

    async def _encode(self, snapshot: Snapshot) -> int:
        """Reads and encodes the fragments `_build` could not carry over. A mission gone meanwhile has none, and is
        left out of the pages (its total lags, as the rest does). Returns how many were encoded."""
        missing = [key for key in snapshot.ids.tolist() if key not in snapshot.fragments]
        if not missing:
            return 0
        render = Rendering((await details.fetch_geography(self.fetch)).departments, "", None)
        sql = details.of_ids_sql()
        for start in range(0, len(missing), DETAILS_CHUNK):
            for number, row in enumerate(await self.fetch(sql, missing[start:start + DETAILS_CHUNK]), 1):
                snapshot.fragments[row["id"]] = render.fragment(row)
                if number % ENCODE_SLICE == 0:
                    await asyncio.sleep(0)  # requests go on between slices of a large build
        return len(missing)

    async def close(self) -> None:
        if self._rebuild is not None and not self._rebuild.done():
            self._rebuild.cancel()
            await asyncio.gather(self._rebuild, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
