""""Télécharger mes données": a JSON document built by a worker (never inside the request), kept in Redis for a day
under a random token, and handed once, to the signed-in person who asked for it.

A person has one request at a time: asking again while one is being prepared or waits to be downloaded leads back to
it. The download takes the file out of Redis atomically (GETDEL), so a second try, from another tab or a link kept,
finds it gone and is told to ask again."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

import msgspec
from redis.asyncio import Redis

TTL_SECONDS = 24 * 3600
# While the file is being prepared the person's one request blocks others only this long: a job that never ends
# (a bug, a lost queue) does not keep them from asking again for a whole day.
PREPARING_SECONDS = 3600
MAX_PER_DAY = 5
PREFIX = "renfort:privacy:downloads:"
TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")  # what new_token() makes
FILENAME = "mes-donnees-renfort.json"


class DownloadStatus(StrEnum):
    QUEUED = "queued"
    READY = "ready"
    TAKEN = "taken"


class DownloadRequest(msgspec.Struct, frozen=True):
    user_id: int
    status: DownloadStatus = DownloadStatus.QUEUED


class DownloadProgress(msgspec.Struct, frozen=True):
    """What the waiting page's script polls (templates/static/waiting.js)."""

    done: bool
    message: str
    url: str | None = None


class DownloadMissing(Exception):
    """No such request for this person (another person's, expired, or never made)."""


class AlreadyTaken(Exception):
    """The file was downloaded already: it is not kept after that."""


class NotReady(Exception):
    """Still being prepared."""


class TooManyRequests(Exception):
    """Asked MAX_PER_DAY times today already."""


@dataclass(frozen=True, slots=True)
class DownloadKeys:
    """The keys of one request, named by its token."""

    token: str

    @property
    def request(self) -> str:
        return f"{PREFIX}t:{self.token}"

    @property
    def content(self) -> str:
        return f"{PREFIX}t:{self.token}:json"


def current_key(user_id: int) -> str:
    """The token of the one request a person may have at a time."""
    return f"{PREFIX}u{user_id}"


def count_key(user_id: int) -> str:
    """How many files the person asked for in the last day (a new file is a job: bounded, however they click)."""
    return f"{PREFIX}u{user_id}:count"


def new_token() -> str:
    return secrets.token_urlsafe(18)


def page_url(token: str) -> str:
    return f"/mon-espace/donnees/{token}"


def file_url(token: str) -> str:
    return f"{page_url(token)}/{FILENAME}"


async def open_request(redis: Redis, user_id: int) -> tuple[str, bool]:
    """The person's request, and whether it is a new one (to be built) rather than the one already under way.
    Raises `TooManyRequests` past MAX_PER_DAY new ones."""
    existing = await current(redis, user_id)
    if existing is not None:
        return existing, False
    raw = await redis.get(count_key(user_id))
    if raw is not None and int(raw) >= MAX_PER_DAY:
        raise TooManyRequests
    for _ in range(3):
        token = new_token()
        # The request first: a token the person's key names always has its request (a racing click reads it).
        await redis.set(DownloadKeys(token).request, msgspec.json.encode(DownloadRequest(user_id)), ex=TTL_SECONDS)
        if await redis.set(current_key(user_id), token, nx=True, ex=PREPARING_SECONDS):
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(count_key(user_id))
                pipe.expire(count_key(user_id), TTL_SECONDS, nx=True)
                await pipe.execute()
            return token, True
        await redis.delete(DownloadKeys(token).request)
        raw = await redis.get(current_key(user_id))
        existing = raw.decode() if isinstance(raw, bytes) else raw
        if existing and await find_any(redis, existing) is not None:
            return existing, False
        # Its request expired a moment before the person's key: the key is stale.
        await redis.delete(current_key(user_id))
    raise RuntimeError("could not open a download request")


async def current(redis: Redis, user_id: int) -> str | None:
    raw = await redis.get(current_key(user_id))
    token = raw.decode() if isinstance(raw, bytes) else raw
    return token if token and await find_any(redis, token) is not None else None


async def find_any(redis: Redis, token: str) -> DownloadRequest | None:
    if not TOKEN.fullmatch(token):
        return None  # not one of ours, and never a key of another shape
    raw = await redis.get(DownloadKeys(token).request)
    return msgspec.json.decode(raw, type=DownloadRequest) if raw else None


async def find(redis: Redis, token: str, user_id: int) -> DownloadRequest:
    request = await find_any(redis, token)
    if request is None or request.user_id != user_id:
        raise DownloadMissing
    return request


async def store(redis: Redis, token: str, request: DownloadRequest, content: bytes) -> None:
    keys = DownloadKeys(token)
    ready = msgspec.structs.replace(request, status=DownloadStatus.READY)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.content, content, ex=TTL_SECONDS)
        pipe.set(keys.request, msgspec.json.encode(ready), ex=TTL_SECONDS)
        await pipe.execute()
    # Ready: the person's one request now lasts as long as its file, if it is still the one their key names.
    raw = await redis.get(current_key(request.user_id))
    if raw is not None and (raw.decode() if isinstance(raw, bytes) else raw) == token:
        await redis.expire(current_key(request.user_id), TTL_SECONDS)


async def forget(redis: Redis, token: str, user_id: int) -> None:
    """The person is gone (or the request cannot be served): nothing is left under the token."""
    await redis.delete(DownloadKeys(token).request, DownloadKeys(token).content)
    await _release(redis, token, user_id)


async def forget_user(redis: Redis, user_id: int) -> None:
    """The person is anonymised: their file, ready or under way, goes (a job still building it finds no request)."""
    raw = await redis.get(current_key(user_id))
    token = raw.decode() if isinstance(raw, bytes) else raw
    keys = [current_key(user_id), count_key(user_id)]
    if token and TOKEN.fullmatch(token):
        keys += [DownloadKeys(token).request, DownloadKeys(token).content]
    await redis.delete(*keys)


async def take(redis: Redis, token: str, user_id: int) -> bytes:
    """The file, once: raises `DownloadMissing` (not this person's), `NotReady` or `AlreadyTaken`."""
    request = await find(redis, token, user_id)
    keys = DownloadKeys(token)
    content = await redis.getdel(keys.content)
    if content is None:
        # Ready without a file: another tab took it a moment ago and has not marked it yet.
        if request.status == DownloadStatus.QUEUED:
            raise NotReady
        raise AlreadyTaken
    taken = msgspec.structs.replace(request, status=DownloadStatus.TAKEN)
    await redis.set(keys.request, msgspec.json.encode(taken), keepttl=True)
    await _release(redis, token, user_id)
    return content if isinstance(content, bytes) else str(content).encode()


async def _release(redis: Redis, token: str, user_id: int) -> None:
    """The person may ask again: their key goes, if it still names this request."""
    raw = await redis.get(current_key(user_id))
    if raw is not None and (raw.decode() if isinstance(raw, bytes) else raw) == token:
        await redis.delete(current_key(user_id))


def progress(token: str, request: DownloadRequest) -> DownloadProgress:
    if request.status == DownloadStatus.READY:
        return DownloadProgress(True, "Votre fichier est prêt. Il reste disponible 24 heures et ne peut être "
                                      "téléchargé qu'une fois.", file_url(token))
    if request.status == DownloadStatus.TAKEN:
        return DownloadProgress(True, "Ce fichier a déjà été téléchargé.")
    return DownloadProgress(False, "Votre fichier est en préparation.")
