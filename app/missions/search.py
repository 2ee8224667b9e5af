"""The public search: online missions near a point within a true great-circle radius, with filters and keywords
(PostgreSQL full-text search in French, accents folded: the `fr_unaccent` configuration of migration 0013), sorted by
distance, priority or relevance, paginated, and served from the Redis cache (see cache.py)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ARRAY, ColumnElement, String, Text, and_, cast, exists, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import TSQUERY, array
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.campaigns.filters import CAMPAIGN_SLUG, campaign_missions
from app.db.base import unit_of_work
from app.geo.index import PostcodeIndex
from app.geo.models import Commune
from app.missions import cache, search_links
from app.missions.models import Mission, MissionAddress
from app.missions.schemas import MissionPage
from app.missions.service import ONLINE_STATUSES, _addresses, partner_names, read, taken
from app.missions.validation import MissionInvalid
from app.organisations.models import STATUSES as ORGANISATION_STATUSES
from app.organisations.models import Organisation
from app.organisations.service import is_online
from app.reference import ACTIVITIES, DOMAINS

EARTH_RADIUS_KM = 6371.0088  # as surge.dispatch.geometry.haversine_km
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180
DEFAULT_RADIUS_KM = 35.0
# Each distinct query is a cache entry and, on a miss, SQL: every parameter takes a bounded set of values.
RADII_KM = (1, 2, 5, 10, 20, 35, 50, 100, 200, 500)
COORDINATE_DECIMALS = 2  # ~1 km: nearby points share their results
MAX_PER_PAGE = 50
MAX_PAGE = 100
MAX_LENGTH = 100  # characters, for any parameter
DATE_SPAN = timedelta(days=3 * 366)  # either side of today
ONLINE_ORGANISATIONS = tuple(status for status in ORGANISATION_STATUSES if is_online(status))
# ASCII digits only (`\d` takes any script's digits), and fullmatch (`$` lets a final newline through).
POSTAL_CODE = re.compile(r"[0-9]{5}")
COMMUNE_CODE = re.compile(r"[0-9][0-9AB][0-9]{3}")
DEPARTMENT = re.compile(r"0[1-9]|[1-8][0-9]|9[0-5]|2[AB]|97[1-8]|98[4-9]")
EMERGENCY = re.compile(r"[a-z0-9][a-z0-9-]{2,63}")  # as surge.emergencies.service.SLUG
UNKNOWN_POSTAL_CODE = "Nous ne connaissons pas ce code postal : vérifiez-le."
UNSAFE = "Ce paramètre contient des caractères non autorisés."
TOO_LONG = f"Ce paramètre est trop long ({MAX_LENGTH} caractères au plus)."
SORTS = ("distance", "priority", "pertinence")
API_PATH = "/api/v1/missions"
TEXT_SEARCH: ColumnElement[Any] = literal_column("'fr_unaccent'::regconfig")
LEXEME = r"'((?:[^']|'')*)'"  # a quoted lexeme in a tsquery's text ('' is an escaped quote)


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
    campaign: str | None = None  # a campaign's slug: its tagged missions and those of its domains
    open_places: bool = False
    open_to_minors: bool = False  # only the missions that take people under 18
    keywords: str | None = None  # lower case, whitespace collapsed: websearch_to_tsquery syntax ("…", -word, or)
    activity: str | None = None  # a slug of ACTIVITIES
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


def _unsafe(text: str) -> bool:
    """Control, format or unassigned characters (a NUL byte is refused by PostgreSQL: it was a 500)."""
    return any(unicodedata.category(character)[0] == "C" for character in text)


def _radius(raw: str, errors: dict[str, str]) -> float | None:
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        value = math.nan
    if value not in RADII_KM:  # NaN is in no tuple
        allowed = ", ".join(str(radius) for radius in RADII_KM[:-1])
        errors["radius_km"] = f"Choisissez un rayon parmi {allowed} et {RADII_KM[-1]} km."
        return None
    return value


def parse_query(params: Mapping[str, str], postcodes: PostcodeIndex) -> SearchQuery:
    """From query-string parameters; raises MissionInvalid with one French message per wrong parameter. Unknown
    parameters are ignored; `postcodes`: the process's index, so an unknown postal code costs no SQL."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    text: dict[str, str] = {}
    for key in SearchQuery.__struct_fields__:
        value = str(params.get(key) or "").strip()
        if len(value) > MAX_LENGTH:
            errors[key] = TOO_LONG
        elif _unsafe(value):
            errors[key] = UNSAFE
        elif value:
            text[key] = value
    if "postal_code" in text:
        if not POSTAL_CODE.fullmatch(text["postal_code"]):
            errors["postal_code"] = "Saisissez un code postal à 5 chiffres."
        elif not postcodes.communes(text["postal_code"]):
            errors["postal_code"] = UNKNOWN_POSTAL_CODE
        else:
            values["postal_code"] = text["postal_code"]
    if "commune_code" in text:
        code = text["commune_code"].upper()
        if not COMMUNE_CODE.fullmatch(code):
            errors["commune_code"] = "Le code commune (INSEE) compte 5 caractères, par exemple 69123."
        elif not postcodes.knows_commune(code):
            errors["commune_code"] = "Nous ne connaissons pas cette commune : vérifiez le code."
        else:
            values["commune_code"] = code
    if "lat" in text or "lon" in text:
        message = "Indiquez une latitude et une longitude valides, en degrés."
        for field, bound in (("lat", 90), ("lon", 180)):
            degrees = _float(text.get(field, ""), field, -bound, bound, errors, message)
            values[field] = None if degrees is None else round(degrees, COORDINATE_DECIMALS)
    if "radius_km" in text:
        values["radius_km"] = _radius(text["radius_km"], errors)
    if "department" in text:
        if DEPARTMENT.fullmatch(text["department"].upper()):
            values["department"] = text["department"].upper()
        else:
            errors["department"] = "Le département s'écrit avec son numéro, par exemple 69 ou 2A."
    if "keywords" in text:
        # One cache entry for "Vélo  Lyon" and "vélo lyon": the search ignores case and repeated spaces.
        values["keywords"] = " ".join(text["keywords"].lower().split())
    if "activity" in text:
        if text["activity"] in ACTIVITIES:
            values["activity"] = text["activity"]
        else:
            errors["activity"] = "Cette activité n'existe pas : choisissez-en une dans la liste."
    if "domain" in text:
        if text["domain"] in DOMAINS:
            values["domain"] = text["domain"]
        else:
            errors["domain"] = "Ce domaine n'existe pas."
    today = date.today()
    for field in ("date_from", "date_to"):
        if field in text:
            try:
                day = date.fromisoformat(text[field])
            except ValueError:
                errors[field] = "Saisissez une date au format AAAA-MM-JJ."
                continue
            if abs(day - today) > DATE_SPAN:
                errors[field] = "Choisissez une date à moins de trois ans d'aujourd'hui."
            else:
                values[field] = day
    values["remote"] = _flag(text.get("remote"))
    values["open_places"] = bool(_flag(text.get("open_places")))
    values["open_to_minors"] = bool(_flag(text.get("open_to_minors")))
    if "emergency" in text:
        if EMERGENCY.fullmatch(text["emergency"].lower()):
            values["emergency"] = text["emergency"].lower()
        else:
            errors["emergency"] = "Cette urgence n'existe pas."
    if "campaign" in text:
        if CAMPAIGN_SLUG.fullmatch(text["campaign"]):
            values["campaign"] = text["campaign"]
        else:
            errors["campaign"] = "Cette campagne n'existe pas."
    sort = text.get("sort", "distance")
    if sort not in SORTS:
        errors["sort"] = "Triez par distance, par priorité ou par pertinence."
    elif sort == "pertinence" and "keywords" not in values:
        errors["sort"] = "Le tri par pertinence demande des mots-clés."
    values["sort"] = sort
    for field, high in (("page", MAX_PAGE), ("per_page", MAX_PER_PAGE)):
        if field in text:
            raw = text[field]
            if raw.isascii() and raw.isdecimal() and 1 <= int(raw) <= high:
                values[field] = int(raw)
            else:
                errors[field] = (f"Le nombre de résultats par page va de 1 à {MAX_PER_PAGE}." if field == "per_page"
                                 else f"Le numéro de page va de 1 à {MAX_PAGE}.")
    if errors:
        raise MissionInvalid(errors)
    return SearchQuery(**{key: value for key, value in values.items() if value is not None})


def _words(keywords: str) -> ColumnElement[Any]:
    """websearch_to_tsquery's query (quotes, -word, or; never an error) with each lexeme made a prefix: the French
    stemmer leaves "velo" and "velos" apart."""
    parsed = cast(func.websearch_to_tsquery(TEXT_SEARCH, keywords), Text)
    return cast(func.regexp_replace(parsed, LEXEME, r"'\1':*", "g"), TSQUERY)


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
    if query.open_to_minors:
        conditions.append(Mission.open_to_minors.is_(True))
    if query.emergency:
        conditions.append(Mission.emergency_slug == query.emergency)
    if query.activity:
        chosen = cast(array([query.activity]), ARRAY(String(80)))
        conditions.append(Mission.activities.op("@>")(chosen))  # the GIN index on activities
    words = _words(query.keywords) if query.keywords else None
    if words is not None:
        conditions.append(Mission.search_vector.op("@@")(words))  # the GIN index on search_vector
    if query.campaign:
        conditions.append(campaign_missions(query.campaign))

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
    if query.sort == "pertinence" and words is not None:
        order = [func.ts_rank(Mission.search_vector, words).desc(), Mission.priority.desc(),
                 *([distance] if query.located else []), Mission.id]
    elif query.sort == "distance" and query.located:
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
    names = await partner_names(session, [mission for mission, _, _ in rows])
    items = [read(mission, organisation, addresses[mission.id], km, held.get(mission.id, 0),
                  names.get(mission.partner_id or 0)) for mission, organisation, km in rows]
    pages = max(1, math.ceil(total / query.per_page))
    links = search_links.pagination(API_PATH, query, pages, MAX_PAGE)
    return MissionPage(items=items, total=total, page=query.page, per_page=query.per_page, pages=pages,
                       previous=links.previous, next=links.next)


async def search(session: AsyncSession, redis: Redis, query: SearchQuery) -> MissionPage:
    """From the cache (app/cache); a miss runs on `session`, the caller's."""
    async def build() -> bytes:
        return msgspec.json.encode(await _run(session, query))

    cached = await cache.results(redis).get(cache.keys(msgspec.json.encode(query).decode()), build)
    return msgspec.json.decode(cached, type=MissionPage)


async def search_json(engine: AsyncEngine, redis: Redis, query: SearchQuery) -> bytes:
    """The same page as JSON. A hit is the cached bytes as they are: no database session, no decoding and
    re-encoding (the API's hot path); a miss opens its own read-only unit of work."""
    async def build() -> bytes:
        async with unit_of_work(engine) as session:
            return msgspec.json.encode(await _run(session, query))

    return await cache.results(redis).get(cache.keys(msgspec.json.encode(query).decode()), build)
