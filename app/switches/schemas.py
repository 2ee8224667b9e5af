"""The switches, their French labels, and the records of their changes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class Switch(StrEnum):
    MAINTENANCE = "maintenance"
    ORGANISATIONS_READ_ONLY = "organisations_read_only"
    PAUSE_JOBS = "pause_jobs"


LABELS: dict[str, str] = {
    Switch.MAINTENANCE: "Maintenance",
    Switch.ORGANISATIONS_READ_ONLY: "Espace des structures en lecture seule",
    Switch.PAUSE_JOBS: "Tâches de fond non essentielles en pause",
}
DESCRIPTIONS: dict[str, str] = {
    Switch.MAINTENANCE: "Toutes les pages répondent « maintenance », sauf l'inscription des bénévoles, les reçus, "
                        "les pages d'urgence, la connexion, la coordination, les mobilisations et cette page.",
    Switch.ORGANISATIONS_READ_ONLY: "Les structures, missions et modérations se consultent mais ne se modifient plus "
                                    "(création, modification, décisions, invitations).",
    Switch.PAUSE_JOBS: "Les e-mails, résumés, rappels et exports attendent ; l'enregistrement des inscriptions et des "
                       "candidatures, les mobilisations et les e-mails de connexion continuent.",
}
COMMAND = "commande"  # who changed a switch from a shell
ADMIN = "admin"  # who changed it from the page (with their user id)
REASON_LENGTH = 500


class SwitchChange(msgspec.Struct, frozen=True, kw_only=True):
    """One change, as the flip files it in Redis and the journal copies it into PostgreSQL (`id` makes the copy
    idempotent). A switch set to the value it has is no change and is not filed."""

    id: str
    switch: Switch
    on: bool
    actor: str  # ADMIN or COMMAND
    actor_user_id: int | None = None
    reason: str | None = None
    at: datetime

    @property
    def was_on(self) -> bool:
        return not self.on


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    switch: str
    was_on: bool
    on: bool
    actor: str
    actor_email: str | None  # the admin's address, None from the command line or once the account is deleted
    reason: str | None
