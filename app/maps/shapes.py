"""The committed outlines of the departments (`data/departments.json`, written by `python -m app.maps.build`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import msgspec

DATA_FILE = Path(__file__).resolve().parent / "data" / "departments.json"
# The outlines as an SVG file the pages reference (`<use href="…#d75">`), so each page carries no path data and
# browsers cache the outlines once.
SPRITE_FILE = Path(__file__).resolve().parents[2] / "templates" / "static" / "maps" / "departements.svg"


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """The inset box of an overseas department, in map units."""

    code: str
    x: float
    y: float
    width: float
    height: float


class Shape(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    path: str  # SVG path data, in map units


class MapData(msgspec.Struct, frozen=True, kw_only=True):
    sources: list[str]
    width: float
    height: float
    insets: list[Frame]
    shapes: list[Shape]  # in department order: 01…19, 2A, 2B, 21…95, 971…976


def sprite(data: MapData) -> bytes:
    """The SVG file of every outline, `d` + code as id, with no fill or stroke: the `<use>` that shows it sets them."""
    lines = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {data.width:g} {data.height:g}">']
    lines.append('<g id="france">')  # the whole map in one reference, under the departments a page draws apart
    lines += [f'<path id="d{shape.code}" d="{shape.path}"/>' for shape in data.shapes]
    return ("\n".join([*lines, "</g>", "</svg>"]) + "\n").encode()


@cache
def map_data() -> MapData:
    """Read once per process: a few dozen kilobytes shared by every map drawn."""
    return msgspec.json.decode(DATA_FILE.read_bytes(), type=MapData)


def department_codes() -> list[str]:
    """Every department the map draws, in order."""
    return [shape.code for shape in map_data().shapes]
