"""Acceptance of a new major version of the terms: asked once signed in, before any guarded page.

The session holds the version the person accepted (set at sign-in, `SignedIn.terms_version`); the guards compare
it with the per-process copy of the current major version (app/legal/current.py), so the check costs no SQL and at
most one Redis read a second. What stays open before accepting: the acceptance page itself, signing out, and the
person's rights (downloading their data, deleting their account).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar.connection import ASGIConnection
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import return_path
from app.accounts.schemas import SignedIn
from app.legal.current import copy_of
from app.legal.service import accepted_terms, current_versions

ACCEPT_PATH = "/conditions-utilisation/accepter"
OPEN_BEFORE_ACCEPTING = ("/conditions-utilisation", "/deconnexion", "/mon-espace/supprimer", "/mon-espace/donnees")


class TermsToAccept(Exception):
    """Signed in, with an older major version of the terms than the current one."""


def accepted(account: SignedIn) -> int:
    return account.terms_version or 1


def acceptance_location(after: str) -> str:
    suite = return_path.safe(after)
    return ACCEPT_PATH + ("?" + urlencode({"suite": suite}) if suite else "")


async def check_terms(connection: ASGIConnection[Any, Any, Any, Any], account: SignedIn) -> None:
    """Raises `TermsToAccept` when the person must accept the current terms first. When Redis has lost the
    versions, lets them through: the next sign-in or legal page writes them back. A stand-in app state without a
    Redis client (the guards' unit tests) has nothing to compare with."""
    redis = getattr(connection.app.state.web, "redis", None)
    if redis is None or connection.scope.get("path", "").startswith(OPEN_BEFORE_ACCEPTING):
        return
    versions = await copy_of(redis).get()
    if versions is not None and accepted(account) < versions.terms_major:
        raise TermsToAccept


async def at_sign_in(session: AsyncSession, redis: Redis, account: SignedIn) -> tuple[SignedIn, bool]:
    """The account with the terms version it accepted, and whether it must accept the current major version now."""
    version = await accepted_terms(session, account.user_id)
    versions = await current_versions(session, redis)
    return msgspec.structs.replace(account, terms_version=version), version < versions.terms_major
