"""Plane geometry for the map build: reading SVG and TopoJSON outlines, simplifying them, writing compact paths.

Pure functions on lists of points, so the build can be tested on small shapes without node_modules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

Point = tuple[float, float]
Ring = list[Point]

_TOKEN = re.compile(r"[MmLlZz]|-?(?:\d+\.?\d*|\.\d+)(?:e-?\d+)?")


def svg_rings(path: str) -> list[Ring]:
    """The rings of an SVG path made of move-to, line-to and close commands (absolute or relative)."""
    rings: list[Ring] = []
    ring: Ring = []
    command = "M"
    x = y = start_x = start_y = 0.0
    tokens = _TOKEN.findall(path)
    index = 0
    while index < len(tokens):
        item = tokens[index]
        if item in "MmLlZz":
            command = item
            index += 1
            if item in "Zz":
                if ring:
                    rings.append(ring)
                ring = []
                x, y = start_x, start_y
            continue
        dx, dy = float(tokens[index]), float(tokens[index + 1])
        index += 2
        relative = command.islower()
        x, y = (x + dx, y + dy) if relative else (dx, dy)
        if command in "Mm":
            if ring:
                rings.append(ring)
            ring = [(x, y)]
            start_x, start_y = x, y
            command = "l" if relative else "L"  # coordinates after a move-to are line-tos
        else:
            ring.append((x, y))
    if ring:
        rings.append(ring)
    return rings


@dataclass(frozen=True, slots=True)
class Topology:
    """The parts of a TopoJSON topology the build needs: quantized, delta-encoded arcs and their transform."""

    arcs: list[list[list[int]]]
    scale: tuple[float, float]
    translate: tuple[float, float]

    def arc(self, index: int) -> list[Point]:
        """Arc `index` in longitude/latitude; a negative index (~i) is arc i reversed."""
        x = y = 0
        points = []
        for dx, dy, *_ in self.arcs[index if index >= 0 else ~index]:
            x, y = x + dx, y + dy
            points.append((x * self.scale[0] + self.translate[0], y * self.scale[1] + self.translate[1]))
        return points if index >= 0 else points[::-1]

    def ring(self, arc_indexes: Sequence[int]) -> Ring:
        points: Ring = []
        for arc_index in arc_indexes:
            arc = self.arc(arc_index)
            points.extend(arc if not points else arc[1:])  # consecutive arcs share their end point
        return points

    def polygons(self, geometry: dict[str, object]) -> list[list[Ring]]:
        """The polygons (outer ring first, then holes) of a Polygon or MultiPolygon geometry."""
        arcs = geometry["arcs"]
        assert isinstance(arcs, list)
        parts = arcs if geometry["type"] == "MultiPolygon" else [arcs]
        return [[self.ring(ring) for ring in polygon] for polygon in parts]


def bounds(rings: Sequence[Ring]) -> tuple[float, float, float, float]:
    """(min x, min y, max x, max y) of every point."""
    xs = [x for ring in rings for x, _ in ring]
    ys = [y for ring in rings for _, y in ring]
    return min(xs), min(ys), max(xs), max(ys)


def equirectangular(rings: Sequence[Ring], latitude: float) -> list[Ring]:
    """Longitude/latitude to a plane with north up: longitudes shrunk by cos(latitude), y growing southwards."""
    shrink = math.cos(math.radians(latitude))
    return [[(lon * shrink, -lat) for lon, lat in ring] for ring in rings]


def fit(rings: Sequence[Ring], box: tuple[float, float, float, float]) -> list[Ring]:
    """`rings` scaled (same factor on both axes) and centred into box = (x, y, width, height)."""
    left, top, right, bottom = bounds(rings)
    x, y, width, height = box
    scale = min(width / (right - left), height / (bottom - top))
    dx = x + (width - (right - left) * scale) / 2 - left * scale
    dy = y + (height - (bottom - top) * scale) / 2 - top * scale
    return [[(px * scale + dx, py * scale + dy) for px, py in ring] for ring in rings]


def _distance(point: Point, start: Point, end: Point) -> float:
    (px, py), (ax, ay), (bx, by) = point, start, end
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return math.hypot(px - ax, py - ay)
    return abs((bx - ax) * (ay - py) - (ax - px) * (by - ay)) / length


def simplify(ring: Ring, tolerance: float) -> Ring:
    """Douglas–Peucker: the points of `ring` that keep it within `tolerance` of the original."""
    if len(ring) < 3:
        return list(ring)
    keep = [False] * len(ring)
    keep[0] = keep[-1] = True
    stack = [(0, len(ring) - 1)]
    while stack:
        first, last = stack.pop()
        farthest, index = 0.0, -1
        for i in range(first + 1, last):
            gap = _distance(ring[i], ring[first], ring[last])
            if gap > farthest:
                farthest, index = gap, i
        if index >= 0 and farthest > tolerance:
            keep[index] = True
            stack += [(first, index), (index, last)]
    return [point for point, kept in zip(ring, keep, strict=True) if kept]


def simplified(rings: Sequence[Ring], tolerance: float, min_size: float) -> list[Ring]:
    """Each ring simplified (a closed ring is split at its farthest point so both halves keep their shape); rings
    smaller than `min_size` across are dropped, except the largest, so every shape keeps an outline."""
    out: list[tuple[float, Ring]] = []
    for ring in rings:
        if len(ring) > 1 and ring[0] == ring[-1]:
            ring = ring[:-1]
        if len(ring) < 3:
            continue
        far = max(range(len(ring)), key=lambda i: math.hypot(ring[i][0] - ring[0][0], ring[i][1] - ring[0][1]))
        closed = [*ring, ring[0]]
        points = simplify(closed[: far + 1], tolerance)[:-1] + simplify(closed[far:], tolerance)[:-1]
        left, top, right, bottom = bounds([ring])
        out.append((max(right - left, bottom - top), points))
    out.sort(key=lambda item: -item[0])
    return [points for index, (size, points) in enumerate(out) if len(points) >= 3 and (index == 0 or size >= min_size)]


def _number(tenths: int) -> str:
    whole, rest = divmod(abs(tenths), 10)
    text = f"{whole}.{rest}" if rest else str(whole)
    return f"-{text}" if tenths < 0 else text


def path(rings: Sequence[Ring]) -> str:
    """A compact SVG path: a tenth of a unit, relative line-tos, a separator only where the sign does not give one."""
    out: list[str] = []
    for ring in rings:
        grid = [(round(x * 10), round(y * 10)) for x, y in ring]
        points = [point for index, point in enumerate(grid) if index == 0 or point != grid[index - 1]]
        if len(points) < 3:
            continue
        x, y = points[0]
        parts = [f"M{_number(x)} {_number(y)}l"]
        first = True
        for px, py in points[1:]:
            dx, dy = px - x, py - y
            for value in (dx, dy):
                text = _number(value)
                parts.append(text if first or text.startswith("-") else " " + text)
                first = False
            x, y = px, py
        parts.append("z")
        out.append("".join(parts))
    return "".join(out)
