"""French display formats: Paris time whatever the stored zone (summer and winter), numbers with a decimal comma and
narrow no-break spaces between thousands, distances that say something close by."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from jinja2 import Environment

from app import formats


def test_times_are_shown_in_paris_time_in_winter_and_in_summer() -> None:
    assert formats.when(datetime(2026, 1, 15, 23, 30, tzinfo=UTC)) == "16/01/2026 à 00:30"
    assert formats.when(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "time") == "14:00"
    assert formats.when(datetime(2026, 7, 1, 12, 0), "short") == "01/07 14:00"  # naive: UTC, as stored
    assert formats.when(datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC), "csv") == "2026-03-29 01:59:59"
    assert formats.when(datetime(2026, 3, 29, 1, 0, 0, tzinfo=UTC), "csv") == "2026-03-29 03:00:00"  # DST starts
    assert formats.when(datetime(2026, 7, 1, 9, 0, tzinfo=timezone(timedelta(hours=-4))), "time") == "15:00"
    assert formats.when(date(2026, 12, 24)) == "24/12/2026" and formats.when(None) == ""


def test_numbers_read_the_french_way() -> None:
    assert formats.integer(1234567) == "1\u202f234\u202f567" and formats.integer(999) == "999"
    assert formats.decimal(0.8) == "0,8" and formats.decimal(1234.567, 2) == "1\u202f234,57"
    assert formats.decimal(3, 0) == "3"


def test_distances_say_how_far_and_never_zero() -> None:
    assert formats.distance(0.0) == "moins de 100\u00a0m" and formats.distance(0.04) == "moins de 100\u00a0m"
    assert formats.distance(0.8) == "0,8\u00a0km" and formats.distance(9.96) == "10\u00a0km"
    assert formats.distance(12.34) == "12\u00a0km"


def test_the_filters_are_registered_for_the_templates() -> None:
    environment = Environment(autoescape=True)
    formats.register(environment)
    page = environment.from_string("{{ t | when('date') }} · {{ n | integer }} · {{ d | distance }}")
    assert page.render(t=datetime(2026, 12, 31, 23, 30, tzinfo=UTC), n=12345, d=0.8) == \
        "01/01/2027 · 12\u202f345 · 0,8\u00a0km"
