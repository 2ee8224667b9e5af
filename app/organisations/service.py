"""Organisation use cases: registration and edits by managers, moderation, the public showcase."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles, SignedIn
from app.geo.index import PostcodeIndex
from app.geo.models import Commune
from app.missions.cache import mark_changed
from app.missions.models import Mission
from app.organisations import notifications
from app.organisations.models import Organisation, OrganisationManager
from app.organisations.schemas import STATUS_LABELS, OrganisationRead
from app.organisations.validation import TYPE_LABELS, OrganisationInvalid, validate_organisation
from app.text_rules import TextRefused, clean_text

# (status, action) → new status; anything else is an illegal transition.
TRANSITIONS = {
    ("draft", "submit"): "awaiting_validation",
    ("refused", "submit"): "awaiting_validation",
    ("awaiting_validation", "validate"): "validated",
    ("awaiting_validation", "refuse"): "refused",
    ("validated", "suspend"): "suspended",
    ("suspended", "reinstate"): "validated",
}
MODERATION_ACTIONS = {"valider": "validate", "refuser": "refuse", "suspendre": "suspend", "retablir": "reinstate"}
NEEDS_REASON = {"refuse", "suspend"}
REASON_LENGTH = 2_000
EDITABLE = {"draft", "refused"}
ACTION_LABELS = {
    "submit": "soumise à validation",
    "validate": "validée",
    "refuse": "refusée",
    "suspend": "suspendue",
    "reinstate": "rétablie",
}


class OrganisationNotFound(Exception):
    """No such organisation, or one this person may not see."""


class ModerationForbidden(Exception):
    """Signed in, but not a moderator of this organisation's department."""


class IllegalTransition(Exception):
    """The organisation's status does not allow this action; `message` is French, for the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OwnOrganisationDecision(Exception):
    """The moderator manages this organisation: nobody moderates their own."""


class ReasonRequired(Exception):
    """A refusal or a suspension without its reason."""


def is_online(status: str) -> bool:
    # The single place missions will ask whether their organisation lets them be online.
    return status == "validated"


LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name.translate(LIGATURES)).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80] or "structure"


def _query() -> Select[Organisation, Commune]:
    return select(Organisation, Commune).join(Commune, Commune.code == Organisation.commune_code)


def _read(organisation: Organisation, commune: Commune) -> OrganisationRead:
    return OrganisationRead(
        id=organisation.id,
        slug=slugify(organisation.name),
        name=organisation.name,
        type=organisation.type,
        type_label=TYPE_LABELS[organisation.type],
        rna=organisation.rna,
        siret=organisation.siret,
        address_line=organisation.address_line,
        postal_code=organisation.postal_code,
        commune_code=organisation.commune_code,
        commune_name=commune.name,
        department_code=commune.department_code,
        description=organisation.description,
        donation_url=organisation.donation_url,
        status=organisation.status,
        status_label=STATUS_LABELS[organisation.status],
        status_reason=organisation.status_reason,
        online=is_online(organisation.status),
    )


async def _load(session: AsyncSession, organisation_id: int, *, lock: bool = False) -> tuple[Organisation, Commune]:
    query = _query().where(Organisation.id == organisation_id)
    row = (await session.execute(query.with_for_update(of=Organisation) if lock else query)).first()
    if row is None:
        raise OrganisationNotFound
    return row[0], row[1]


def may_moderate(roles: Roles, department_code: str) -> bool:
    return roles.moderates(department_code)


async def register(
    session: AsyncSession, *, data: dict[str, Any], postcodes: PostcodeIndex, account: SignedIn,
    terms_version: int | None = None,
) -> tuple[OrganisationRead, SignedIn]:
    """Creates the organisation as a draft managed by its creator; returns it and the account with its new role."""
    valid = validate_organisation(data, postcodes)
    organisation = Organisation(**dataclasses.asdict(valid), status="draft", terms_version=terms_version)
    session.add(organisation)
    await session.flush()
    await session.execute(
        insert(OrganisationManager).values(organisation_id=organisation.id, user_id=account.user_id)
        .on_conflict_do_nothing()
    )
    managed = tuple(sorted({*account.roles.organisations, organisation.id}))
    roles = msgspec.structs.replace(account.roles, organisations=managed)
    return _read(*await _load(session, organisation.id)), msgspec.structs.replace(account, roles=roles)


async def update(
    session: AsyncSession, organisation_id: int, *, data: dict[str, Any], postcodes: PostcodeIndex
) -> OrganisationRead:
    """A manager's edit; only a draft or a refused organisation can change (the others are under review or live)."""
    organisation, _ = await _load(session, organisation_id, lock=True)
    if organisation.status not in EDITABLE:
        raise IllegalTransition(
            f"Une structure {STATUS_LABELS[organisation.status].lower()} ne peut pas être modifiée."
        )
    valid = validate_organisation(data, postcodes)
    for field, value in dataclasses.asdict(valid).items():
        setattr(organisation, field, value)
    organisation.updated_at = datetime.now(UTC)
    await session.flush()
    return _read(*await _load(session, organisation_id))


async def managed(session: AsyncSession, user_id: int) -> list[OrganisationRead]:
    """The organisations this user manages, by name."""
    rows = await session.execute(
        _query().join(OrganisationManager, OrganisationManager.organisation_id == Organisation.id)
        .where(OrganisationManager.user_id == user_id).order_by(Organisation.name, Organisation.id)
    )
    return [_read(organisation, commune) for organisation, commune in rows]


async def edit_form(session: AsyncSession, organisation_id: int) -> OrganisationRead:
    return _read(*await _load(session, organisation_id))


def _transition(organisation: Organisation, action: str, reason: str | None) -> None:
    target = TRANSITIONS.get((organisation.status, action))
    if target is None:
        raise IllegalTransition(
            f"Cette structure est « {STATUS_LABELS[organisation.status].lower()} » : "
            f"elle ne peut pas être {ACTION_LABELS[action]}."
        )
    if organisation.status == "refused" and organisation.updated_at <= organisation.status_changed_at:
        raise IllegalTransition(
            "Modifiez la structure en tenant compte du motif du refus avant de la soumettre à nouveau."
        )
    now = datetime.now(UTC)
    organisation.status = target
    organisation.status_reason = reason if action in NEEDS_REASON else None
    organisation.status_changed_at = now


async def submit(session: AsyncSession, organisation_id: int) -> OrganisationRead:
    organisation, commune = await _load(session, organisation_id, lock=True)
    _transition(organisation, "submit", None)
    await session.flush()
    return _read(organisation, commune)


async def moderate(
    session: AsyncSession, organisation_id: int, *, action: str, reason: object, roles: Roles
) -> OrganisationRead:
    """Validate, refuse or suspend (with a reason) or reinstate, for a moderator of the organisation's department."""
    organisation, commune = await _load(session, organisation_id, lock=True)
    if not may_moderate(roles, commune.department_code):
        raise ModerationForbidden
    if roles.manages(organisation_id):
        raise OwnOrganisationDecision
    try:
        text = clean_text(reason, "Motif", REASON_LENGTH, collapse=True)
    except TextRefused as refused:
        raise OrganisationInvalid({"reason": refused.message}) from None
    if action in NEEDS_REASON and not text:
        raise ReasonRequired
    _transition(organisation, action, text or None)
    await session.flush()
    # Its missions go online or offline with it.
    mark_changed(session, await session.scalars(select(Mission.id).where(Mission.organisation_id == organisation_id)))
    notifications.tell_managers(session, organisation_id, action, organisation.status_changed_at)
    return _read(organisation, commune)


async def moderation_queue(session: AsyncSession, roles: Roles) -> dict[str, list[OrganisationRead]]:
    """The organisations a moderator decides on, by status: awaiting first, then the live and suspended ones."""
    query = _query().where(Organisation.status.in_(("awaiting_validation", "validated", "suspended")),
                           Organisation.partner_id.is_(None))  # a partner answers for its own organisations
    if not (roles.admin or roles.national_referent):
        query = query.where(Commune.department_code.in_(roles.referent_departments))
    rows = (await session.execute(query.order_by(Organisation.status_changed_at, Organisation.id)))
    queue: dict[str, list[OrganisationRead]] = {"awaiting_validation": [], "validated": [], "suspended": []}
    for organisation, commune in rows:
        queue[organisation.status].append(_read(organisation, commune))
    return queue


@dataclasses.dataclass(frozen=True, slots=True)
class Showcase:
    organisation: OrganisationRead
    manager: bool
    moderator: bool


async def showcase(session: AsyncSession, organisation_id: int, viewer: SignedIn | None,
                   current: Callable[[], Awaitable[SignedIn | None]]) -> Showcase:
    """Only validated organisations are public; the others are a 404 for everyone but their managers and moderators,
    who see a preview (and every mission). The session's roles only say whom to ask again: when they claim a right on
    this organisation, `current` reads the roles as PostgreSQL holds them now (anonymous visitors never pay it)."""
    organisation, commune = await _load(session, organisation_id)
    read = _read(organisation, commune)
    roles = viewer.roles if viewer is not None else Roles()
    if roles.manages(organisation_id) or may_moderate(roles, commune.department_code):
        now = await current()
        roles = now.roles if now is not None else Roles()
    manager, moderator = roles.manages(organisation_id), may_moderate(roles, commune.department_code)
    if not read.online and not (manager or moderator):
        raise OrganisationNotFound
    return Showcase(read, manager, moderator)
