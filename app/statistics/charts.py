"""Monthly figures as pictures the server draws: the geometry of an inline SVG bar or line chart, computed here so
that the template only writes it out (templates/statistiques.html). No JavaScript: the page shows the same
figures in a table beside each chart."""

from __future__ import annotations

import math

import msgspec

from app.formats import integer
from app.statistics.schemas import Month

WIDTH, HEIGHT = 400, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 14, 38  # room for the axis labels
TICKS = 4
LABEL_EVERY = 6  # months between two labels on the time axis, counted back from the current month
SHORT_NAMES = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    y: float
    label: str


class AxisLabel(msgspec.Struct, frozen=True, kw_only=True):
    x: float
    month: str  # "janv."
    year: str
    anchor: str  # SVG text-anchor


class Mark(msgspec.Struct, frozen=True, kw_only=True):
    """A bar (x, y: its top-left corner) or a point of the line (x, y: its centre)."""

    x: float
    y: float
    width: float
    height: float
    text: str  # "mars 2026 : 12"


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # "bar" or "line"
    title: str
    description: str  # what the picture shows, in words (its aria-label)
    width: int
    height: int
    left: float
    right: float
    top: float
    baseline: float
    ticks: list[Tick]
    labels: list[AxisLabel]
    marks: list[Mark]

    @property
    def points(self) -> str:
        """The line through the marks, for a polyline."""
        return " ".join(f"{mark.x:.1f},{mark.y:.1f}" for mark in self.marks)


def nice_step(largest: int, ticks: int = TICKS) -> int:
    """The gap between two grid lines: 1, 2 or 5 times a power of ten (a whole number), so that `ticks` of them
    reach `largest`."""
    if largest <= ticks:
        return 1
    raw = largest / ticks
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _short(month: Month) -> tuple[str, str]:
    year, _, number = month.month.partition("-")
    return SHORT_NAMES[int(number) - 1], year


def monthly(months: list[Month], *, kind: str, title: str, unit: str) -> Chart:
    """`kind` "bar": each month's new count; "line": the cumulative count at the end of each month."""
    values = [month.new if kind == "bar" else month.cumulative for month in months]
    step = nice_step(max(values, default=0))
    top_value = step * TICKS
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = float(HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT - RIGHT) / max(len(months), 1)

    def y_of(value: int) -> float:
        return round(baseline - value / top_value * plot_height, 1)

    marks = []
    for index, (month, value) in enumerate(zip(months, values, strict=True)):
        text = f"{month.label} : {integer(value)}"
        if kind == "bar":
            x = LEFT + index * slot + slot * 0.15
            marks.append(Mark(x=round(x, 1), y=y_of(value), width=round(slot * 0.7, 1),
                              height=round(baseline - y_of(value), 1), text=text))
        else:
            marks.append(Mark(x=round(LEFT + (index + 0.5) * slot, 1), y=y_of(value), width=0, height=0, text=text))
    labels = []
    for index in range(len(months) - 1, -1, -LABEL_EVERY):
        name, year = _short(months[index])
        last = index == len(months) - 1
        x = WIDTH - RIGHT if last else LEFT + (index + 0.5) * slot
        labels.append(AxisLabel(x=round(x, 1), month=name, year=year, anchor="end" if last else "middle"))
    ticks = [Tick(y=y_of(step * i), label=integer(step * i)) for i in range(TICKS + 1)]
    return Chart(kind=kind, title=title, description=_describe(months, values, kind=kind, title=title, unit=unit),
                 width=WIDTH, height=HEIGHT, left=LEFT, right=WIDTH - RIGHT, top=TOP, baseline=baseline,
                 ticks=ticks, labels=labels, marks=marks)


def _describe(months: list[Month], values: list[int], *, kind: str, title: str, unit: str) -> str:
    if not months:
        return f"{title} : aucune donnée."
    span = f"de {months[0].label} à {months[-1].label}"
    if kind == "line":
        return (f"{title}, {span} : {integer(values[0])} fin {months[0].label}, "
                f"{integer(values[-1])} fin {months[-1].label}. Les chiffres sont dans le tableau qui suit.")
    most = max(range(len(values)), key=lambda i: (values[i], i))
    return (f"{title}, {span} : {integer(sum(values))} {unit} en tout, au plus {integer(values[most])} "
            f"({months[most].label}), {integer(values[-1])} en {months[-1].label}. "
            "Les chiffres sont dans le tableau qui suit.")
