"""The missions' domain errors; app/errors.py turns them into French pages (imported from service.py there)."""

from __future__ import annotations

from app.accounts.guards import RoleRequired


class MissionNotFound(Exception):
    """No such mission, or one this person may not see."""


class MissionForbidden(Exception):
    """Signed in, but not a manager of the mission's organisation."""


class MissionTransitionRefused(Exception):
    """The status does not allow this action; `message` is French, for the person. `notice`, when set, is the key
    of the notice the mission page shows instead ("etat": the status changed; "structure", "dates")."""

    def __init__(self, message: str, *, notice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.notice = notice


class MissionDecisionForbidden(RoleRequired):
    """A moderation or priority decision on a mission outside the person's departments (the shared 403 page)."""


class DecisionRefused(MissionDecisionForbidden):
    """A 403 with its own French `message` (the moderation pages show it; without them, the shared 403 page)."""

    message = "Cette décision revient à une autre personne."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class OwnMissionDecision(DecisionRefused):
    """The moderator manages the mission's organisation: nobody moderates their own work."""

    message = ("Vous êtes gestionnaire de la structure qui propose cette mission : une autre personne de la "
               "modération doit en décider.")
