"""The roles an administrator grants, their scopes, and what the listings and the audit read back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec


class Role(StrEnum):
    ADMIN = "admin"
    COORDINATOR = "coordinator"
    REFERENT = "referent"


ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: "administration", Role.COORDINATOR: "coordination", Role.REFERENT: "référent·e",
}
ACTION_LABELS = {"grant": "attribution", "revoke": "retrait"}
COMMAND_LINE = "ligne de commande"


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """National when it names neither departments nor a region. `text` is the audit's spelling ("national",
    "departements:01,69", "region:84"), which `parse_scope` reads back."""

    departments: tuple[str, ...] = ()
    region: str | None = None

    @property
    def national(self) -> bool:
        return not self.departments and self.region is None

    @property
    def text(self) -> str:
        if self.region is not None:
            return f"region:{self.region}"
        if self.departments:
            return "departements:" + ",".join(self.departments)
        return "national"


NATIONAL = Scope()


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who makes a change: an admin signed in on the page (id and address), or the command line (no id)."""

    user_id: int | None
    label: str


COMMAND_LINE_ACTOR = Actor(user_id=None, label=COMMAND_LINE)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One audited change; a grant of what the person already held is no change at all (None)."""

    action: str  # grant | revoke
    role: Role
    scope: Scope
    subject_user_id: int


class Holding(msgspec.Struct, frozen=True, kw_only=True):
    """One person's hold on one role: each scope is one unit (national, one department or one region), so that each
    can be revoked on its own."""

    role: Role
    user_id: int
    email: str
    scopes: tuple[Scope, ...]


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    actor: str
    subject: str | None  # None once the person's account is deleted
    action: str
    role: str
    scope: str
