"""A mission's addresses: each keeps its commune's town-hall point, so the search needs no join for distance."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.geo.models import Commune
from app.missions.models import MissionAddress
from app.missions.validation import MissionInvalid, ValidAddress

NO_POINT = "Cette commune n'a pas de coordonnées connues : choisissez une commune voisine."


async def points_of(session: AsyncSession, commune_codes: Sequence[str]) -> dict[str, tuple[float, float]]:
    """The communes' points; a commune without one is refused (with its form row) before anything is written."""
    points = {code: (lat, lon) for code, lat, lon in await session.execute(
        select(Commune.code, Commune.latitude, Commune.longitude).where(Commune.code.in_(commune_codes))
    ) if lat is not None and lon is not None} if commune_codes else {}
    missing = {f"postal_code_{row}": NO_POINT for row, code in enumerate(commune_codes, 1) if code not in points}
    if missing:
        raise MissionInvalid(missing)
    return points


def add_addresses(session: AsyncSession, mission_id: int, addresses: Sequence[ValidAddress],
                  points: dict[str, tuple[float, float]]) -> None:
    for address in addresses:
        latitude, longitude = points[address.commune_code]
        session.add(MissionAddress(mission_id=mission_id, latitude=latitude, longitude=longitude,
                                   **dataclasses.asdict(address)))


async def replace_addresses(session: AsyncSession, mission_id: int, addresses: Sequence[ValidAddress],
                            points: dict[str, tuple[float, float]]) -> None:
    await session.execute(delete(MissionAddress).where(MissionAddress.mission_id == mission_id))
    add_addresses(session, mission_id, addresses, points)


async def copy_addresses(session: AsyncSession, source_id: int, target_id: int) -> None:
    rows = await session.scalars(
        select(MissionAddress).where(MissionAddress.mission_id == source_id).order_by(MissionAddress.id)
    )
    for address in rows:
        session.add(MissionAddress(
            mission_id=target_id, address_line=address.address_line, postal_code=address.postal_code,
            commune_code=address.commune_code, latitude=address.latitude, longitude=address.longitude,
        ))
