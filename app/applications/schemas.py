"""What the application pages show."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.applications.statuses import CANCELLABLE
from app.applications.statuses import ApplicationStatus as Status

STATUS_LABELS: dict[str, str] = {
    Status.PENDING: "En attente de réponse",
    Status.WAITLISTED: "Sur liste d'attente",
    Status.ACCEPTED: "Acceptée",
    Status.DECLINED: "Refusée",
    Status.CANCELLED: "Annulée",
    Status.DONE: "Mission réalisée",
    Status.PROPOSED: "Proposée par la coordination",
}
# An application Redis accepted and the drain has not written to PostgreSQL yet.
SAVING_LABELS: dict[str, str] = {
    Status.PENDING: "Envoyée, en cours d'enregistrement",
    Status.WAITLISTED: "Sur liste d'attente, en cours d'enregistrement",
}
# What the person reads after applying (`?resultat=` on the applications page).
OUTCOME_MESSAGES = {
    "pending": "Votre candidature est envoyée : la structure va l'étudier. Vous recevrez sa réponse par e-mail.",
    "waitlisted": "Toutes les places sont prises : vous êtes sur liste d'attente. Si une place se libère, elle "
                  "vous revient dans l'ordre d'arrivée et vous êtes prévenu·e par e-mail.",
    "exists": "Vous avez déjà candidaté à cette mission.",
    "declined": "La structure a déjà refusé votre candidature à cette mission.",
    "closed": "Cette mission ne reçoit plus de candidatures.",
    "minor": "Cette mission est réservée aux personnes majeures. D'autres missions sont ouvertes aux mineurs : "
             "cochez « Missions ouvertes aux mineurs » dans la recherche.",
    "cancelled": "Votre candidature est annulée.",
    "confirmed": "Merci ! Votre participation est confirmée : la structure vous contactera pour les détails pratiques.",
    "inchange": "Rien n'a changé : cette candidature a déjà évolué entre-temps (voir son statut ci-dessous).",
}


class ApplicationRead(msgspec.Struct, frozen=True, kw_only=True):
    mission_id: int
    mission_title: str
    mission_path: str
    organisation_name: str
    volunteer_id: int
    status: str
    status_label: str
    applied_at: datetime
    message: str | None = None
    reason: str | None = None
    # Shown to the mission's managers only.
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str | None = None
    commune: str = ""
    saving: bool = False  # accepted (Redis), not in PostgreSQL yet: `applied_at` is when the page was read

    @property
    def cancellable(self) -> bool:
        return self.status in CANCELLABLE


class OwnApplication(msgspec.Struct, frozen=True, kw_only=True):
    """The signed-in volunteer's application to the mission they are looking at."""

    status: str
    status_label: str

    @property
    def applied(self) -> bool:
        """Still an application (a cancelled one may apply again)."""
        return self.status != Status.CANCELLED
