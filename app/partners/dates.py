"""Strict ISO 8601 dates for what partners send: `YYYY-MM-DD`, or a date-time with seconds and an offset
(`2025-01-31T09:00:00Z`, `2025-01-31T09:00:00.250+02:00`). Anything else is refused with its reason, never guessed:
`01/02/2025` is the 1st of February or the 2nd of January depending on the sender, and a date-time without an offset
has a time zone we would have to guess. A date-time becomes its day in France."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
FIRST_YEAR, LAST_YEAR = 2000, 2100
MAX_LENGTH = 40
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
WITHOUT_OFFSET = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?")
EXPECTED = "attendu : AAAA-MM-JJ, ou AAAA-MM-JJThh:mm:ss suivi de Z ou d'un décalage ±hh:mm"


class InvalidDate(ValueError):
    """A date refused, with the reason in French (`str(error)`)."""


def parse_iso(text: str) -> date | datetime:
    """A `date` for `YYYY-MM-DD`, an aware `datetime` for a date-time with its offset; else `InvalidDate`."""
    if not isinstance(text, str):
        raise InvalidDate(f"Date invalide ({EXPECTED}).")
    value = text.strip()
    shown = _shown(value)
    if len(value) > MAX_LENGTH:
        raise InvalidDate(f"Date invalide : trop longue ({EXPECTED}).")
    if match := DATE.fullmatch(value):
        return _date(shown, *map(int, match.groups()))
    if match := DATE_TIME.fullmatch(value):
        year, month, day, hour, minute, second = map(int, match.groups()[:6])
        _date(shown, year, month, day)
        if hour > 23 or minute > 59 or second > 59:
            raise InvalidDate(f"Heure invalide : « {shown} » n'existe pas.")
        if match.group(8):
            offset = UTC
        else:
            hours, minutes = int(match.group(10)), int(match.group(11))
            if hours > 14 or minutes > 59:
                raise InvalidDate(f"Décalage horaire invalide dans « {shown} ».")
            sign = -1 if match.group(9) == "-" else 1
            offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
        fraction = match.group(7) or "0"
        microsecond = int(fraction[:6].ljust(6, "0"))
        return datetime(year, month, day, hour, minute, second, microsecond, tzinfo=offset)
    if WITHOUT_OFFSET.fullmatch(value):
        raise InvalidDate(f"Date ambiguë : « {shown} » n'indique pas son fuseau horaire (ajoutez Z ou ±hh:mm, "
                          "et les secondes).")
    raise InvalidDate(f"Date invalide : « {shown} » ({EXPECTED}).")


def to_day(text: str) -> date:
    """The day in France of what `parse_iso` accepts."""
    value = parse_iso(text)
    return value.astimezone(PARIS).date() if isinstance(value, datetime) else value


def _date(shown: str, year: int, month: int, day: int) -> date:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InvalidDate(f"Date invalide : « {shown} » (l'année doit être entre {FIRST_YEAR} et {LAST_YEAR}).")
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidDate(f"Date invalide : « {shown} » n'existe pas.") from None


def _shown(value: str) -> str:
    # Quoted back to the partner: printable characters only, and short.
    return "".join(char if char.isprintable() else "?" for char in value[:MAX_LENGTH])
