"""What a signed-in session holds, and the sign-in records kept in Redis."""

from __future__ import annotations

import msgspec


class Roles(msgspec.Struct, frozen=True, kw_only=True):
    """Computed from the database at sign-in and kept in the session."""

    volunteer: bool = False
    admin: bool = False
    national_coordinator: bool = False
    departments: tuple[str, ...] = ()
    organisations: tuple[int, ...] = ()  # the ids of the organisations this person manages

    def manages(self, organisation_id: int) -> bool:
        return organisation_id in self.organisations

    @property
    def moderator(self) -> bool:
        """May open the organisations' moderation queue; each decision still checks the department."""
        return self.admin or self.coordinator

    @property
    def coordinator(self) -> bool:
        return self.national_coordinator or bool(self.departments)

    def coordinates(self, department_code: str | None) -> bool:
        """National coordinators coordinate everywhere; `None` asks for national coordination."""
        return self.national_coordinator or (department_code is not None and department_code in self.departments)


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    email: str
    roles: Roles
    since: int  # epoch seconds of the sign-in: sessions end 30 days after it, however active
    volunteer_id: int | None = None  # the volunteer row of this address, when the person signed up as a volunteer


class SignInRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the e-mail job needs, kept in Redis under an opaque key so the job payload holds no address."""

    email: str
    email_normalized: str


class LinkRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A minted link's single-use record; consumed (GETDEL) when the link is confirmed."""

    email: str
    email_normalized: str
