"""`GET /v0/mission`: the query string checked into a `MissionQuery`. A radius query finds its page and total in this
process's snapshot of the online missions (app/partners/nearby.py), which also holds each mission already encoded:
no SQL at all. Other queries (keywords, activities, no point) take one SQL statement that
finds the page (the radius candidates from the GiST index on `point(longitude, latitude)` inside a box, then the
exact great-circle distance), counts every match (`count(*) OVER ()`) and joins the names only onto the returned
rows."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from asyncpg import Record
from litestar.datastructures import MultiDict
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    Text,
    any_,
    bindparam,
    false,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress
from app.missions.search import EARTH_RADIUS_KM, KM_PER_DEGREE, _unsafe, _words
from app.organisations.models import Organisation
from app.partners import details, domains
from app.partners.context import PartnerContext
from app.partners.dates import InvalidDate, parse_iso
from app.partners.details import Geography, with_details
from app.partners.diffusion import shared_with
from app.partners.errors import PartnerApiError
from app.partners.nearby import Around, Nearby, around, fold_city, microseconds
from app.partners.placing import fold
from app.partners.wire import MissionV0, Rendering
from app.reference import DOMAINS

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000  # beyond, partners take the XML feed
MAX_SKIP = 10_000
MAX_VALUES = 50  # values of one parameter (repeated and comma lists together)
MAX_LENGTH = 200  # characters of one value
MAX_KEYWORDS = 200
DEFAULT_DISTANCE_KM = 50.0
ZERO_DISTANCE_KM = 10.0  # API Engagement reads "0" and "0km" as 10 km
MAX_DISTANCE_KM = 500.0
MISSION_TYPES = ("benevolat", "volontariat_service_civique", "volontariat_sapeurs_pompiers",
                 "volontariat_reserve_operationnelle")
REMOTE_VALUES = ("no", "possible", "full", "local")
TRUE_WORDS, FALSE_WORDS = ("true", "yes", "1"), ("false", "no", "0")
DISTANCE = re.compile(r"([0-9]{1,6}(?:[.,][0-9]{1,6})?)\s*(km|m)?", re.IGNORECASE)
LIST_PARAMETERS = ("domain", "activity", "type", "remote", "city", "departmentName", "departmentCode")
SCALAR_PARAMETERS = ("limit", "skip", "openToMinors", "keywords", "lat", "lon", "distance")
DATE_PARAMETERS = ("createdAt", "startAt")
INVALID = "INVALID_QUERY"
TEXTS = ARRAY(String())
ACTIVITY_SLUGS = ARRAY(String(80))
FLAGS = ARRAY(Boolean())


@dataclass(frozen=True, slots=True)
class Bound:
    above: bool  # gt: (else lt:)
    instant: datetime  # aware, UTC


@dataclass(frozen=True, slots=True)
class MissionQuery:
    limit: int = DEFAULT_LIMIT
    skip: int = 0
    domains: frozenset[str] | None = None  # our domain slugs
    activities: tuple[str, ...] = ()  # our activity slugs
    benevolat: bool | None = None  # False: only other mission types were asked (we publish none)
    remote: frozenset[bool] | None = None
    cities: tuple[str, ...] = ()
    departments: frozenset[str] | None = None
    open_to_minors: bool | None = None
    keywords: str | None = None
    created_at: tuple[Bound, ...] = ()
    start_at: tuple[Bound, ...] = ()
    lat: float | None = None
    lon: float | None = None
    distance_km: float = DEFAULT_DISTANCE_KM


async def geography(connection: AsyncConnection) -> Geography:
    if (known := details.known_geography()) is not None:
        return known
    return details.geography_of(list((await connection.execute(details.GEOGRAPHY)).all()))


# Parsing


def _values(params: MultiDict[str], name: str, errors: dict[str, str]) -> list[str]:
    """Every value of a parameter, repeated (`?a=x&a=y`) or as a comma list (`?a=x,y`), trimmed, empty ones dropped."""
    raw = params.getall(name, [])
    if len(raw) > MAX_VALUES:
        errors[name] = f"trop de valeurs ({MAX_VALUES} au plus)"
        return []
    values: list[str] = []
    for item in raw:
        if not isinstance(item, str) or len(item) > MAX_LENGTH * MAX_VALUES:
            errors[name] = f"valeur trop longue ({MAX_LENGTH} caractères au plus)"
            return []
        values.extend(part.strip() for part in item.split(","))
    values = [value for value in values if value]
    if len(values) > MAX_VALUES:
        errors[name] = f"trop de valeurs ({MAX_VALUES} au plus)"
    elif any(len(value) > MAX_LENGTH for value in values):
        errors[name] = f"valeur trop longue ({MAX_LENGTH} caractères au plus)"
    elif any(_unsafe(value) for value in values):
        errors[name] = "caractères non autorisés"
    else:
        return values
    return []


def _scalar(params: MultiDict[str], name: str, errors: dict[str, str]) -> str | None:
    raw = params.getall(name, [])
    if not raw:
        return None
    if len(raw) > 1:
        errors[name] = "une seule valeur attendue"
        return None
    value = raw[0].strip()
    if len(value) > MAX_LENGTH:
        errors[name] = f"valeur trop longue ({MAX_LENGTH} caractères au plus)"
    elif _unsafe(value):
        errors[name] = "caractères non autorisés"
    else:
        return value or None
    return None


def _integer(raw: str | None, name: str, low: int, high: int, default: int, errors: dict[str, str]) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdecimal()) or not low <= int(raw) <= high:
        errors[name] = f"nombre entier de {low} à {high} attendu"
        return default
    return int(raw)


def _degrees(raw: str | None, name: str, bound: float, errors: dict[str, str]) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not -bound <= value <= bound:  # NaN and infinities fail too
        errors[name] = f"nombre de degrés entre -{bound:g} et {bound:g} attendu"
        return None
    return value


def _distance_km(raw: str | None, errors: dict[str, str]) -> float:
    if raw is None:
        return DEFAULT_DISTANCE_KM
    match = DISTANCE.fullmatch(raw)
    if match is None:
        errors["distance"] = "distance attendue comme 25km, 500m ou 10 (en km)"
        return DEFAULT_DISTANCE_KM
    value = float(match.group(1).replace(",", "."))
    if (match.group(2) or "km").lower() == "m":
        value /= 1000
    if value == 0:
        return ZERO_DISTANCE_KM
    if value > MAX_DISTANCE_KM:
        errors["distance"] = f"{MAX_DISTANCE_KM:g} km au plus"
    return value


def _flag(raw: str | None, name: str, errors: dict[str, str]) -> bool | None:
    if raw is None:
        return None
    word = raw.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    errors[name] = "true, yes ou 1 (ou false, no ou 0) attendu"
    return None


def _bounds(params: MultiDict[str], name: str, errors: dict[str, str]) -> tuple[Bound, ...]:
    raw = params.getall(name, [])
    if len(raw) > 2:
        errors[name] = "deux bornes au plus (gt: et lt:)"
        return ()
    bounds: list[Bound] = []
    for item in raw:
        value = item.strip()
        operation, text = value[:3].lower(), value[3:]
        if operation not in ("gt:", "lt:"):
            errors[name] = "gt: ou lt: suivi d'une date ISO 8601 attendu (par exemple gt:2025-01-31)"
            return ()
        try:
            parsed = parse_iso(text)
        except InvalidDate as error:
            errors[name] = str(error)
            return ()
        instant = parsed if isinstance(parsed, datetime) else datetime.combine(parsed, time(), UTC)
        bounds.append(Bound(above=operation == "gt:", instant=instant.astimezone(UTC)))
    return tuple(bounds)


def _domains(values: list[str], errors: dict[str, str]) -> frozenset[str] | None:
    if not values:
        return None
    chosen: set[str] = set()
    for value in values:
        if value in DOMAINS:
            chosen.add(value)
        elif value in domains.ENGAGEMENT_DOMAINS:
            # The missions shown under that slug: a filter and the `domain` it returns agree.
            chosen.update(ours for ours in DOMAINS if domains.to_engagement(ours) == value)
        else:
            errors["domain"] = f"domaine inconnu : « {value[:40]} »"
    return frozenset(chosen)


def _activities(values: list[str], errors: dict[str, str]) -> tuple[str, ...]:
    chosen: list[str] = []
    for value in values:
        ours = domains.activities_to_ours([value])
        if not ours:
            errors["activity"] = f"activité inconnue : « {value[:40]} »"
        chosen.extend(slug for slug in ours if slug not in chosen)
    return tuple(chosen)


def _departments(names: list[str], codes: list[str], places: Geography,
                 errors: dict[str, str]) -> frozenset[str] | None:
    if not names and not codes:
        return None
    chosen: set[str] = set()
    for name in names:
        code = places.by_name.get(fold(name))
        if code is None:
            errors["departmentName"] = f"département inconnu : « {name[:40]} »"
        else:
            chosen.add(code)
    for code in codes:
        if code.upper() not in places.departments:
            errors["departmentCode"] = f"code de département inconnu : « {code[:10]} »"
        else:
            chosen.add(code.upper())
    if names and codes:
        errors.setdefault("departmentCode", "departmentName ou departmentCode, pas les deux")
    return frozenset(chosen)


def parse(params: MultiDict[str], places: Geography) -> MissionQuery:
    """The query, or a 400 INVALID_QUERY naming every wrong parameter (in French). Unknown parameters are ignored."""
    errors: dict[str, str] = {}
    lists = {name: _values(params, name, errors) for name in LIST_PARAMETERS}
    scalars = {name: _scalar(params, name, errors) for name in SCALAR_PARAMETERS}
    types = lists["type"]
    if unknown := [value for value in types if value not in MISSION_TYPES]:
        errors["type"] = f"type inconnu : « {unknown[0][:40]} » ({', '.join(MISSION_TYPES)})"
    if unknown := [value for value in lists["remote"] if value not in REMOTE_VALUES]:
        errors["remote"] = f"valeur inconnue : « {unknown[0][:40]} » (no, possible, full ou local)"
    # Our missions are on site (no) or fully remote (full): `possible` and `local` match none.
    remote = frozenset({"no": False, "full": True}[value] for value in lists["remote"] if value in ("no", "full"))
    keywords = scalars["keywords"]
    lat = _degrees(scalars["lat"], "lat", 90, errors)
    lon = _degrees(scalars["lon"], "lon", 180, errors)
    if (scalars["lat"] is None) != (scalars["lon"] is None):
        errors.setdefault("lat", "lat et lon vont ensemble")
    query = MissionQuery(
        limit=_integer(scalars["limit"], "limit", 0, MAX_LIMIT, DEFAULT_LIMIT, errors),
        skip=_integer(scalars["skip"], "skip", 0, MAX_SKIP, 0, errors),
        domains=_domains(lists["domain"], errors),
        activities=_activities(lists["activity"], errors),
        benevolat=("benevolat" in types) if types else None,
        remote=remote if lists["remote"] else None,
        cities=tuple(lists["city"]),
        departments=_departments(lists["departmentName"], lists["departmentCode"], places, errors),
        open_to_minors=_flag(scalars["openToMinors"], "openToMinors", errors),
        keywords=" ".join(keywords.split()) if keywords else None,
        created_at=_bounds(params, "createdAt", errors),
        start_at=_bounds(params, "startAt", errors),
        lat=lat,
        lon=lon,
        distance_km=_distance_km(scalars["distance"], errors),
    )
    if errors:
        detail = " ; ".join(f"{name} : {message}" for name, message in errors.items())
        raise PartnerApiError(400, INVALID, f"Paramètres invalides — {detail}.")
    return query


# SQL: each statement is built and compiled once per shape (which filters are present, and the caller's diffusion
# rules), with the values as parameters; a request then costs asyncpg one prepared statement and its rows.

MIDNIGHT = time(tzinfo=UTC)
_compiled: dict[Any, details.Compiled] = {}
MAX_COMPILED = 2000


def _value(name: str, kind: Any) -> Any:
    return bindparam(name, None, type_=kind)  # a value given at execution, by `fetch`


def _great_circle_km() -> ColumnElement[float]:
    """Haversine in km (as app/missions/search.py's), on the parameters phi, lam (radians) and cos_phi."""
    half_dlat = (func.radians(MissionAddress.latitude) - _value("phi", Float())) / 2
    half_dlon = (func.radians(MissionAddress.longitude) - _value("lam", Float())) / 2
    cos_lat = func.cos(func.radians(MissionAddress.latitude))
    h = func.power(func.sin(half_dlat), 2) + _value("cos_phi", Float()) * cos_lat * func.power(func.sin(half_dlon), 2)
    return 2 * EARTH_RADIUS_KM * func.asin(func.least(1.0, func.sqrt(h)))


def _box() -> ColumnElement[bool]:
    """The points of a box around the circle (parameters west, south, east, north), from the GiST index."""
    corner = func.box(func.point(_value("west", Float()), _value("south", Float())),
                      func.point(_value("east", Float()), _value("north", Float())))
    return func.point(MissionAddress.longitude, MissionAddress.latitude).op("<@")(corner)


def _geo_values(latitude: float, longitude: float, radius_km: float) -> dict[str, float]:
    """The box is never narrower than the circle; near a pole or across the antimeridian it spans every longitude."""
    dlat = radius_km / KM_PER_DEGREE
    west, east = -180.0, 180.0
    if abs(latitude) + dlat < 89:
        dlon = dlat / math.cos(math.radians(abs(latitude) + dlat))
        if longitude - dlon >= -180 and longitude + dlon <= 180:
            west, east = longitude - dlon, longitude + dlon
    phi = math.radians(latitude)
    return {"phi": phi, "lam": math.radians(longitude), "cos_phi": math.cos(phi), "radius": radius_km,
            "west": west, "east": east, "south": max(-90.0, latitude - dlat), "north": min(90.0, latitude + dlat)}


def _address_conditions(query: MissionQuery) -> list[ColumnElement[bool]]:
    """On one address (as API Engagement's `addresses.some`): city and department."""
    conditions: list[ColumnElement[bool]] = []
    if query.cities:
        names = select(func.lower(func.unaccent(func.unnest(_value("cities", TEXTS))))).scalar_subquery()
        conditions.append(MissionAddress.commune_code.in_(
            select(Commune.code).where(func.lower(func.unaccent(Commune.name)).in_(names))
        ))
    if query.departments is not None:
        department = select(Commune.department_code).where(Commune.code == MissionAddress.commune_code)
        conditions.append(department.scalar_subquery() == any_(_value("departments", TEXTS)))
    return conditions


def _start_bound(index: int, bound: Bound) -> ColumnElement[bool]:
    """A mission's start day counts as midnight UTC, as its `startAt` is written."""
    day = _value(f"start_{index}", Date())
    if bound.above:
        return Mission.start_date > day
    return Mission.start_date < day if bound.instant.timetz() == MIDNIGHT else Mission.start_date <= day


def conditions(query: MissionQuery, partner: PartnerContext) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [shared_with(partner)]
    if query.domains is not None:
        found.append(Mission.domain == any_(_value("domains", TEXTS)))
    if query.activities:
        found.append(Mission.activities.op("&&")(_value("activities", ACTIVITY_SLUGS)))  # the GIN index
    if query.benevolat is False:
        found.append(false())
    if query.remote is not None:
        found.append(Mission.remote == any_(_value("remote", FLAGS)))
    if query.open_to_minors is not None:
        found.append(Mission.open_to_minors == _value("minors", Boolean()))
    if query.keywords:
        found.append(Mission.search_vector.op("@@")(_words(_value("keywords", Text()))))  # the GIN index
    for index, bound in enumerate(query.created_at):
        instant = _value(f"created_{index}", DateTime(timezone=True))
        found.append(Mission.created_at > instant if bound.above else Mission.created_at < instant)
    found.extend(_start_bound(index, bound) for index, bound in enumerate(query.start_at))
    return found


def _values_of(query: MissionQuery) -> dict[str, Any]:
    values: dict[str, Any] = {"limit": query.limit, "skip": query.skip}
    if query.lat is not None and query.lon is not None:
        values.update(_geo_values(query.lat, query.lon, query.distance_km))
    if query.domains is not None:
        values["domains"] = sorted(query.domains)
    if query.activities:
        values["activities"] = list(query.activities)
    if query.remote is not None:
        values["remote"] = sorted(query.remote)
    if query.open_to_minors is not None:
        values["minors"] = query.open_to_minors
    if query.keywords:
        values["keywords"] = query.keywords
    if query.cities:
        values["cities"] = list(query.cities)
    if query.departments is not None:
        values["departments"] = sorted(query.departments)
    values.update({f"created_{index}": bound.instant for index, bound in enumerate(query.created_at)})
    values.update({f"start_{index}": bound.instant.date() for index, bound in enumerate(query.start_at)})
    return values


def _shape(query: MissionQuery) -> tuple[Any, ...]:
    return (_located(query), query.domains is not None, bool(query.activities), query.benevolat is False,
            query.remote is not None, query.open_to_minors is not None, bool(query.keywords), bool(query.cities),
            query.departments is not None, tuple(bound.above for bound in query.created_at),
            tuple((bound.above, bound.instant.timetz() == MIDNIGHT) for bound in query.start_at))


def _located(query: MissionQuery) -> bool:
    return query.lat is not None and query.lon is not None


def _hits(query: MissionQuery, partner: PartnerContext) -> Select[Any]:
    """The page's mission ids, their distance and the total, in the page's order."""
    found = conditions(query, partner)
    addressed = _address_conditions(query)
    base = select(Mission.id.label("id")).join(Organisation, Organisation.id == Mission.organisation_id)
    if _located(query):
        km = func.min(_great_circle_km())
        near = (
            select(MissionAddress.mission_id.label("mission_id"), km.label("km"))
            .where(_box(), *addressed)
            .group_by(MissionAddress.mission_id)
            .having(km <= _value("radius", Float()))
            .subquery("near")
        )
        base = base.join(near, near.c.mission_id == Mission.id).add_columns(near.c.km.label("km"))
        order: list[Any] = [near.c.km, Mission.id]
    else:
        if addressed:
            found.append(select(MissionAddress.id).where(MissionAddress.mission_id == Mission.id, *addressed).exists())
        base = base.add_columns(literal_column("NULL::float8").label("km"))
        order = [Mission.start_date.desc().nulls_last(), Mission.id]
    return (base.add_columns(func.count().over().label("total")).where(*found).order_by(*order)
            .limit(_value("limit", Integer())).offset(_value("skip", Integer())))


def list_statement(query: MissionQuery, partner: PartnerContext) -> Select[Any]:
    hits = _hits(query, partner).subquery("hits")
    order = [hits.c.km, Mission.id] if _located(query) else [Mission.start_date.desc().nulls_last(), Mission.id]
    return with_details(hits).add_columns(hits.c.total, hits.c.km).order_by(*order)


def total_statement(query: MissionQuery, partner: PartnerContext) -> Select[Any]:
    """The count alone, for a page past the last match (it has no row to carry the total)."""
    counted = _hits(query, partner).limit(None).offset(None).order_by(None).subquery("counted")
    return select(func.count()).select_from(counted)


def one_statement(partner: PartnerContext) -> Select[Any]:
    ids = (select(Mission.id.label("id")).join(Organisation, Organisation.id == Mission.organisation_id)
           .where(Mission.id == _value("mission_id", BigInteger()), shared_with(partner)).subquery("one"))
    return with_details(ids)


def shared_statement(partner: PartnerContext) -> Select[Any]:
    """Every mission diffused to the partner (the XML export), by id."""
    ids = (select(Mission.id.label("id")).join(Organisation, Organisation.id == Mission.organisation_id)
           .where(shared_with(partner)).subquery("shared"))
    return with_details(ids).order_by(Mission.id)


def _compile(key: Any, build: Callable[[], Select[Any]]) -> details.Compiled:
    found = _compiled.get(key)
    if found is None:
        found = details.compiled(build())
        if len(_compiled) >= MAX_COMPILED:
            _compiled.clear()  # partners' rules changed many times: start again rather than grow
        _compiled[key] = found
    return found


async def fetch(engine: AsyncEngine | Nearby, key: Any, build: Callable[[], Select[Any]],
                values: dict[str, Any]) -> list[Record]:
    """The rows of a statement compiled once per `key`, on the driver's connection (its prepared statement cache)."""
    sql, names, defaults = _compile(key, build)
    params = {**defaults, **values}
    if isinstance(engine, Nearby):
        return await engine.fetch(sql, *(params[name] for name in names))
    # The driver's own call opens no transaction (asyncpg autocommits): no BEGIN/ROLLBACK around one read.
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        rows: list[Record] = await driver.fetch(sql, *(params[name] for name in names))
        return rows


def around_of(query: MissionQuery) -> Around | None:
    """The query in the snapshot's terms, or None when only SQL can answer it."""
    if query.lat is None or query.lon is None or query.keywords or query.activities or query.benevolat is False:
        return None
    cities = tuple(fold_city(city) for city in query.cities)
    if None in cities:
        return None
    created_above = max((microseconds(b.instant) for b in query.created_at if b.above), default=None)
    created_below = min((microseconds(b.instant) for b in query.created_at if not b.above), default=None)
    start_after = max((b.instant.date().toordinal() for b in query.start_at if b.above), default=None)
    start_before = min((b.instant.date().toordinal() for b in query.start_at
                        if not b.above and b.instant.timetz() == MIDNIGHT), default=None)
    start_until = min((b.instant.date().toordinal() for b in query.start_at
                       if not b.above and b.instant.timetz() != MIDNIGHT), default=None)
    return Around(lat=query.lat, lon=query.lon, radius_km=query.distance_km, skip=query.skip, limit=query.limit,
                  domains=query.domains, remote=query.remote, open_to_minors=query.open_to_minors,
                  cities=tuple(city for city in cities if city is not None), departments=query.departments,
                  created_above=created_above, created_below=created_below, start_after=start_after,
                  start_before=start_before, start_until=start_until)


async def find_nearby(nearby: Nearby, asked: Around, partner: PartnerContext,
                      render: Rendering) -> tuple[int, list[bytes]]:
    """From the snapshot alone, up to about a second behind PostgreSQL: the page's missions are the snapshot's
    fragments, with the caller's links."""
    snapshot = await nearby.snapshot()
    total, page = around(snapshot, asked, partner)
    fragments = snapshot.fragments
    return total, [render.joined(key, fragments[key]) for key in page if key in fragments]


async def find(engine: AsyncEngine, query: MissionQuery, partner: PartnerContext,
               render: Rendering, nearby: Nearby | None = None) -> tuple[int, list[bytes]]:
    """The total and the page's missions, each encoded as JSON (`MissionV0`)."""
    if nearby is not None and (asked := around_of(query)) is not None:
        return await find_nearby(nearby, asked, partner, render)
    shape = _shape(query)
    values = _values_of(query)
    rows = await fetch(nearby or engine, ("list", shape, partner), lambda: list_statement(query, partner), values)
    if rows:
        return int(rows[0]["total"]), [render.encoded(row) for row in rows]
    if query.skip == 0 and query.limit > 0:
        return 0, []
    counted = await fetch(nearby or engine, ("total", shape, partner), lambda: total_statement(query, partner),
                          values)
    return int(counted[0][0]), []


async def find_one(engine: AsyncEngine, mission_id: int, partner: PartnerContext,
                   render: Rendering) -> MissionV0 | None:
    rows = await fetch(engine, ("one", partner), lambda: one_statement(partner), {"mission_id": mission_id})
    return render.mission(rows[0]) if rows else None


async def prepared_geography(engine: AsyncEngine) -> Geography:
    if (known := details.known_geography()) is not None:
        return known
    async with engine.connect() as connection:
        return await geography(connection)


