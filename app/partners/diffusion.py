"""Which missions a partner receives (`GET /v0/mission`, the XML export): a SQL condition over `Mission` joined
with its `Organisation`. Our own online missions, narrowed by the partner's diffusion rules (domains, departments,
organisations; an empty list leaves its criterion open), and, when the partner takes them, the missions other
partners publish with us — never its own back. Plain comparisons on the columns, so the indexes stay usable."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, or_

from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress
from app.missions.search import ONLINE_ORGANISATIONS
from app.missions.service import ONLINE_STATUSES
from app.organisations.models import Organisation
from app.partners.context import PartnerContext


def _ours(partner: PartnerContext) -> ColumnElement[bool]:
    rules: list[ColumnElement[bool]] = [Mission.partner_id.is_(None)]
    if partner.diffusion_domains:
        rules.append(Mission.domain.in_(partner.diffusion_domains))
    if partner.diffusion_organisation_ids:
        rules.append(Mission.organisation_id.in_(partner.diffusion_organisation_ids))
    if partner.diffusion_departments:
        rules.append(exists().where(
            MissionAddress.mission_id == Mission.id, Commune.code == MissionAddress.commune_code,
            Commune.department_code.in_(partner.diffusion_departments),
        ))
    return and_(*rules)


def _other_partners(partner: PartnerContext) -> ColumnElement[bool]:
    if not partner.diffuses_partner_missions:
        return false()
    return and_(Mission.partner_id.is_not(None), Mission.partner_id != partner.id)


def shared_with(partner: PartnerContext) -> ColumnElement[bool]:
    """For a query that joins `Organisation` on `Mission.organisation_id`."""
    return and_(
        Mission.status.in_(ONLINE_STATUSES),
        Mission.deleted_at.is_(None),
        Organisation.status.in_(ONLINE_ORGANISATIONS),
        or_(_ours(partner), _other_partners(partner)),
    )
