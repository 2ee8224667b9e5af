"""What the organisation pages show."""

from __future__ import annotations

import msgspec

STATUS_LABELS = {
    "draft": "Brouillon",
    "awaiting_validation": "En attente de validation",
    "validated": "Validée",
    "refused": "Refusée",
    "suspended": "Suspendue",
}


class OrganisationRead(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    type: str
    type_label: str
    rna: str | None
    siret: str | None
    address_line: str
    postal_code: str
    commune_code: str
    commune_name: str
    department_code: str
    description: str
    donation_url: str | None
    status: str
    status_label: str
    status_reason: str | None
    online: bool

    @property
    def path(self) -> str:
        return f"/organisations/{self.id}-{self.slug}"
