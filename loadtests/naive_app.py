"""The design the queued sign-up path replaces, kept as plain as it is in the wild: validate the body with msgspec,
INSERT the row in the request, answer 202 (409 for an address already there, 503 when PostgreSQL fails).

    NAIVE_DATABASE_URL=postgresql://… granian --interface asgi loadtests.naive_app:app

Each server process has its own asyncpg pool of 10 connections. Rows go to `naive_signups`, a table with the columns,
defaults, constraints and unique indexes of `volunteers` (made by `create_table`, on the platform's PostgreSQL with
its durability settings), one `INSERT … ON CONFLICT (email_normalized) DO NOTHING` per request. Only the benchmark
serves it (loadtests/bench_designs.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from litestar import Litestar, Response, get, post

from loadtests.bare_app import Accepted, SignupBody

POOL_SIZE = 10
INSERT = (
    "INSERT INTO naive_signups (receipt, email, email_normalized, first_name, last_name, phone, birth_date,"
    " postal_code, commune_code, domains, availability, skills, emergency_slug, consent_at, accepted_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)"
    " ON CONFLICT (email_normalized) DO NOTHING RETURNING id"
)
pool: asyncpg.Pool | None = None


async def create_table(connection: asyncpg.Connection) -> None:
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS naive_signups (LIKE volunteers INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
        "INCLUDING INDEXES INCLUDING IDENTITY)"
    )


@asynccontextmanager
async def lifespan(_: Litestar) -> AsyncIterator[None]:
    global pool
    pool = await asyncpg.create_pool(os.environ["NAIVE_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        yield
    finally:
        await pool.close()


@post("/api/v1/volunteers", status_code=202)
async def signup(data: SignupBody) -> Response[Accepted]:
    assert pool is not None
    receipt = secrets.token_hex(8)
    now = datetime.now(UTC)
    try:
        saved = await pool.fetchval(
            INSERT, receipt, data.email, data.email.strip().lower(), data.first_name, data.last_name, data.phone,
            data.birth_date, data.postal_code, data.commune_code, data.domains, data.availability, data.skills,
            data.emergency, now,
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return Response(Accepted(receipt="", status="unavailable"), status_code=503)
    if saved is None:
        return Response(Accepted(receipt="", status="duplicate"), status_code=409)
    return Response(Accepted(receipt=receipt, status="accepted"), status_code=202)


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[signup, health], lifespan=[lifespan], openapi_config=None)
