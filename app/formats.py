"""How times and figures read on a French page, in an e-mail or in a CSV: times in Paris time whatever the zone
they were stored in, numbers with a decimal comma and a (narrow, no-break) space between thousands. Registered as
Jinja filters by `register`, and called directly by the code that writes e-mails and exports."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment

PARIS = ZoneInfo("Europe/Paris")
THOUSANDS = "\u202f"  # narrow no-break space, as the French typography wants
STYLES = {
    "date": "%d/%m/%Y",
    "datetime": "%d/%m/%Y à %H:%M",
    "datetime_seconds": "%d/%m/%Y à %H:%M:%S",
    "short": "%d/%m %H:%M",
    "time": "%H:%M",
    "time_seconds": "%H:%M:%S",
    "csv": "%Y-%m-%d %H:%M:%S",
}


def in_paris(moment: datetime) -> datetime:
    """`moment` in Paris time; a naive datetime is taken as UTC (what PostgreSQL's `timestamp` columns hold)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(PARIS)


def when(moment: datetime | date | None, style: str = "datetime") -> str:
    """`moment` as a French reader expects it, in Paris time; a plain date is shown as it is."""
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        return moment.strftime(STYLES["date"])
    return in_paris(moment).strftime(STYLES[style])


def integer(value: int | float) -> str:
    return f"{round(value):,}".replace(",", THOUSANDS)


def decimal(value: float, digits: int = 1) -> str:
    whole, _, fraction = f"{value:,.{digits}f}".partition(".")
    text = whole.replace(",", THOUSANDS)
    return f"{text},{fraction}" if fraction else text


def distance(km: float) -> str:
    """`0,8 km`, `12 km`: a tenth of a kilometre matters nearby, not across a department; closer than that, it reads
    `moins de 100 m` (a mission `à 0,0 km` is not nowhere)."""
    if km < 0.1:
        return "moins de 100\u00a0m"
    return f"{decimal(km, 1) if km < 9.95 else integer(km)}\u00a0km"


SMALL_COUNT = 10  # fewer people than this are never shown as a number: in a small commune they could be named


def headcount(value: int) -> str:
    """A count of people shown to the public: `moins de 10` under SMALL_COUNT (zero included: "0 bénévole" in a
    village says as much as "1"), else the number."""
    return f"moins de {SMALL_COUNT}" if value < SMALL_COUNT else integer(value)


def register(environment: Environment) -> None:
    environment.filters.update(when=when, integer=integer, decimal=decimal, distance=distance, headcount=headcount)
