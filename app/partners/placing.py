"""Placing a partner's address on one of our communes, in memory: the communes are loaded once per process (one query,
~35,000 rows), so 20,000 addresses are placed without any further SQL.

From the postal code (the city name chooses among its communes, else the most populous), else the city name within
the department, else the commune nearest to the partner's coordinates. The point kept is the partner's own when it
lies near the commune (it is more precise than the town hall), else the town hall's."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Commune, ReferenceData
from app.partners.records import RecordAddress

EARTH_RADIUS_KM = 6371.0088
PLAUSIBLE_KM = 30.0  # a partner's point farther than this from the commune's town hall is a mistake (swapped lat/lon…)
CELL_DEGREES = 0.5  # the grid of the nearest-commune lookup
MAX_NEAREST_KM = 50.0  # beyond this no commune is "near": the point is not in France
MAX_LINE = 200  # mission_addresses.address_line
MAX_CACHED = 100  # characters of a city name worth remembering
POSTAL_CODE = re.compile(r"[0-9]{4,5}")
DEPARTMENT = re.compile(r"0?[1-9]|[1-8][0-9]|9[0-5]|2[AaBb]|97[1-8]|98[4-9]")


@dataclass(frozen=True, slots=True)
class _Commune:
    code: str
    name: str
    department_code: str
    postal_codes: tuple[str, ...]
    population: int
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Placed:
    """An address ready for `mission_addresses`."""

    address_line: str
    postal_code: str
    commune_code: str
    commune_name: str
    department_code: str
    latitude: float
    longitude: float


def fold(text: str) -> str:
    """Case, accents, hyphens and the "Saint"/"St" spelling folded, to compare city names."""
    # A feed names the same few thousand cities again and again: remembered, unless absurdly long.
    return _folded(text) if len(text) <= MAX_CACHED else _fold(text)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    words = re.findall(r"[a-z0-9]+", plain.replace("œ", "oe"))
    return " ".join({"st": "saint", "ste": "sainte"}.get(word, word) for word in words)


_folded = functools.lru_cache(maxsize=16_384)(_fold)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half = (math.sin((phi2 - phi1) / 2) ** 2
            + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(half)))


def _cell(latitude: float, longitude: float) -> tuple[int, int]:
    return math.floor(latitude / CELL_DEGREES), math.floor(longitude / CELL_DEGREES)


@functools.lru_cache(maxsize=65_536)  # our communes' names only
def _name_forms(name: str) -> frozenset[str]:
    # "Paris 11e Arrondissement" is found as "Paris"; "Lyon" as "Lyon".
    folded = fold(name)
    return frozenset((folded, folded.split(" ")[0]) if " arrondissement" in folded else (folded,))


_CACHE: dict[tuple[object, ...], Placer] = {}


class Placer:
    """The communes, indexed by postal code, by (department, folded name) and on a coarse grid."""

    def __init__(self, communes: list[_Commune]) -> None:
        self._by_postcode: dict[str, list[_Commune]] = defaultdict(list)
        self._by_name: dict[tuple[str, str], list[_Commune]] = defaultdict(list)
        self._grid: dict[tuple[int, int], list[_Commune]] = defaultdict(list)
        self._by_population = sorted(communes, key=lambda row: -row.population)
        for commune in self._by_population:
            for postal_code in commune.postal_codes:
                self._by_postcode[postal_code].append(commune)
            for form in _name_forms(commune.name):
                self._by_name[(commune.department_code, form)].append(commune)
            self._grid[_cell(commune.latitude, commune.longitude)].append(commune)

    @classmethod
    async def load(cls, session: AsyncSession) -> Placer:
        """The communes' placer, built once per process: communes change only when a release reloads the dataset,
        which the fingerprint (dataset version and commune count, one cheap query) tells."""
        fingerprint = tuple((await session.execute(select(
            select(func.string_agg(ReferenceData.version, ",")).scalar_subquery(),
            select(func.count()).select_from(Commune).scalar_subquery(),
        ))).one())
        cached = _CACHE.get(fingerprint)
        if cached is None:
            cached = await cls._read(session)
            _CACHE.clear()
            _CACHE[fingerprint] = cached
        return cached

    @classmethod
    async def _read(cls, session: AsyncSession) -> Placer:
        # The driver's rows as they come (~35,000): SQLAlchemy's per-row result processing doubled the load time.
        connection = await session.connection()
        rows: Sequence[Any] = (await connection.exec_driver_sql(
            "SELECT code, name, department_code, postal_codes, population, latitude, longitude FROM communes "
            "WHERE latitude IS NOT NULL AND longitude IS NOT NULL"
        )).all()
        return cls([_Commune(code, name, department, tuple(postal_codes or ()), population or 0, lat, lon)
                    for code, name, department, postal_codes, population, lat, lon in rows
                    if lat is not None and lon is not None])

    def fallback(self) -> Placed | None:
        """Where an organisation with no address at all is filed: the most populous commune (Paris)."""
        if not self._by_population:
            return None
        commune = self._by_population[0]
        return Placed(address_line=commune.name[:MAX_LINE], postal_code=commune.postal_codes[0] if
                      commune.postal_codes else "", commune_code=commune.code, commune_name=commune.name,
                      department_code=commune.department_code, latitude=commune.latitude, longitude=commune.longitude)

    def place(self, address: RecordAddress) -> Placed | None:
        """Our commune for `address`, or None when nothing in it points to a French commune."""
        commune = self._from_postcode(address) or self._from_city(address) or self._from_point(address)
        if commune is None:
            return None
        latitude, longitude = commune.latitude, commune.longitude
        point = _point(address)
        if point is not None and distance_km(*point, commune.latitude, commune.longitude) <= PLAUSIBLE_KM:
            latitude, longitude = point
        postal_code = _postal_code(address.postal_code)
        if postal_code not in commune.postal_codes:
            postal_code = commune.postal_codes[0] if commune.postal_codes else ""
        line = " ".join((address.street or "").split())[:MAX_LINE] or commune.name[:MAX_LINE]
        return Placed(address_line=line, postal_code=postal_code, commune_code=commune.code,
                      commune_name=commune.name, department_code=commune.department_code,
                      latitude=latitude, longitude=longitude)

    def _from_postcode(self, address: RecordAddress) -> _Commune | None:
        candidates = self._by_postcode.get(_postal_code(address.postal_code) or "", [])
        if not candidates:
            return None
        if address.city:
            wanted = fold(address.city)
            for commune in candidates:
                if wanted in _name_forms(commune.name):
                    return commune
        return candidates[0]  # the most populous

    def _from_city(self, address: RecordAddress) -> _Commune | None:
        department = _department(address.department_code) or _department_of(_postal_code(address.postal_code))
        if not address.city or department is None:
            return None
        found = self._by_name.get((department, fold(address.city)))
        return found[0] if found else None

    def _from_point(self, address: RecordAddress) -> _Commune | None:
        point = _point(address)
        if point is None:
            return None
        row, column = _cell(*point)
        nearby = [commune for d_row in (-1, 0, 1) for d_column in (-1, 0, 1)
                  for commune in self._grid.get((row + d_row, column + d_column), ())]
        if not nearby:
            return None
        best = min(nearby, key=lambda commune: distance_km(*point, commune.latitude, commune.longitude))
        return best if distance_km(*point, best.latitude, best.longitude) <= MAX_NEAREST_KM else None


def _postal_code(raw: str | None) -> str | None:
    text = (raw or "").strip()
    return text.zfill(5) if POSTAL_CODE.fullmatch(text) else None


def _department(raw: str | None) -> str | None:
    text = (raw or "").strip()
    if not DEPARTMENT.fullmatch(text):
        return None
    return text.upper() if text[-1] in "AaBb" else text.zfill(2)


def _department_of(postal_code: str | None) -> str | None:
    if postal_code is None:
        return None
    return postal_code[:3] if postal_code.startswith("97") else postal_code[:2]


def _point(address: RecordAddress) -> tuple[float, float] | None:
    lat, lon = address.point()
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon
