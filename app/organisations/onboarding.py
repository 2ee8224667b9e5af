"""Registering an organisation without an account (`/inscription/structure`): the organisation is kept as a draft
with no manager, and the address typed gets an invitation to become its manager (app/organisations/invitations.py).
The work is the same whether the address has an account or not, so the answer is too."""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.ratelimit import SignInLimiter
from app.accounts.service import SignInRateLimited
from app.geo.index import PostcodeIndex
from app.organisations import invitations
from app.organisations.models import Organisation
from app.organisations.validation import OrganisationInvalid, validate_organisation
from app.text_rules import TextRefused
from app.volunteers.validation import parse_email

HONEYPOT_FIELD = "website"


async def register_unclaimed(
    session: AsyncSession, *, data: dict[str, Any], postcodes: PostcodeIndex, limiter: SignInLimiter,
    client_ip: str, secret: str, invitation_days: int, terms_version: int | None = None,
) -> None:
    """Raises `OrganisationInvalid` (every field's message at once) or `SignInRateLimited` (too many requests from
    this client address). Past the per-address limit of e-mails, nothing is kept and the caller answers the same."""
    if data.get(HONEYPOT_FIELD):
        return  # a bot fills every field: it gets the answer a person gets, and nothing is kept
    errors: dict[str, str] = {}
    try:
        email, email_normalized = parse_email(data.get("email"))
    except TextRefused as refused:
        errors["email"] = refused.message
    try:
        valid = validate_organisation(data, postcodes)
    except OrganisationInvalid as invalid:
        errors.update(invalid.errors)
    if errors:
        raise OrganisationInvalid(errors)
    # The sign-in limits: both send a link to an address typed by anyone.
    verdict = await limiter.check(client_ip=client_ip, email_normalized=email_normalized)
    if verdict.outcome == "ip":
        raise SignInRateLimited(verdict.retry_after)
    if verdict.outcome == "email":
        return
    organisation = Organisation(**dataclasses.asdict(valid), status="draft", terms_version=terms_version)
    session.add(organisation)
    await session.flush()
    await invitations.create(session, organisation_id=organisation.id, email=email, email_normalized=email_normalized,
                             invited_by=None, secret=secret, days=invitation_days)
