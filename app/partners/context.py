"""Who is calling the partner API: what a valid `x-api-key` resolves to, as every partner route receives it."""

from __future__ import annotations

import msgspec


class PartnerContext(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    rate_limit_per_minute: int
    # Which of our missions it receives (app/partners/diffusion.py): an empty tuple leaves that criterion open.
    diffusion_domains: tuple[str, ...] = ()
    diffusion_departments: tuple[str, ...] = ()
    diffusion_organisation_ids: tuple[int, ...] = ()
    diffuses_partner_missions: bool = False
