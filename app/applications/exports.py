"""CSV exports built by a worker (never inside the request), kept in Redis for an hour and handed only to the person
who asked for it: a mission's applicants, and an SNU cohort's young people of one department (app/youth/export.py)."""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterable, Sequence

import msgspec
from redis.asyncio import Redis

from app.applications.schemas import ApplicationRead
from app.formats import when

TTL_SECONDS = 3600
PREFIX = "renfort:exports:"
TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")  # what new_token() makes
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("Prénom", "Nom", "E-mail", "Téléphone", "Commune", "Statut", "Candidature le (heure de Paris)", "Message")


APPLICANTS = "applicants"
YOUTH = "youth"
DOWNLOADS = {APPLICANTS: "/exports/{token}/candidatures.csv", YOUTH: "/snu/referent/exports/{token}/jeunes.csv"}


class ExportRequest(msgspec.Struct, frozen=True):
    user_id: int
    mission_id: int  # 0 for an export that is not a mission's
    status: str = "queued"  # queued | ready
    kind: str = APPLICANTS  # a key of DOWNLOADS
    cohort_id: int = 0
    department_code: str = ""


class ExportProgress(msgspec.Struct, frozen=True):
    """What the waiting page's script polls (templates/static/waiting.js)."""

    done: bool
    message: str
    url: str | None = None


class ExportMissing(Exception):
    """No such export for this person, or it expired."""


def new_token() -> str:
    return secrets.token_urlsafe(18)


async def register(redis: Redis, token: str, user_id: int, mission_id: int) -> None:
    await register_request(redis, token, ExportRequest(user_id, mission_id))


async def register_request(redis: Redis, token: str, request: ExportRequest) -> None:
    await redis.set(PREFIX + token, msgspec.json.encode(request), ex=TTL_SECONDS)


async def find_any(redis: Redis, token: str) -> ExportRequest | None:
    if not TOKEN.fullmatch(token):
        return None  # not one of ours (and never a key of another shape, e.g. the CSV's own)
    raw = await redis.get(PREFIX + token)
    return msgspec.json.decode(raw, type=ExportRequest) if raw else None


async def find(redis: Redis, token: str, user_id: int, kind: str = APPLICANTS) -> ExportRequest:
    request = await find_any(redis, token)
    if request is None or request.user_id != user_id or request.kind != kind:
        raise ExportMissing
    return request


async def store(redis: Redis, token: str, request: ExportRequest, content: bytes) -> None:
    ready = msgspec.structs.replace(request, status="ready")
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(PREFIX + token + ":csv", content, ex=TTL_SECONDS)
        pipe.set(PREFIX + token, msgspec.json.encode(ready), ex=TTL_SECONDS)
        await pipe.execute()


def progress(token: str, request: ExportRequest) -> ExportProgress:
    if request.status == "ready":
        return ExportProgress(True, "Votre fichier est prêt. Il reste disponible une heure.",
                              DOWNLOADS[request.kind].format(token=token))
    return ExportProgress(False, "Le fichier est en préparation.")


async def content(redis: Redis, token: str) -> bytes:
    raw = await redis.get(PREFIX + token + ":csv")
    if raw is None:
        raise ExportMissing
    return raw if isinstance(raw, bytes) else raw.encode()


def to_csv(applications: list[ApplicationRead]) -> bytes:
    return spreadsheet(COLUMNS, ((
        application.first_name, application.last_name, application.email, application.phone or "",
        application.commune, application.status_label, when(application.applied_at, "csv"), application.message or "",
    ) for application in applications))


def spreadsheet(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """Semicolon-separated with a byte-order mark: what a French spreadsheet opens without an import dialog."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode()


def _cell(value: str) -> str:
    # A cell starting with one of these runs as a formula in a spreadsheet (CSV injection): every column is checked,
    # not only the typed ones, so a column added later is covered too.
    return "'" + value if value[:1] in FORMULA_STARTS else value
