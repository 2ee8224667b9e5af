"""API keys: shown once when made, then known by their SHA-256 only (a key is 32 random bytes: no salt needed)."""

from __future__ import annotations

import hashlib
import secrets

PREFIX_LENGTH = 8  # the characters kept in clear, so an admin can tell keys apart


def new_key() -> tuple[str, str, str]:
    """(the key to hand over once, its digest to store, its prefix to show)."""
    key = secrets.token_urlsafe(32)
    return key, digest_of(key), key[:PREFIX_LENGTH]


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
