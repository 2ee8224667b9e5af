"""The public search: online missions near a point within a true great-circle radius, with filters, sorted by
distance or priority, paginated, and served from the Redis cache (see cache.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, and_, exists, func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.base import unit_of_work
from app.geo.models import Commune
from app.missions import cache
from app.missions.models import Mission, MissionAddress
from app.missions.schemas import MissionPage
from app.missions.service import ONLINE_STATUSES, _addresses, read, taken
from app.missions.validation import MissionInvalid
from app.organisations.models import STATUSES as ORGANISATION_STATUSES
from app.organisations.models import Organisation
from app.organisations.service import is_online
from app.reference import DOMAINS

EARTH_RADIUS_KM = 6371.0088  # as surge.dispatch.geometry.haversine_km
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180
DEFAULT_RADIUS_KM = 35.0
MAX_PER_PAGE = 50
ONLINE_ORGANISATIONS = tuple(status for status in ORGANISATION_STATUSES if is_online(status))
POSTAL_CODE = re.compile(r"^\d{5}$")
COMMUNE_CODE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")
DEPARTMENT = re.compile(r"^(\d{2,3}|2[AB])$")


class SearchQuery(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The normalised query: its JSON encoding is the cache key."""

    postal_code: str | None = None
    commune_code: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_km: float = DEFAULT_RADIUS_KM
    department: str | None = None
    domain: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    remote: bool | None = None
    emergency: str | None = None
    open_places: bool = False
    sort: str = "distance"
    page: int = 1
    per_page: int = 20

    @property
    def located(self) -> bool:
        return bool(self.postal_code or self.commune_code or self.lat is not None) and self.remote is not True


def _float(raw: str, field: str, low: float, high: float, errors: dict[str, str], message: str) -> float | None:
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        errors[field] = message
        return None
    return value


def _flag(raw: str | None) -> bool | None:
    if raw is None or raw == "":
        return None
    return raw.lower() in ("1", "true", "oui", "on")


def parse_query(params: Mapping[str, str]) -> SearchQuery:
    """From query-string parameters; raises MissionInvalid with one French message per wrong parameter."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    text = {key: str(value).strip() for key, value in params.items() if str(value).strip()}
    if "postal_code" in text:
        if POSTAL_CODE.match(text["postal_code"]):
            values["postal_code"] = text["postal_code"]
        else:
            errors["postal_code"] = "Saisissez un code postal à 5 chiffres."
    if "commune_code" in text:
        if COMMUNE_CODE.match(text["commune_code"].upper()):
            values["commune_code"] = text["commune_code"].upper()
        else:
            errors["commune_code"] = "Le code commune (INSEE) compte 5 caractères, par exemple 69123."
    if "lat" in text or "lon" in text:
        message = "Indiquez une latitude et une longitude valides, en degrés."
        values["lat"] = _float(text.get("lat", ""), "lat", -90, 90, errors, message)
        values["lon"] = _float(text.get("lon", ""), "lon", -180, 180, errors, message)
    if "radius_km" in text:
        values["radius_km"] = _float(text["radius_km"], "radius_km", 0.1, 500, errors,
                                     "Le rayon est un nombre de kilomètres entre 0,1 et 500.")
    if "department" in text:
        if DEPARTMENT.match(text["department"].upper()):
            values["department"] = text["department"].upper()
        else:
            errors["department"] = "Le département s'écrit avec son numéro, par exemple 69 ou 2A."
    if "domain" in text:
        if text["domain"] in DOMAINS:
            values["domain"] = text["domain"]
        else:
            errors["domain"] = "Ce domaine n'existe pas."
    for field in ("date_from", "date_to"):
        if field in text:
            try:
                values[field] = date.fromisoformat(text[field])
            except ValueError:
                errors[field] = "Saisissez une date au format AAAA-MM-JJ."
    values["remote"] = _flag(text.get("remote"))
    values["open_places"] = bool(_flag(text.get("open_places")))
    if "emergency" in text:
        values["emergency"] = text["emergency"].lower()[:80]
    sort = text.get("sort", "distance")
    if sort not in ("distance", "priority"):
        errors["sort"] = "Triez par distance ou par priorité."
    values["sort"] = sort
    for field, high in (("page", 10_000), ("per_page", MAX_PER_PAGE)):
        if field in text:
            raw = text[field]
            if raw.isdecimal() and 1 <= int(raw) <= high:
                values[field] = int(raw)
            else:
                errors[field] = (f"Le nombre de résultats par page va de 1 à {MAX_PER_PAGE}." if field == "per_page"
                                 else "Le numéro de page est un entier positif.")
    if errors:
        raise MissionInvalid(errors)
    return SearchQuery(**{key: value for key, value in values.items() if value is not None})


async def _point(session: AsyncSession, query: SearchQuery) -> tuple[float, float]:
    """The searched point: given, or a commune's town hall (for a postal code, its most populous commune)."""
    if query.lat is not None and query.lon is not None:
        return query.lat, query.lon
    located = select(Commune.latitude, Commune.longitude).where(Commune.latitude.is_not(None))
    if query.commune_code:
        located = located.where(Commune.code == query.commune_code)
    else:
        located = located.where(literal(query.postal_code) == func.any(Commune.postal_codes))
        located = located.order_by(Commune.population.desc())
    row = (await session.execute(located.limit(1))).first()
    if row is None or row[0] is None or row[1] is None:
        field = "commune_code" if query.commune_code else "postal_code"
        raise MissionInvalid({field: "Nous ne connaissons pas ce lieu : vérifiez le code."})
    return float(row[0]), float(row[1])


def _distance(latitude: float, longitude: float) -> ColumnElement[float]:
    """Haversine in SQL, in km: exact on the sphere, like haversine_km."""
    phi = math.radians(latitude)
    half_dlat = (func.radians(MissionAddress.latitude) - literal(phi)) / 2
    half_dlon = (func.radians(MissionAddress.longitude) - literal(math.radians(longitude))) / 2
    h = func.power(func.sin(half_dlat), 2) + (
        math.cos(phi) * func.cos(func.radians(MissionAddress.latitude)) * func.power(func.sin(half_dlon), 2)
    )
    return 2 * EARTH_RADIUS_KM * func.asin(func.least(1.0, func.sqrt(h)))


def _bounding_box(latitude: float, longitude: float, radius_km: float) -> ColumnElement[bool]:
    """A prefilter the (latitude, longitude) index serves; never narrower than the circle."""
    dlat = radius_km / KM_PER_DEGREE
    box = MissionAddress.latitude.between(latitude - dlat, latitude + dlat)
    if abs(latitude) + dlat >= 89:
        return box  # near a pole every longitude may be in reach
    dlon = dlat / math.cos(math.radians(abs(latitude) + dlat))
    if longitude - dlon < -180 or longitude + dlon > 180:
        return box  # across the antimeridian: the exact distance alone decides
    return and_(box, MissionAddress.longitude.between(longitude - dlon, longitude + dlon))


async def _run(session: AsyncSession, query: SearchQuery) -> MissionPage:
    conditions: list[ColumnElement[bool]] = [
        Mission.status.in_(("published",) if query.open_places else ONLINE_STATUSES),
        Organisation.status.in_(ONLINE_ORGANISATIONS),
    ]
    if query.department:
        conditions.append(exists().where(
            MissionAddress.mission_id == Mission.id, Commune.code == MissionAddress.commune_code,
            Commune.department_code == query.department,
        ))
    if query.domain:
        conditions.append(Mission.domain == query.domain)
    if query.date_from:
        conditions.append(func.coalesce(Mission.end_date, query.date_from) >= query.date_from)
    if query.date_to:
        conditions.append(func.coalesce(Mission.start_date, query.date_to) <= query.date_to)
    if query.remote is not None:
        conditions.append(Mission.remote.is_(query.remote))
    if query.emergency:
        conditions.append(Mission.emergency_slug == query.emergency)

    base = select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
    distance: Any = literal(None)
    if query.located:
        latitude, longitude = await _point(session, query)
        nearest = (
            select(MissionAddress.mission_id, func.min(_distance(latitude, longitude)).label("km"))
            .where(_bounding_box(latitude, longitude, query.radius_km))
            .group_by(MissionAddress.mission_id)
            .having(func.min(_distance(latitude, longitude)) <= query.radius_km)
            .subquery()
        )
        base = base.join(nearest, nearest.c.mission_id == Mission.id)
        distance = nearest.c.km
    base = base.where(*conditions)
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    if query.sort == "distance" and query.located:
        order = [distance, Mission.priority.desc(), Mission.id]
    else:
        order = [Mission.priority.desc(), *([distance] if query.located else []),
                 Mission.start_date.asc().nulls_last(), Mission.id]
    rows = (await session.execute(
        base.add_columns(distance.label("km")).order_by(*order)
        .limit(query.per_page).offset((query.page - 1) * query.per_page)
    )).all()
    ids = [mission.id for mission, _, _ in rows]
    addresses, held = await _addresses(session, ids), await taken(session, ids)
    items = [read(mission, organisation, addresses[mission.id], km, held.get(mission.id, 0))
             for mission, organisation, km in rows]
    return MissionPage(items=items, total=total, page=query.page, per_page=query.per_page,
                       pages=max(1, math.ceil(total / query.per_page)))


async def search(session: AsyncSession, redis: Redis, query: SearchQuery) -> MissionPage:
    """From the cache when this exact query was answered since the last change; else from PostgreSQL."""
    key, cached = await cache.lookup(redis, msgspec.json.encode(query).decode())
    if cached is not None:
        return msgspec.json.decode(cached, type=MissionPage)
    page = await _run(session, query)
    await redis.set(key, msgspec.json.encode(page), ex=cache.TTL_SECONDS)
    return page


async def search_json(engine: AsyncEngine, redis: Redis, query: SearchQuery) -> bytes:
    """The same page as JSON. A hit is the cached bytes as they are: no database session, no decoding and
    re-encoding (the API's hot path); a miss opens its own read-only unit of work."""
    key, cached = await cache.lookup(redis, msgspec.json.encode(query).decode())
    if cached is not None:
        return cached
    async with unit_of_work(engine) as session:
        page = await _run(session, query)
    encoded = msgspec.json.encode(page)
    await redis.set(key, encoded, ex=cache.TTL_SECONDS)
    return encoded
