"""Age rules: a mission not open to minors takes nobody under 18 on the day it starts (or today, when it has
started already or has no start date). Volunteers sign up at 16 or older. Days are French days (Europe/Paris),
whatever the server's time zone."""

from __future__ import annotations

from datetime import date, datetime

from app.formats import PARIS


def today() -> date:
    """Today in France: the day every age rule counts from (date.today() is the server's day, maybe not France's)."""
    return datetime.now(PARIS).date()


def adult_on(birth_date: date) -> date:
    """The 18th birthday; born on 29 February, one is of age on 1 March of a year without one."""
    try:
        return birth_date.replace(year=birth_date.year + 18)
    except ValueError:
        return date(birth_date.year + 18, 3, 1)


def checked_on(start_date: date | None, today: date) -> date:
    """The day a mission closed to minors checks a person's age on."""
    return today if start_date is None or start_date < today else start_date


def of_age(adult_from: date | None, day: date) -> bool:
    """Unknown (None) counts as under age: the rule protects minors."""
    return adult_from is not None and adult_from <= day


def born_by(day: date) -> date:
    """The latest birth date of someone of age on `day` (the same rule as `adult_on`, for a query)."""
    try:
        return day.replace(year=day.year - 18)
    except ValueError:  # 29 February: someone born on 29 February 18 years before is of age on 1 March only
        return date(day.year - 18, 2, 28)
