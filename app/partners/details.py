"""What partners read of a mission: its columns and addresses (`with_details`), joined onto a set of ids; and the
department and region names their addresses are written with (`Geography`). Shared by the SQL path of the read API
(read.py), the XML export and the snapshot's pre-rendered missions (nearby.py)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from asyncpg import Record
from sqlalchemy import BigInteger, ColumnElement, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql.expression import ClauseElement

from app.geo.models import Commune, Department, Region
from app.missions.models import Mission, MissionAddress
from app.organisations.models import Organisation
from app.partners.models import Partner
from app.partners.placing import fold

DIALECT = asyncpg_dialect()

Compiled = tuple[str, tuple[str, ...], dict[str, Any]]
Fetch = Callable[..., Awaitable[list[Record]]]  # (sql, *positional values) → rows


def compiled(statement: ClauseElement) -> Compiled:
    """The statement as asyncpg runs it: its SQL, its parameters' names in order, and their default values."""
    done: Any = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})  # an SQLCompiler
    return done.string, tuple(done.positiontup or ()), dict(done.construct_params(_check=False))


def _addresses_json() -> ColumnElement[Any]:
    row = func.json_build_array(MissionAddress.address_line, MissionAddress.postal_code, Commune.name,
                                Commune.department_code, MissionAddress.latitude, MissionAddress.longitude)
    # Left as JSON text: decoded by msgspec (wire.ADDRESSES), faster than the driver's json.loads.
    return (
        select(func.json_agg(aggregate_order_by(row, MissionAddress.id)))
        .join(Commune, Commune.code == MissionAddress.commune_code)
        .where(MissionAddress.mission_id == Mission.id)
        .scalar_subquery()
    )


MISSION_COLUMNS = (
    Mission.id, Mission.client_id, Mission.partner_id, Mission.title, Mission.description, Mission.domain,
    Mission.activities, Mission.remote, Mission.open_to_minors, Mission.places, Mission.schedule,
    Mission.start_date, Mission.end_date, Mission.created_at, Mission.updated_at, Mission.organisation_id,
    Organisation.name.label("organisation_name"), Organisation.rna, Organisation.siret, Organisation.partner_key,
    Partner.name.label("partner_name"),
)


def with_details(ids: Any) -> Select[Any]:
    """Names and addresses joined onto the given rows only."""
    columns: list[Any] = [*MISSION_COLUMNS, _addresses_json().label("addresses")]
    return (select(*columns)
            .select_from(ids).join(Mission, Mission.id == ids.c.id)
            .join(Organisation, Organisation.id == Mission.organisation_id)
            .outerjoin(Partner, Partner.id == Mission.partner_id))


@functools.cache
def of_ids_sql() -> str:
    """The details of the missions whose ids are the only parameter, whatever their status."""
    ids = select(func.unnest(bindparam("ids", None, type_=ARRAY(BigInteger()))).label("id")).subquery("ids")
    return compiled(with_details(ids))[0]


@dataclass(frozen=True, slots=True)
class Geography:
    """Department and region names, read once per process: they change only with a new reference dataset."""

    departments: Mapping[str, tuple[str, str | None]]  # code → (name, region name)
    by_name: dict[str, str] = field(default_factory=dict)  # folded name → code


GEOGRAPHY = select(Department.code, Department.name, Region.name.label("region")).outerjoin(
    Region, Region.code == Department.region_code)
_geography: Geography | None = None


def known_geography() -> Geography | None:
    return _geography


def geography_of(rows: list[Any]) -> Geography:
    global _geography
    if _geography is None:
        departments: dict[str, tuple[str, str | None]] = {code: (name, region) for code, name, region in rows}
        _geography = Geography(departments, {fold(name): code for code, (name, _) in departments.items()})
    return _geography


async def fetch_geography(fetch: Fetch) -> Geography:
    """The process's copy, read through `fetch` the first time."""
    if _geography is not None:
        return _geography
    sql, _, _ = compiled(GEOGRAPHY)
    return geography_of([tuple(row) for row in await fetch(sql)])
