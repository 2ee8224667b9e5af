"""Partners and API keys for tests, written straight into PostgreSQL as the admin pages would leave them."""

from __future__ import annotations

from typing import Any

import asyncpg

from app.partners.keys import new_key


async def create_partner(db: asyncpg.Connection, name: str = "Plateforme Partenaire", **fields: Any) -> int:
    columns = {"name": name, **fields}
    names = ", ".join(columns)
    placeholders = ", ".join(f"${index}" for index in range(1, len(columns) + 1))
    # Column names come from the test code, never from input.
    return int(await db.fetchval(f"INSERT INTO partners ({names}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
                                 *columns.values()))


async def create_key(db: asyncpg.Connection, partner_id: int) -> str:
    """A fresh key for the partner; returns the key itself, as the partner would send it."""
    key, digest, prefix = new_key()
    await db.execute("INSERT INTO partner_api_keys (partner_id, digest, prefix) VALUES ($1, $2, $3)",
                     partner_id, digest, prefix)
    return key
