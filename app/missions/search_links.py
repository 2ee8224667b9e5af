"""Links of the search: a normalised query back to its URL parameters, and the page numbers of the results'
pagination, every link keeping all the filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import msgspec

if TYPE_CHECKING:
    from app.missions.search import SearchQuery

WINDOW = 2  # page numbers shown either side of the current one, besides the first and the last


def params_of(query: SearchQuery) -> dict[str, str]:
    """The URL parameters that parse back to `query` (defaults left out, page included only past the first)."""
    params: dict[str, str] = {}
    for field in msgspec.structs.fields(query):
        value = getattr(query, field.name)
        if value is None or value == field.default:
            continue
        if isinstance(value, bool):
            params[field.name] = "1" if value else "0"
        elif isinstance(value, float):
            params[field.name] = f"{value:g}"
        elif isinstance(value, date):
            params[field.name] = value.isoformat()
        else:
            params[field.name] = str(value)
    return params


def href(path: str, query: SearchQuery, page: int) -> str:
    params = params_of(query)
    params.pop("page", None)
    if page > 1:
        params["page"] = str(page)
    return f"{path}?{urlencode(params)}" if params else path


@dataclass(frozen=True, slots=True)
class PageLink:
    number: int | None  # None: an ellipsis
    href: str | None
    current: bool = False


@dataclass(frozen=True, slots=True)
class Pagination:
    previous: str | None
    next: str | None
    pages: list[PageLink]
    last: str  # the last page with results, for a page asked beyond it


def numbers(current: int, last: int) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 20: the first, the last and a window around the current page; None for each gap."""
    shown = sorted({1, last, *range(max(1, current - WINDOW), min(last, current + WINDOW) + 1)})
    result: list[int | None] = []
    for number in shown:
        if result and number - (result[-1] or 0) == 2:
            result.append(number - 1)  # a gap of one page: the page itself, not an ellipsis
        elif result and number - (result[-1] or 0) > 2:
            result.append(None)
        result.append(number)
    return result


def pagination(path: str, query: SearchQuery, pages: int, max_page: int) -> Pagination:
    last = max(1, min(pages, max_page))
    current = query.page
    return Pagination(
        previous=href(path, query, min(current - 1, last)) if current > 1 else None,
        next=href(path, query, current + 1) if current < last else None,
        pages=[PageLink(None, None) if number is None else
               PageLink(number, href(path, query, number), number == current)
               for number in numbers(min(current, last), last)] if last > 1 else [],
        last=href(path, query, last),
    )
