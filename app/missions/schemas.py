"""What the mission pages and the API show."""

from __future__ import annotations

from datetime import date

import msgspec

STATUS_LABELS = {
    "draft": "Brouillon",
    "awaiting_validation": "En attente de validation",
    "published": "Publiée",
    "full": "Complète",
    "finished": "Terminée",
    "cancelled": "Annulée",
    "suspended": "Suspendue",
}
TEMPLATE_STATUS_LABELS = {"draft": "Brouillon", "validated": "Validé", "archived": "Archivé"}


class AddressRead(msgspec.Struct, frozen=True, kw_only=True):
    address_line: str
    postal_code: str
    commune_code: str
    commune_name: str
    department_code: str
    latitude: float
    longitude: float


class MissionRead(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    organisation_id: int
    organisation_name: str
    title: str
    description: str
    domain: str
    domain_label: str
    activities: list[str]
    remote: bool
    start_date: date | None
    end_date: date | None
    schedule: str | None
    places: int
    places_left: int
    open_to_minors: bool
    prerequisites: str | None
    priority: bool
    emergency_slug: str | None
    status: str
    status_label: str
    online: bool
    addresses: list[AddressRead]
    distance_km: float | None = None  # from the searched point, to the nearest of the mission's addresses
    # A partner's mission (app/partners): applied to on its site through the tracked link, outside our capacity.
    partner_id: int | None = None
    partner_name: str | None = None

    @property
    def path(self) -> str:
        return f"/missions/{self.id}-{self.slug}"

    @property
    def partner_link(self) -> str | None:
        """The tracked link to the partner's application page (app/partners/redirects.py)."""
        return None if self.partner_id is None else f"/r/{self.id}/{self.partner_id}"


class MissionPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of search results."""

    items: list[MissionRead]
    total: int
    page: int
    per_page: int
    pages: int
    previous: str | None = None  # the API's URL of the page before, every filter kept
    next: str | None = None
