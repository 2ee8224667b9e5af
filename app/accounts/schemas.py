"""What a signed-in session holds, and the sign-in records kept in Redis."""

from __future__ import annotations

from datetime import date

import msgspec


class Roles(msgspec.Struct, frozen=True, kw_only=True):
    """Computed from the database at sign-in and kept in the session; the guards read them again at each privileged
    request (app/accounts/roles.py). Referents moderate (organisations, missions) where they are referents;
    coordinators run crises (emergencies, dispatch) where they coordinate; one person may be both."""

    volunteer: bool = False
    admin: bool = False
    national_coordinator: bool = False
    departments: tuple[str, ...] = ()  # the departments this person coordinates
    organisations: tuple[int, ...] = ()  # the ids of the organisations this person manages
    national_referent: bool = False
    referent_departments: tuple[str, ...] = ()  # the departments this person moderates, their regions' included
    referent_regions: tuple[str, ...] = ()  # the regions this person is referent of (their departments are above)

    def manages(self, organisation_id: int) -> bool:
        return organisation_id in self.organisations

    @property
    def referent(self) -> bool:
        return self.national_referent or bool(self.referent_departments)

    @property
    def moderator(self) -> bool:
        """May open the moderation queues; each decision still checks the department (`moderates`)."""
        return self.admin or self.referent

    def moderates(self, department_code: str | None) -> bool:
        """Admins and national referents everywhere; a referent in their departments and their regions' ones."""
        return self.admin or self.national_referent or (
            department_code is not None and department_code in self.referent_departments
        )

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
    # The volunteer's 18th birthday (a birth date cannot be changed once signed up): the apply path checks missions
    # closed to minors with it, without a query.
    adult_on: date | None = None
    # The terms of use version this person accepted (app/legal/consent.py); None counts as version 1.
    terms_version: int | None = None


class SignInRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What the e-mail job needs, kept in Redis under an opaque key so the job payload holds no address."""

    email: str
    email_normalized: str
    after: str = ""  # the same-site path to land on once signed in (return_path.safe), "" for the person's space


class LinkRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A minted link's single-use record; consumed (GETDEL) when the link is confirmed."""

    email: str
    email_normalized: str
    after: str = ""  # carried over from the request
