"""Mission use cases: creation (from scratch or from a validated template), edits and copies by the organisation's
managers, their side of the lifecycle, the mission page and the scheduled end of past missions. The referents' side
is in moderation.py, templates in templates.py, the search in search.py."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.schemas import Roles, SignedIn
from app.applications.capacity import HOLDING, Places
from app.applications.models import Application
from app.db.after_commit import Clients, after_commit
from app.geo.index import PostcodeIndex
from app.geo.models import Commune
from app.missions import minors, publishing, scope, templates
from app.missions.addresses import add_addresses, copy_addresses, points_of, replace_addresses
from app.missions.cache import mark_changed
from app.missions.exceptions import MissionForbidden as MissionForbidden  # re-exported for app/errors.py
from app.missions.exceptions import MissionNotFound as MissionNotFound
from app.missions.exceptions import MissionTransitionRefused as MissionTransitionRefused
from app.missions.models import Mission, MissionAddress
from app.missions.schemas import STATUS_LABELS, AddressRead, MissionRead
from app.missions.validation import TEXT_FIELDS, MissionInvalid, ValidMission, validate_mission
from app.organisations.models import Organisation
from app.organisations.service import is_online as organisation_is_online
from app.organisations.service import slugify
from app.partners.models import Partner
from app.reference import DOMAINS
from app.volunteers import age
from queues import enqueue
from surge.emergencies import service as emergencies

# The managers' state machine lives in publishing.py (the page's buttons and `transition` both read it).
TRANSITIONS = publishing.TRANSITIONS
ACTIONS = publishing.ACTIONS
ACTION_LABELS = {"publish": "publiée", "close": "marquée complète", "reopen": "rouverte", "finish": "terminée",
                 "cancel": "annulée", "validate": "validée", "refuse": "refusée", "suspend": "suspendue",
                 "reinstate": "rétablie"}
ONLINE_STATUSES = ("published", "full")
EDITABLE = {"draft", "awaiting_validation", "published", "full", "suspended"}
CLOSING = {"cancelled", "finished"}  # their open applications are closed and their people told, after the commit
EMERGENCY_REFUSED = ("Choisissez une urgence en cours dans la liste : celle-ci n'existe pas, n'est plus en cours "
                     "ou ne concerne pas le département de la mission.")


@dataclasses.dataclass(frozen=True, slots=True)
class MissionView:
    """The mission page: what everyone sees, and what this viewer may do with it."""

    mission: MissionRead
    manager: bool
    moderator: bool  # a referent of its department: may suspend or reinstate it
    prioritiser: bool  # a coordinator or referent of its department: may flag it priority
    status_reason: str | None  # for its managers and referents
    template_id: int | None


def is_online(status: str, organisation_status: str) -> bool:
    return status in ONLINE_STATUSES and organisation_is_online(organisation_status)


async def taken(session: AsyncSession, mission_ids: Sequence[int]) -> dict[int, int]:
    """Places held per mission as PostgreSQL has them (the mission page reads the live count from Redis)."""
    if not mission_ids:
        return {}
    rows = await session.execute(
        select(Application.mission_id, func.count())
        .where(Application.mission_id.in_(mission_ids), Application.status.in_(HOLDING))
        .group_by(Application.mission_id)
    )
    return dict(rows.all())


async def _addresses(session: AsyncSession, mission_ids: Sequence[int]) -> dict[int, list[AddressRead]]:
    rows = await session.execute(
        select(MissionAddress, Commune.name, Commune.department_code)
        .join(Commune, Commune.code == MissionAddress.commune_code)
        .where(MissionAddress.mission_id.in_(mission_ids))
        .order_by(MissionAddress.id)
    )
    found: dict[int, list[AddressRead]] = {mission_id: [] for mission_id in mission_ids}
    for address, name, department in rows:
        found[address.mission_id].append(AddressRead(
            address_line=address.address_line, postal_code=address.postal_code, commune_code=address.commune_code,
            commune_name=name, department_code=department, latitude=address.latitude, longitude=address.longitude,
        ))
    return found


async def partner_names(session: AsyncSession, missions: Iterable[Mission]) -> dict[int, str]:
    """The names of the partners whose missions these are: no query when they are all ours."""
    ids = {mission.partner_id for mission in missions if mission.partner_id is not None}
    if not ids:
        return {}
    return dict((await session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(ids)))).tuples().all())


def read(mission: Mission, organisation: Organisation, addresses: list[AddressRead],
         distance_km: float | None = None, taken: int = 0, partner_name: str | None = None) -> MissionRead:
    return MissionRead(
        id=mission.id,
        slug=slugify(mission.title),
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        title=mission.title,
        description=mission.description,
        domain=mission.domain,
        domain_label=DOMAINS[mission.domain],
        activities=list(mission.activities),
        remote=mission.remote,
        start_date=mission.start_date,
        end_date=mission.end_date,
        schedule=mission.schedule,
        places=mission.places,
        places_left=max(0, mission.places - taken),
        open_to_minors=mission.open_to_minors,
        prerequisites=mission.prerequisites,
        priority=mission.priority,
        emergency_slug=mission.emergency_slug,
        status=mission.status,
        status_label=STATUS_LABELS[mission.status],
        online=is_online(mission.status, organisation.status),
        addresses=addresses,
        distance_km=None if distance_km is None else round(distance_km, 1),
        partner_id=mission.partner_id,
        partner_name=partner_name,
    )


async def load(session: AsyncSession, mission_id: int, *, lock: bool = False) -> tuple[Mission, Organisation]:
    query = select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
    query = query.where(Mission.id == mission_id)
    row = (await session.execute(query.with_for_update(of=Mission) if lock else query)).first()
    if row is None:
        raise MissionNotFound
    return row[0], row[1]


async def read_one(session: AsyncSession, mission: Mission, organisation: Organisation) -> MissionRead:
    held = (await taken(session, [mission.id])).get(mission.id, 0)
    names = await partner_names(session, [mission])
    return read(mission, organisation, (await _addresses(session, [mission.id]))[mission.id], taken=held,
                partner_name=names.get(mission.partner_id or 0))


def _fields(valid: ValidMission) -> dict[str, Any]:
    return {key: value for key, value in dataclasses.asdict(valid).items() if key != "addresses"}


async def _check_emergency(session: AsyncSession, slug: str | None, departments: Sequence[str],
                           kept: str | None = None) -> None:
    """Only a live emergency covering the mission's departments; the one it is attached to already may stay."""
    if slug is None or slug == kept:
        return
    if slug not in {emergency.slug for emergency in await emergencies.live_covering(session, departments)}:
        raise MissionInvalid({"emergency_slug": EMERGENCY_REFUSED})


async def emergency_choices(session: AsyncSession, organisation_id: int, commune_codes: Sequence[str],
                            kept: str | None = None) -> list[tuple[str, str]]:
    """(slug, title) of the emergencies the form offers: the live ones covering the mission's departments."""
    departments = await scope.departments_for(session, organisation_id, commune_codes)
    choices = [(emergency.slug, emergency.title) for emergency in await emergencies.live_covering(session,
                                                                                                  departments)]
    if kept and kept not in {slug for slug, _ in choices}:
        try:
            title = (await emergencies.by_slug(session, kept)).title
        except emergencies.EmergencyNotFound:
            title = kept
        choices.insert(0, (kept, title))
    return choices


async def _checked(session: AsyncSession, organisation_id: int, data: dict[str, Any], postcodes: PostcodeIndex,
                   kept_emergency: str | None = None) -> tuple[ValidMission, dict[str, tuple[float, float]]]:
    """Everything refused before anything is written: the request commits what a handler returns, form errors
    included."""
    valid = validate_mission(data, postcodes, today=age.today())
    codes = [address.commune_code for address in valid.addresses]
    points = await points_of(session, codes)
    departments = await scope.departments_for(session, organisation_id, codes)
    await _check_emergency(session, valid.emergency_slug, departments, kept_emergency)
    return valid, points


async def create(session: AsyncSession, organisation_id: int, *, data: dict[str, Any], postcodes: PostcodeIndex,
                 template_id: int | None = None) -> MissionRead:
    """A draft mission of the organisation (the guard checked its manager). From a template, its text is the
    template's whatever the form sent."""
    if await session.get(Organisation, organisation_id) is None:
        raise MissionNotFound
    if template_id is not None:
        data = {**data, **templates.text_values(await templates.offered(session, template_id))}
    valid, points = await _checked(session, organisation_id, data, postcodes)
    mission = Mission(organisation_id=organisation_id, status="draft", template_id=template_id, **_fields(valid))
    session.add(mission)
    await session.flush()
    add_addresses(session, mission.id, valid.addresses, points)
    await session.flush()
    return await read_one(session, *await load(session, mission.id))


def check_manager(roles: Roles, mission: Mission) -> None:
    if not roles.manages(mission.organisation_id):
        raise MissionForbidden


@dataclasses.dataclass(frozen=True, slots=True)
class Saved:
    mission: MissionRead
    sent_back: bool  # online until this edit, its content changed: back to the referents


async def update_mission(session: AsyncSession, places: Places, mission_id: int, *, data: dict[str, Any],
                         postcodes: PostcodeIndex, roles: Roles, trusted_after: int) -> Saved:
    """A manager's edit. The priority flag is not theirs (it stays), nor is a template's text (it stays). An online
    mission whose content changes goes back to the referents, unless it would publish at once
    (`trusted_after`: settings.trusted_organisation_missions)."""
    mission, organisation = await load(session, mission_id, lock=True)
    check_manager(roles, mission)
    if mission.status not in EDITABLE:
        raise MissionTransitionRefused(
            f"Une mission {STATUS_LABELS[mission.status].lower()} ne peut plus être modifiée."
        )
    if mission.template_id is not None:
        data = {**data, **templates.text_values(mission)}
    valid, points = await _checked(session, mission.organisation_id, data, postcodes, mission.emergency_slug)
    await minors.check_edit(session, places, mission, valid, today=age.today())
    before = await publishing.Content.of(session, mission)
    for field, value in _fields(valid).items():
        setattr(mission, field, value)
    mission.updated_at = datetime.now(UTC)
    await replace_addresses(session, mission_id, valid.addresses, points)
    await session.flush()
    sent_back = False
    if mission.status in ONLINE_STATUSES:
        if (await publishing.Content.of(session, mission) != before
                and not await publishing.at_once(session, mission, trusted_after=trusted_after)):
            await change_status(session, mission, "awaiting_validation")  # offline until a referent validates it
            sent_back = True
        else:
            mark_changed(session, [mission.id])  # what the search shows changed, and maybe the places
    return Saved(await read_one(session, mission, organisation), sent_back)


@dataclasses.dataclass(frozen=True, slots=True)
class EditForm:
    mission: MissionRead
    from_template: bool  # its text is a template's: the form shows it read-only
    status_reason: str | None  # why moderation refused or suspended it


async def edit_form(session: AsyncSession, mission_id: int, roles: Roles) -> EditForm:
    mission, organisation = await load(session, mission_id)
    check_manager(roles, mission)
    return EditForm(await read_one(session, mission, organisation), mission.template_id is not None,
                    mission.status_reason)


async def duplicate(session: AsyncSession, mission_id: int, *, roles: Roles, today: date) -> MissionRead:
    """A new draft with the same text, places and addresses (and template); dates already past are left blank."""
    mission, _ = await load(session, mission_id)
    check_manager(roles, mission)
    if mission.status == "suspended":
        raise MissionTransitionRefused(
            "Cette mission est suspendue par la modération : elle ne peut pas être dupliquée. Corrigez-la "
            "(bouton « Modifier ») selon le motif indiqué, ou écrivez-en une nouvelle."
        )
    copy = Mission(
        organisation_id=mission.organisation_id, status="draft", template_id=mission.template_id,
        remote=mission.remote, schedule=mission.schedule, places=mission.places,
        start_date=None if mission.start_date is None or mission.start_date < today else mission.start_date,
        end_date=None if mission.end_date is None or mission.end_date < today else mission.end_date,
        **{field: getattr(mission, field) for field in TEXT_FIELDS},
    )
    session.add(copy)
    await session.flush()
    await copy_addresses(session, mission.id, copy.id)
    await session.flush()
    return await read_one(session, *await load(session, copy.id))


def close_applications(session: AsyncSession, mission_ids: Iterable[int]) -> None:
    """Once committed, the open applications of these cancelled or finished missions are closed, their people told."""
    for mission_id in mission_ids:
        async def close(clients: Clients, mission_id: int = mission_id) -> None:
            await asyncio.to_thread(enqueue.close_mission_applications, clients.rq_connection, mission_id)

        after_commit(session, close, key=f"close_mission_applications:{mission_id}")


async def change_status(session: AsyncSession, mission: Mission, target: str, *, reason: str | None = None) -> None:
    """Every status change goes through here: online and offline through the cache's `mark_changed`."""
    mission.status = target
    mission.status_reason = reason
    mission.status_changed_at = datetime.now(UTC)
    await session.flush()
    mark_changed(session, [mission.id])
    if target in CLOSING:
        close_applications(session, [mission.id])


def refusal(mission: Mission, action: str) -> MissionTransitionRefused:
    return MissionTransitionRefused(refused_message(mission.status, action), notice="etat")


def refused_message(status: str, action: str) -> str:
    label = STATUS_LABELS[status].lower()
    return f"Cette mission est déjà « {label} » : elle ne peut pas être {ACTION_LABELS[action]}."


async def transition(session: AsyncSession, mission_id: int, *, action: str, roles: Roles,
                     trusted_after: int) -> MissionRead:
    """A manager of the mission's organisation moves it along its lifecycle (allowed transitions only).
    `trusted_after`: settings.trusted_organisation_missions."""
    mission, organisation = await load(session, mission_id, lock=True)
    check_manager(roles, mission)
    if action not in publishing.allowed(mission.status).values():
        raise refusal(mission, action)
    target = TRANSITIONS[(mission.status, action)]
    if action == "publish":
        if not organisation_is_online(organisation.status):
            raise MissionTransitionRefused(
                "La structure doit être validée par la coordination avant de publier ses missions.", notice="structure"
            )
        if mission.start_date is None and mission.schedule is None:
            raise MissionTransitionRefused(
                "Indiquez une date de début ou le rythme de la mission (bouton « Modifier ») avant de la publier.",
                notice="dates",
            )
        target = await publishing.target(session, mission, trusted_after=trusted_after)
    await change_status(session, mission, target)  # a refusal's reason has been answered by publishing again
    return await read_one(session, mission, organisation)


def allowed_actions(status: str) -> dict[str, str]:
    """The managers' buttons for a mission in this status: French path segment → action."""
    return publishing.allowed(status)


async def mission_page(session: AsyncSession, mission_id: int, viewer: SignedIn | None,
                       current: Callable[[], Awaitable[SignedIn | None]]) -> MissionView:
    """Offline missions are a 404 for everyone but their managers and the referents of their department. The
    session's roles only say whom to ask again: when they claim a right on this mission, `current` reads the roles
    as PostgreSQL holds them now (one query; anonymous visitors and volunteers never pay it)."""
    mission, organisation = await load(session, mission_id)
    roles = viewer.roles if viewer is not None else Roles()
    department = await scope.department_of(session, mission_id)
    if roles.manages(mission.organisation_id) or roles.moderates(department) or roles.coordinates(department):
        now = await current()
        roles = now.roles if now is not None else Roles()
    manager, moderator = roles.manages(mission.organisation_id), roles.moderates(department)
    read_mission = await read_one(session, mission, organisation)
    if not read_mission.online and not (manager or moderator):
        raise MissionNotFound
    return MissionView(
        mission=read_mission, manager=manager, moderator=moderator,
        prioritiser=moderator or roles.coordinates(department),
        status_reason=mission.status_reason if manager or moderator else None, template_id=mission.template_id,
    )


async def finish_past_missions(session: AsyncSession, *, today: date) -> int:
    """Ends the published and full missions whose end date has passed; returns how many."""
    result = await session.execute(
        update(Mission)
        .where(Mission.status.in_(ONLINE_STATUSES), Mission.end_date < today)
        .values(status="finished", status_changed_at=datetime.now(UTC))
        .returning(Mission.id)
    )
    finished = [mission_id for (mission_id,) in result.all()]
    if finished:
        mark_changed(session, finished)
        close_applications(session, finished)
    return len(finished)
