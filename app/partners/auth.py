"""The `partner` dependency of every key-authenticated route: `x-api-key` → the calling partner, or a 401."""

from __future__ import annotations

from typing import Any

from litestar import Request
from sqlalchemy import select

from app.db.base import unit_of_work
from app.deps import provide_web
from app.partners.context import PartnerContext
from app.partners.errors import PartnerApiError
from app.partners.keys import digest_of
from app.partners.models import Partner, PartnerApiKey

MAX_KEY_LENGTH = 200
UNAUTHORIZED = "Clé d'API manquante ou invalide : envoyez la clé de votre plateforme dans l'en-tête x-api-key."


async def provide_partner(request: Request[Any, Any, Any]) -> PartnerContext:
    key = request.headers.get("x-api-key", "")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise PartnerApiError(401, "UNAUTHORIZED", UNAUTHORIZED)
    web = provide_web(request.app.state)
    async with unit_of_work(web.engine) as session:
        partner = (await session.execute(
            select(Partner).join(PartnerApiKey, PartnerApiKey.partner_id == Partner.id)
            .where(PartnerApiKey.digest == digest_of(key), PartnerApiKey.revoked_at.is_(None), Partner.active)
        )).scalar_one_or_none()
    if partner is None:
        raise PartnerApiError(401, "UNAUTHORIZED", UNAUTHORIZED)
    return PartnerContext(
        id=partner.id, name=partner.name, rate_limit_per_minute=partner.rate_limit_per_minute,
        diffusion_domains=tuple(partner.diffusion_domains), diffusion_departments=tuple(partner.diffusion_departments),
        diffusion_organisation_ids=tuple(partner.diffusion_organisation_ids),
        diffuses_partner_missions=partner.diffuses_partner_missions,
    )
