"""Application use cases: apply and cancel (volunteers), accept / decline / mark done (managers), closing those of
a cancelled or finished mission (a job), the lists both see, and saving queued changes into PostgreSQL (workers).

Applying and every status change go through Redis first (capacity.py), atomically across web processes; the
lists read PostgreSQL for the people and messages, and Redis for the current status, so a change shows at once
even before the drain has written it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from redis.asyncio import Redis
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.accounts.schemas import Roles
from app.applications.capacity import ApplicationEvent, Applied, Moved, Places, SavedApplication
from app.applications.models import Application
from app.applications.schemas import SAVING_LABELS, STATUS_LABELS, ApplicationRead, OwnApplication
from app.applications.statuses import CANCELLABLE
from app.applications.statuses import ApplicationStatus as Status
from app.applications.validation import application_message, decline_reason
from app.db.base import unit_of_work
from app.geo.models import Commune
from app.missions.models import Mission
from app.missions.service import MissionForbidden, MissionNotFound
from app.organisations.models import Organisation
from app.organisations.service import is_online as organisation_is_online
from app.organisations.service import slugify
from app.volunteers import age
from app.volunteers.models import Volunteer

# decision → (target status, statuses it may follow, event kind)
DECISIONS = {
    "accepter": (Status.ACCEPTED, (Status.PENDING, Status.PROPOSED), "accepted"),
    "refuser": (Status.DECLINED, (Status.PENDING, Status.ACCEPTED, Status.WAITLISTED, Status.PROPOSED), "declined"),
    "terminer": (Status.DONE, (Status.ACCEPTED,), "done"),
}
FINAL_DECISIONS = frozenset({"refuser", "terminer"})  # cannot be undone: the manager confirms first


def decisions_for(status: str) -> tuple[str, ...]:
    """The decisions an application in this status allows: the applicants page offers these, `move` refuses others."""
    return tuple(decision for decision, (_, allowed, _) in DECISIONS.items() if status in allowed)


class ApplicationsUnavailable(Exception):
    """Redis kept answering that the mission's state is stale (changes racing the seed): try again shortly."""


class ApplicationsBacklogged(Exception):
    """The queue of application changes is over its bound: the person should come back in a moment."""


def mission_state(mission_status: str, organisation_status: str) -> str:
    if not organisation_is_online(organisation_status):
        return "0"
    return {"published": "1", "full": "w"}.get(mission_status, "0")


async def seed(places: Places, engine: AsyncEngine, mission_id: int) -> bool:
    """Gives Redis the mission's capacity and state as PostgreSQL has them now (and the applications with their
    volunteers' 18th birthdays, when Redis has none for it); returns whether promotions were queued (the caller asks
    for a drain)."""
    epoch = await places.epoch(mission_id)  # read before PostgreSQL: a change committed after it makes the seed stale
    knows = await places.knows(mission_id)
    async with unit_of_work(engine) as session:
        row = (await session.execute(
            select(Mission.places, Mission.status, Organisation.status, Mission.open_to_minors, Mission.start_date,
                   Mission.partner_id)
            .join(Organisation, Organisation.id == Mission.organisation_id).where(Mission.id == mission_id)
        )).first()
        if row is None:
            raise MissionNotFound
        highest = int(await session.scalar(
            select(func.coalesce(func.max(Application.version), 0)).where(Application.mission_id == mission_id)
        ) or 0)
        saved: list[SavedApplication] = []
        if not knows:
            saved = [SavedApplication(volunteer_id, status, version, age.adult_on(birth_date))
                     for volunteer_id, status, version, birth_date in await session.execute(
                         select(Application.volunteer_id, Application.status, Application.version,
                                Volunteer.birth_date)
                         .join(Volunteer, Volunteer.id == Application.volunteer_id)
                         .where(Application.mission_id == mission_id))]
    places_count, mission_status, organisation_status, open_to_minors, start_date, partner_id = row
    # A partner's mission is applied to on the partner's site: closed to our applications and proposals.
    state = "0" if partner_id is not None else mission_state(mission_status, organisation_status)
    return await places.seed(mission_id, capacity=places_count, state=state, epoch=epoch, highest_version=highest,
                             saved=saved, open_to_minors=open_to_minors, start_date=start_date)


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: str
    drain_needed: bool


async def apply(places: Places, engine: AsyncEngine, mission_id: int, volunteer_id: int,
                message: object, *, adult_on: date | None, today: date | None = None) -> Outcome:
    """Redis only, unless the mission changed since Redis last read it (then one query, once per change).
    `adult_on`: the volunteer's 18th birthday, from the session; a mission closed to minors answers "minor" to
    someone younger on its start date (or today, France's day) and nothing is written."""
    text_message = application_message(message)  # refused before Redis: the drain must be able to save it
    drain = False
    for _ in range(3):
        applied: Applied = await places.apply(mission_id, volunteer_id, text_message, adult_on=adult_on,
                                              today=today or age.today())
        if applied.outcome == "backlogged":
            raise ApplicationsBacklogged
        if applied.outcome != "unknown":
            declined = applied.outcome == "exists" and applied.current == Status.DECLINED
            outcome = Status.DECLINED if declined else applied.outcome
            return Outcome(outcome, drain or applied.drain_needed)
        drain = await seed(places, engine, mission_id) or drain
    raise ApplicationsUnavailable


async def move(places: Places, engine: AsyncEngine, mission_id: int, volunteer_id: int, *, target: Status,
               allowed: tuple[Status, ...], kind: str, reason: str = "") -> tuple[Moved, bool]:
    drain = False
    for _ in range(3):
        moved = await places.move(mission_id, volunteer_id, target=target, allowed=allowed, kind=kind, reason=reason)
        if moved.outcome != "unknown":
            return moved, drain or moved.drain_needed or moved.promoted > 0
        drain = await seed(places, engine, mission_id) or drain
    raise ApplicationsUnavailable


# The volunteer's own answers, from « Mes candidatures »: (target status, statuses it may follow, event kind, outcome).
VOLUNTEER_ANSWERS = {
    "annuler": (Status.CANCELLED, CANCELLABLE, "cancelled", "cancelled"),  # the place goes to the first wait-listed
    "confirmer": (Status.ACCEPTED, (Status.PROPOSED,), "confirmed", "confirmed"),  # a coordinator's proposal
}


async def answer(places: Places, engine: AsyncEngine, mission_id: int, volunteer_id: int, action: str
                 ) -> tuple[str, bool]:
    """(outcome for the page — "inchange" when the status no longer allows it, "minor" when a proposal is confirmed
    by someone too young for the mission as it stands now —, drain needed?)"""
    target, allowed, kind, outcome = VOLUNTEER_ANSWERS[action]
    moved, drain = await move(places, engine, mission_id, volunteer_id, target=target, allowed=allowed, kind=kind)
    if moved.outcome == "minor":
        return "minor", drain
    return (outcome if moved.outcome == "done" else "inchange"), drain


async def withdraw_everywhere(places: Places, engine: AsyncEngine, volunteer_id: int,
                              mission_ids: Iterable[int]) -> bool:
    """Before an account is deleted: gives back every place the volunteer holds (the wait-list moves up) and leaves
    the wait-lists. Returns whether a drain is needed (the caller asks for one after its own commit)."""
    drain = False
    for mission_id in dict.fromkeys(mission_ids):
        try:
            _, needs = await move(places, engine, mission_id, volunteer_id, target=Status.CANCELLED,
                                  allowed=CANCELLABLE, kind="withdrawn")
        except MissionNotFound:
            continue  # the mission was deleted meanwhile
        drain = drain or needs
    return drain


# A mission's end → (the statuses it closes, event kind, the reason its volunteers read). Finished, the accepted
# stay: the organisation marks them done.
CLOSINGS = {
    "cancelled": ((Status.PENDING, Status.WAITLISTED, Status.PROPOSED, Status.ACCEPTED), "mission_cancelled",
                  "La mission a été annulée par la structure."),
    "finished": ((Status.PENDING, Status.WAITLISTED, Status.PROPOSED), "mission_finished", "La mission est terminée."),
}
# The closing's kind → the e-mail that tells the volunteer.
CLOSING_MAILS = {"mission_cancelled": "application_mission_cancelled",
                 "mission_finished": "application_mission_finished"}


@dataclass(frozen=True, slots=True)
class Closing:
    closed: int
    drain_needed: bool


async def close_applications(places: Places, engine: AsyncEngine, mission_id: int) -> Closing:
    """Once a mission's cancellation or end is committed: its open applications close through Redis like any status
    change (the drain writes them), and their volunteers are filed to be told (closing_mails). Re-runnable: what is
    closed already is left alone; a mission that did not end (or is gone) closes nothing."""
    async with unit_of_work(engine) as session:
        mission_status = await session.scalar(select(Mission.status).where(Mission.id == mission_id))
    if mission_status not in CLOSINGS:
        return Closing(0, False)
    allowed, kind, reason = CLOSINGS[mission_status]
    closed, drain = 0, False
    for _ in range(3):
        try:
            drain = await seed(places, engine, mission_id) or drain  # Redis as PostgreSQL has it now: offline
        except MissionNotFound:
            return Closing(closed, drain)
        open_ones = sorted(volunteer_id for volunteer_id, status in (await places.mission_statuses(mission_id)).items()
                           if status in allowed)
        result = await places.close(mission_id, open_ones, allowed=allowed, kind=kind, reason=reason)
        closed, drain = closed + result.count, drain or result.drain_needed
        if result.outcome != "unknown":
            return Closing(closed, drain)
    raise ApplicationsUnavailable


async def unclosed_missions(places: Places, engine: AsyncEngine, *, since: datetime) -> list[int]:
    """The missions cancelled or finished since `since` whose closing did not end: applications PostgreSQL still
    holds open, or people Redis filed to be told and not told yet (`closing`). A closing job lost or failed for good
    leaves exactly these; running close_applications again on them is harmless."""
    still_open = or_(*(and_(Mission.status == status, Application.status.in_(allowed))
                       for status, (allowed, _, _) in CLOSINGS.items()))
    async with unit_of_work(engine) as session:
        ended = list((await session.scalars(
            select(Mission.id).where(Mission.status.in_(CLOSINGS), Mission.status_changed_at >= since)
        )).all())
        with_open = set((await session.scalars(
            select(Application.mission_id).join(Mission, Mission.id == Application.mission_id)
            .where(Mission.status_changed_at >= since, still_open).distinct()
        )).all())
    return sorted(with_open | await places.closing_left(ended))


async def closing_mails(places: Places, mission_id: int) -> list[tuple[int, int, str, str]]:
    """The e-mails owed for the mission's closed applications: (mission, volunteer, kind, idempotency key)."""
    return [(mission_id, volunteer_id, CLOSING_MAILS[kind], f"mission_closed:{mission_id}:{volunteer_id}")
            for volunteer_id, kind in sorted((await places.closing_mails(mission_id)).items())
            if kind in CLOSING_MAILS]


async def require_manager(session: AsyncSession, mission_id: int, roles: Roles) -> None:
    """Raises MissionNotFound or MissionForbidden unless these roles manage the mission's organisation."""
    await _managed_mission(session, mission_id, roles)


async def _managed_mission(session: AsyncSession, mission_id: int, roles: Roles) -> tuple[Mission, Organisation]:
    row = (await session.execute(
        select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Mission.id == mission_id)
    )).first()
    if row is None:
        raise MissionNotFound
    if not roles.manages(row[0].organisation_id):
        raise MissionForbidden
    return row[0], row[1]


async def decide(places: Places, engine: AsyncEngine, session: AsyncSession, mission_id: int, *, roles: Roles,
                 decision: str, volunteer_ids: Iterable[int], reason: str = "") -> tuple[int, int, bool]:
    """A manager's decision on one or many applicants: (applied, refused because of their status, drain needed)."""
    await _managed_mission(session, mission_id, roles)
    reason = decline_reason(reason)
    target, allowed, kind = DECISIONS[decision]
    done = refused = 0
    drain = False
    for volunteer_id in dict.fromkeys(volunteer_ids):
        moved, needs = await move(places, engine, mission_id, volunteer_id, target=target, allowed=allowed, kind=kind,
                                  reason=reason)
        drain = drain or needs
        if moved.outcome == "done":
            done += 1
        else:
            refused += 1
    return done, refused, drain


def _mission_path(mission: Mission) -> str:
    return f"/missions/{mission.id}-{slugify(mission.title)}"


def _read(application: Application, mission: Mission, organisation: Organisation, status: str,
          **person: object) -> ApplicationRead:
    return ApplicationRead(
        mission_id=mission.id, mission_title=mission.title,
        mission_path=_mission_path(mission), organisation_name=organisation.name,
        volunteer_id=application.volunteer_id, status=status,
        status_label=STATUS_LABELS[status], applied_at=application.applied_at, message=application.message,
        reason=application.reason, **person,  # type: ignore[arg-type]
    )


async def of_volunteer(session: AsyncSession, redis: Redis, volunteer_id: int) -> list[ApplicationRead]:
    """The volunteer's applications: those PostgreSQL holds, with their current status from Redis, and first those
    Redis accepted that the drain has not written yet (`saving`), so an application shows the moment it is sent."""
    places = Places(redis)
    rows = (await session.execute(
        select(Application, Mission, Organisation)
        .join(Mission, Mission.id == Application.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(Application.volunteer_id == volunteer_id)
        .order_by(Application.applied_at.desc())
    )).all()
    saved = {mission.id for _, mission, _ in rows}
    queued = sorted((await places.queued_missions(volunteer_id)) - saved)
    current = await places.statuses([(mission_id, volunteer_id) for mission_id in [*saved, *queued]])
    unsaved = {mission_id: current[(mission_id, volunteer_id)] for mission_id in queued
               if current.get((mission_id, volunteer_id)) not in (None, Status.CANCELLED)}
    pending: list[ApplicationRead] = []
    if unsaved:
        now = datetime.now(UTC)
        for mission, organisation in (await session.execute(
            select(Mission, Organisation).join(Organisation, Organisation.id == Mission.organisation_id)
            .where(Mission.id.in_(list(unsaved))).order_by(Mission.id.desc())
        )).all():
            status = unsaved[mission.id]
            pending.append(ApplicationRead(
                mission_id=mission.id, mission_title=mission.title, mission_path=_mission_path(mission),
                organisation_name=organisation.name, volunteer_id=volunteer_id, status=status,
                status_label=SAVING_LABELS.get(status, STATUS_LABELS.get(status, status)), applied_at=now,
                saving=True,
            ))
    return pending + [
        _read(application, mission, organisation, current.get((mission.id, volunteer_id), application.status))
        for application, mission, organisation in rows
    ]


async def mission_title(session: AsyncSession, mission_id: int) -> str | None:
    title: str | None = await session.scalar(select(Mission.title).where(Mission.id == mission_id))
    return title


async def own_application(session: AsyncSession, redis: Redis, mission_id: int, volunteer_id: int
                          ) -> OwnApplication | None:
    """This volunteer's application to this mission, whether saved or only accepted: Redis (ahead of PostgreSQL by at
    most one drain) first, then PostgreSQL for a mission Redis does not hold."""
    current = (await Places(redis).statuses([(mission_id, volunteer_id)])).get((mission_id, volunteer_id))
    saved = await session.scalar(select(Application.status).where(
        Application.mission_id == mission_id, Application.volunteer_id == volunteer_id))
    status = current or saved
    if status is None:
        return None
    labels = STATUS_LABELS if saved is not None else SAVING_LABELS
    return OwnApplication(status=status, status_label=labels.get(status, STATUS_LABELS.get(status, status)))


async def of_mission(session: AsyncSession, redis: Redis, mission_id: int, roles: Roles
                     ) -> tuple[Mission, list[ApplicationRead]]:
    """The applicants of a mission, for its managers only."""
    mission, organisation = await _managed_mission(session, mission_id, roles)
    rows = (await session.execute(
        select(Application, Volunteer, Commune.name)
        .join(Volunteer, Volunteer.id == Application.volunteer_id)
        .join(Commune, Commune.code == Volunteer.commune_code)
        .where(Application.mission_id == mission_id, ~Volunteer.unconfirmed)  # held back: shown to nobody
        .order_by(Application.applied_at, Application.id)
    )).all()
    current = await Places(redis).statuses([(mission_id, application.volunteer_id) for application, _, _ in rows])
    return mission, [
        _read(application, mission, organisation, current.get((mission_id, application.volunteer_id),
                                                               application.status),
              first_name=volunteer.first_name, last_name=volunteer.last_name, email=volunteer.email,
              phone=volunteer.phone, commune=commune)
        for application, volunteer, commune in rows
    ]


async def taken_places(places: Places, engine: AsyncEngine, mission_id: int) -> int:
    """Places held now: from Redis, seeding it first if it does not know the mission yet."""
    taken = await places.taken(mission_id)
    if taken is None:
        await seed(places, engine, mission_id)
        taken = await places.taken(mission_id) or 0
    return taken


# --- the drain (workers) ----------------------------------------------------------------------------------------

UPSERT = text("""
INSERT INTO applications (mission_id, volunteer_id, status, version, message, reason, applied_at, updated_at,
                          dispatch_run_id, expires_at)
SELECT e.m, e.v, e.s, e.n, nullif(e.msg, ''), nullif(e.r, ''), to_timestamp(e.applied), to_timestamp(e.t),
       nullif(e.d, 0), CASE WHEN e.x > 0 THEN to_timestamp(e.x) END
FROM unnest(CAST(:m AS bigint[]), CAST(:v AS bigint[]), CAST(:s AS text[]), CAST(:n AS bigint[]),
            CAST(:msg AS text[]), CAST(:r AS text[]), CAST(:applied AS float8[]), CAST(:t AS float8[]),
            CAST(:d AS bigint[]), CAST(:x AS float8[]))
     AS e(m, v, s, n, msg, r, applied, t, d, x)
JOIN missions ON missions.id = e.m
JOIN volunteers ON volunteers.id = e.v
ON CONFLICT (mission_id, volunteer_id) DO UPDATE SET
  status = excluded.status,
  version = excluded.version,
  message = coalesce(excluded.message, applications.message),
  reason = excluded.reason,
  applied_at = CASE WHEN applications.status = 'cancelled' AND excluded.status IN ('pending', 'waitlisted')
                    THEN excluded.applied_at ELSE applications.applied_at END,
  -- applying again after a cancellation is a new application: the organisation is told and reminded of it anew
  announced_at = CASE WHEN applications.status = 'cancelled' AND excluded.status IN ('pending', 'waitlisted')
                      THEN NULL ELSE applications.announced_at END,
  reminded_at = CASE WHEN applications.status = 'cancelled' AND excluded.status IN ('pending', 'waitlisted')
                     THEN NULL ELSE applications.reminded_at END,
  updated_at = excluded.updated_at,
  -- a proposal keeps its run and expiry once answered (the audit); applying anew makes it a plain application
  dispatch_run_id = CASE WHEN excluded.dispatch_run_id IS NOT NULL THEN excluded.dispatch_run_id
                         WHEN excluded.status IN ('pending', 'waitlisted') THEN NULL
                         ELSE applications.dispatch_run_id END,
  expires_at = CASE WHEN excluded.dispatch_run_id IS NOT NULL THEN excluded.expires_at
                    WHEN excluded.status IN ('pending', 'waitlisted') THEN NULL
                    ELSE applications.expires_at END
WHERE applications.version < excluded.version
""")


async def save_events(session: AsyncSession, events: Sequence[ApplicationEvent]) -> None:
    """Writes a batch of queued changes in one statement; idempotent and order-free: per application, the highest
    version wins, whatever the order or number of times the events arrive. Changes for a mission or volunteer
    deleted since are dropped (the joins), never resurrected."""
    latest: dict[tuple[int, int], ApplicationEvent] = {}
    message: dict[tuple[int, int], str] = {}
    applied: dict[tuple[int, int], float] = {}
    proposal: dict[tuple[int, int], tuple[int, float]] = {}  # run and expiry, when the batch holds the proposal
    for event in sorted(events, key=lambda event: event.version):
        key = (event.mission_id, event.volunteer_id)
        latest[key] = event
        if event.kind == "applied":
            message[key] = event.message
            applied[key] = event.at
        if event.kind == "proposed":
            proposal[key] = (event.run_id, event.expires_at)
    if not latest:
        return
    keys, rows = list(latest), list(latest.values())
    await session.execute(UPSERT, {
        "m": [event.mission_id for event in rows], "v": [event.volunteer_id for event in rows],
        "s": [str(event.status) for event in rows], "n": [event.version for event in rows],
        "msg": [message.get(key, "") for key in keys], "r": [event.reason for event in rows],
        "applied": [applied.get(key, event.at) for key, event in latest.items()], "t": [event.at for event in rows],
        "d": [proposal.get(key, (0, 0.0))[0] for key in keys], "x": [proposal.get(key, (0, 0.0))[1] for key in keys],
    })
