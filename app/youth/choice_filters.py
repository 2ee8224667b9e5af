"""The filters of `/snu/missions` (distance from home, remote missions, domain, month, page), read from the query
string with a fallback to the default for any value out of its list, and the links back to them: the pagination
keeps every filter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from app.missions import search_links
from app.reference import DOMAINS

RADII_KM = (5, 10, 20, 50, 100)
DEFAULT_RADIUS_KM = 20
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class OfferFilters:
    radius_km: int = DEFAULT_RADIUS_KM
    remote: bool = False  # also the missions done remotely, wherever they are
    domain: str | None = None  # a key of app.reference.DOMAINS
    month: date | None = None  # the first day of a month: the offers running during it
    page: int = 1


def months_of(start: date, end: date) -> list[date]:
    """The first day of each month from `start`'s to `end`'s (at most 36)."""
    months: list[date] = []
    day = start.replace(day=1)
    while day <= end and len(months) < 36:
        months.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return months


def parse_filters(params: Mapping[str, str], months: list[date]) -> OfferFilters:
    """From the query string; a value out of its list, malformed or hostile falls back to its default."""
    def text(key: str) -> str:
        value = str(params.get(key) or "").strip()
        return value if len(value) <= 20 and value.isprintable() else ""

    radius = text("distance")
    radius_km = int(radius) if radius.isascii() and radius.isdecimal() and int(radius) in RADII_KM \
        else DEFAULT_RADIUS_KM
    domain = text("domaine")
    month: date | None = None
    raw_month = text("mois")
    try:
        chosen = date.fromisoformat(f"{raw_month}-01") if raw_month.isascii() and len(raw_month) == 7 else None
    except ValueError:
        chosen = None
    if chosen in months:
        month = chosen
    page = text("page")
    return OfferFilters(
        radius_km=radius_km,
        remote=text("a_distance").lower() in ("1", "on", "oui", "true"),
        domain=domain if domain in DOMAINS else None,
        month=month,
        page=int(page) if page.isascii() and page.isdecimal() and 1 <= int(page) <= MAX_PAGE else 1,
    )


def filter_params(filters: OfferFilters, page: int | None = None) -> dict[str, str]:
    """The query-string parameters that parse back to `filters` (defaults left out)."""
    params: dict[str, str] = {}
    if filters.radius_km != DEFAULT_RADIUS_KM:
        params["distance"] = str(filters.radius_km)
    if filters.remote:
        params["a_distance"] = "1"
    if filters.domain:
        params["domaine"] = filters.domain
    if filters.month:
        params["mois"] = filters.month.strftime("%Y-%m")
    number = filters.page if page is None else page
    if number > 1:
        params["page"] = str(number)
    return params


def filter_href(path: str, filters: OfferFilters, page: int) -> str:
    params = filter_params(filters, page)
    return f"{path}?{urlencode(params)}" if params else path


def pagination(path: str, filters: OfferFilters, pages: int) -> search_links.Pagination:
    """As the search's pagination (app/missions/search_links.py): every link keeps the filters."""
    last = max(1, min(pages, MAX_PAGE))
    current = filters.page
    return search_links.Pagination(
        previous=filter_href(path, filters, min(current - 1, last)) if current > 1 else None,
        next=filter_href(path, filters, current + 1) if current < last else None,
        pages=[search_links.PageLink(None, None) if number is None else
               search_links.PageLink(number, filter_href(path, filters, number), number == current)
               for number in search_links.numbers(min(current, last), last)] if last > 1 else [],
        last=filter_href(path, filters, last),
    )
