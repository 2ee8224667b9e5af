"""The search condition of a campaign's missions (app/missions/search.py): tagged for it, or in one of its
domains."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, exists, func, or_

from app.campaigns.models import Campaign, CampaignMission
from app.missions.models import Mission

CAMPAIGN_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?")


def campaign_missions(slug: str) -> ColumnElement[bool]:
    tagged = exists().where(CampaignMission.mission_id == Mission.id, CampaignMission.campaign_id == Campaign.id,
                            Campaign.slug == slug)
    in_domains = exists().where(Campaign.slug == slug, Mission.domain == func.any(Campaign.domains))
    return or_(tagged, in_domains)
