"""Young people's accounts: created from a referent's invitation or by signing up into an open cohort, on the
platform's accounts (`users`), so that the same address can also be a volunteer's. Neither way tells a visitor
whether an address is registered: the pages answer the same, and the e-mail says the rest. A minor waits for their
guardian's consent (app/youth/consent.py); `can_choose` is the gate every later step (choosing a mission) asks."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.models import User
from app.accounts.ratelimit import SignInLimiter
from app.accounts.roles import roles_in
from app.accounts.schemas import SignedIn
from app.accounts.service import SignInRateLimited
from app.db.after_commit import Clients, after_commit
from app.formats import PARIS
from app.geo.models import Commune
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.volunteers import confirmation
from app.volunteers.models import Volunteer
from app.youth import consent, links
from app.youth.cohorts import deadline_of
from app.youth.links import Purpose, YouthLinkExpired
from app.youth.models import (
    Cohort,
    GuardianConsent,
    PlacementStatus,
    YoungPerson,
    YouthChoice,
    YouthInvitation,
    YouthOffer,
    YouthPlacement,
    YouthSource,
    YouthStatus,
)
from app.youth.validation import ValidYouth, age_error, is_minor
from queues import enqueue

SIGNUP_PATH = "/snu/inscription/confirmer"
INVITATION_PATH = "/snu/invitation"
SIGNUP_LINK_SECONDS = 24 * 3600
INVITATION_DAYS = 21
PREFIX = "renfort:youth:"


class YouthAlreadyRegistered(Exception):
    """This account has a youth record already (one per person)."""


class CohortClosed(Exception):
    """The cohort is gone, closed to sign-ups, or the young person's age no longer fits it; `message` is French."""

    def __init__(self, message: str) -> None:
        super().__init__("cohort closed")
        self.message = message


def can_choose(young: YoungPerson) -> bool:
    """Whether this young person may choose a mission: of age, or their guardian consented."""
    return young.status == YouthStatus.READY


class SignupRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A sign-up waiting for its address to be confirmed, kept in Redis under an opaque key (never in a payload)."""

    cohort_id: int
    email: str
    email_normalized: str
    first_name: str
    last_name: str
    birth_date: date
    postal_code: str
    commune_code: str
    guardian_name: str | None = None
    guardian_email: str | None = None


def signup_key(key: str) -> str:
    return f"{PREFIX}signup:{key}"


async def request_signup(redis: Redis, rq_connection: SyncRedis, limiter: SignInLimiter, *, cohort_id: int,
                         valid: ValidYouth, client_ip: str) -> None:
    """Keeps the sign-up in Redis and queues its e-mail; the same work whether the address is known or not (the job
    decides between a confirmation link and a reminder to sign in). Over the per-address limit nothing is queued but
    the caller answers the same. Raises `SignInRateLimited` past the per-client limit."""
    verdict = await limiter.check(client_ip=client_ip, email_normalized=valid.email_normalized)
    if verdict.outcome == "ip":
        raise SignInRateLimited(verdict.retry_after)
    if verdict.outcome == "email":
        return
    key = tokens.new_id()
    record = SignupRecord(cohort_id=cohort_id, email=valid.email, email_normalized=valid.email_normalized,
                          first_name=valid.first_name, last_name=valid.last_name, birth_date=valid.birth_date,
                          postal_code=valid.postal_code, commune_code=valid.commune_code,
                          guardian_name=valid.guardian_name, guardian_email=valid.guardian_email)
    await redis.set(signup_key(key), msgspec.json.encode(record), ex=SIGNUP_LINK_SECONDS)
    await asyncio.to_thread(enqueue.send_youth_signup_mail, rq_connection, key)


async def has_youth_record(session: AsyncSession, email_normalized: str) -> bool:
    return await session.scalar(
        select(YoungPerson.id).join(User, User.id == YoungPerson.user_id)
        .where(User.email_normalized == email_normalized)
    ) is not None


@dataclass(frozen=True, slots=True)
class SignupMail:
    kind: str  # youth_signup_confirm | youth_signup_known
    email_normalized: str
    context: dict[str, object]
    lapses_at: float


async def prepare_signup_mail(session: AsyncSession, redis: Redis, *, secret: str, key: str, base_url: str
                              ) -> SignupMail | None:
    """The e-mail a sign-up becomes: its confirmation link, or, for an address that has a youth account already, a
    reminder to sign in. None once the request has lapsed."""
    raw = await redis.get(signup_key(key))
    left_ms = await redis.pttl(signup_key(key))
    if raw is None or left_ms <= 0:
        return None
    record = msgspec.json.decode(raw, type=SignupRecord)
    lapses_at = datetime.now(UTC).timestamp() + left_ms / 1000
    if await has_youth_record(session, record.email_normalized):
        await redis.delete(signup_key(key))
        return SignupMail("youth_signup_known", record.email_normalized, {"base_url": base_url}, lapses_at)
    token = links.mint(secret, Purpose.SIGNUP, key, int(lapses_at))
    context = {"first_name": record.first_name, "link": links.url(base_url, SIGNUP_PATH, token),
               "hours": SIGNUP_LINK_SECONDS // 3600, "base_url": base_url}
    return SignupMail("youth_signup_confirm", record.email_normalized, context, lapses_at)


async def check_signup(redis: Redis, *, secret: str, token: object, now: float) -> None:
    """For the page with the button: a genuine, unexpired, unused link. Consumes nothing."""
    link = links.read(secret, Purpose.SIGNUP, token, now)
    if not await redis.exists(signup_key(link.subject)):
        raise YouthLinkExpired


@dataclass(frozen=True, slots=True)
class Created:
    young_person_id: int
    user_id: int
    status: YouthStatus
    # Only for an address that had no account at all: the link may sign it in. An address with an account signs in
    # as usual (a short-lived sign-in link), never with a days-long link.
    account: SignedIn | None


async def confirm_signup(session: AsyncSession, redis: Redis, *, secret: str, token: object, now: float) -> Created:
    """Consumes the sign-up (a second click finds nothing) and creates the account. Raises `YouthLinkInvalid`,
    `YouthLinkExpired`, `CohortClosed` or `YouthAlreadyRegistered`."""
    link = links.read(secret, Purpose.SIGNUP, token, now)
    raw = await redis.getdel(signup_key(link.subject))
    if raw is None:
        raise YouthLinkExpired
    record = msgspec.json.decode(raw, type=SignupRecord)
    cohort = await session.get(Cohort, record.cohort_id)
    if cohort is None or not cohort.open_for_signup:
        raise CohortClosed("Les inscriptions à cette cohorte sont closes. Choisissez une autre cohorte ouverte.")
    problem = age_error(record.birth_date, cohort)
    if problem is not None:
        raise CohortClosed(problem)
    valid = ValidYouth(first_name=record.first_name, last_name=record.last_name, birth_date=record.birth_date,
                       postal_code=record.postal_code, commune_code=record.commune_code, email=record.email,
                       email_normalized=record.email_normalized, guardian_name=record.guardian_name,
                       guardian_email=record.guardian_email)
    return await create_young_person(session, cohort=cohort, valid=valid, email=record.email,
                                     email_normalized=record.email_normalized, source=YouthSource.SIGNUP, now=now)


async def create_young_person(session: AsyncSession, *, cohort: Cohort, valid: ValidYouth, email: str,
                              email_normalized: str, source: YouthSource, now: float) -> Created:
    """The account (created if the address has none), the youth record, and for a minor the guardian's consent
    request. Raises `YouthAlreadyRegistered`."""
    volunteer = await session.scalar(select(Volunteer.id).where(Volunteer.email_normalized == email_normalized))
    if volunteer is not None:
        await confirmation.confirm_address(session, email_normalized)  # the e-mailed link proved the address
    created = await session.scalar(
        insert(User).values(email=email, email_normalized=email_normalized,
                            last_sign_in_at=None if volunteer is not None else datetime.fromtimestamp(now, UTC))
        .on_conflict_do_nothing(index_elements=[User.email_normalized]).returning(User.id)
    )
    user_id = created if created is not None else await session.scalar(
        select(User.id).where(User.email_normalized == email_normalized))
    if user_id is None:
        raise YouthLinkExpired  # the account was deleted at that very moment
    department_code = await session.scalar(select(Commune.department_code).where(Commune.code == valid.commune_code))
    today = datetime.fromtimestamp(now, PARIS).date()  # France's day, as every age rule counts
    # A minor today needs their guardian's consent, even one of age by the time missions start: they choose now.
    minor = is_minor(valid.birth_date, today)
    status = YouthStatus.AWAITING_CONSENT if minor else YouthStatus.READY
    young_person_id = await session.scalar(
        insert(YoungPerson).values(
            user_id=user_id, cohort_id=cohort.id, first_name=valid.first_name, last_name=valid.last_name,
            birth_date=valid.birth_date, department_code=department_code, postal_code=valid.postal_code,
            commune_code=valid.commune_code, status=status.value, source=source.value,
        ).on_conflict_do_nothing(index_elements=[YoungPerson.user_id]).returning(YoungPerson.id)
    )
    if young_person_id is None:
        raise YouthAlreadyRegistered
    if minor:
        assert valid.guardian_name and valid.guardian_email  # validation requires both for a minor
        await consent.request_consent(session, young_person_id=young_person_id, guardian_name=valid.guardian_name,
                                      guardian_email=valid.guardian_email)
    account = None
    if created is not None and volunteer is None:
        roles = await roles_in(session, user_id, volunteer=False)
        assert roles is not None
        account = SignedIn(user_id=user_id, email=email, roles=roles, since=int(now))
    return Created(young_person_id=young_person_id, user_id=user_id, status=status, account=account)


async def create_invitation(session: AsyncSession, *, cohort_id: int, department_code: str, email: str,
                            email_normalized: str, first_name: str, last_name: str, invited_by: int) -> int:
    """Records the invitation; once committed, its e-mail job is queued (with the invitation's id only). The referent
    is told the same whether the address has an account or not."""
    expires_at = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()) + INVITATION_DAYS * 86_400, UTC)
    invitation_id = int(await session.scalar(
        insert(YouthInvitation).values(
            cohort_id=cohort_id, department_code=department_code, email=email, email_normalized=email_normalized,
            first_name=first_name, last_name=last_name, invited_by=invited_by, expires_at=expires_at,
        ).returning(YouthInvitation.id)
    ) or 0)

    async def send(clients: Clients) -> None:
        await asyncio.to_thread(enqueue.send_youth_invitation_mail, clients.rq_connection, invitation_id)

    after_commit(session, send)
    return invitation_id


def invitation_url(base_url: str, secret: str, invitation_id: int, expires_at: datetime) -> str:
    token = links.mint(secret, Purpose.INVITATION, invitation_id, int(expires_at.timestamp()))
    return links.url(base_url, INVITATION_PATH, token)


def _usable(invitation_id: int) -> ColumnElement[bool]:
    return and_(YouthInvitation.id == invitation_id, YouthInvitation.accepted_at.is_(None),
                YouthInvitation.expires_at > func.now())


@dataclass(frozen=True, slots=True)
class InvitationView:
    invitation_id: int
    cohort: Cohort
    email: str
    email_normalized: str
    first_name: str
    last_name: str


async def check_invitation(session: AsyncSession, *, secret: str, token: object, now: float) -> InvitationView:
    """A genuine, unexpired, unused invitation. Consumes nothing. Raises `YouthLinkInvalid` or `YouthLinkExpired`."""
    invitation_id = links.read_id(secret, Purpose.INVITATION, token, now)
    row = (await session.execute(
        select(YouthInvitation, Cohort).join(Cohort, Cohort.id == YouthInvitation.cohort_id)
        .where(_usable(invitation_id))
    )).first()
    if row is None:
        raise YouthLinkExpired
    invitation, cohort = row
    return InvitationView(invitation_id=invitation.id, cohort=cohort, email=invitation.email,
                          email_normalized=invitation.email_normalized, first_name=invitation.first_name,
                          last_name=invitation.last_name)


async def accept_invitation(session: AsyncSession, *, invitation: InvitationView, valid: ValidYouth, now: float
                            ) -> Created:
    """Consumes the invitation (a second use, even concurrent, finds nothing) and creates the account. Raises
    `YouthLinkExpired` or `YouthAlreadyRegistered`."""
    consumed = await session.scalar(
        update(YouthInvitation).where(_usable(invitation.invitation_id)).values(accepted_at=func.now())
        .returning(YouthInvitation.id)
    )
    if consumed is None:
        raise YouthLinkExpired
    return await create_young_person(session, cohort=invitation.cohort, valid=valid, email=invitation.email,
                                     email_normalized=invitation.email_normalized, source=YouthSource.INVITATION,
                                     now=now)


@dataclass(frozen=True, slots=True)
class Home:
    """What the young person's home page shows."""

    first_name: str
    status: YouthStatus
    cohort_name: str
    stay_start: date
    stay_end: date
    missions_start: date
    missions_end: date
    choose_by: date | None
    guardian_name: str | None  # for a minor: the guardian asked
    can_choose: bool
    choices: int = 0  # how many missions they ranked
    deadline_passed: bool = False  # the choose_by day is over, in France
    placement: PlacementSummary | None = None  # the mission an allocation placed them on


@dataclass(frozen=True, slots=True)
class PlacementSummary:
    title: str
    organisation_name: str
    start_date: date
    end_date: date
    hours: int
    status: str  # placed | completed


async def young_person_of(session: AsyncSession, user_id: int) -> YoungPerson | None:
    return await session.scalar(select(YoungPerson).where(YoungPerson.user_id == user_id))


async def home(session: AsyncSession, user_id: int) -> Home | None:
    young = await young_person_of(session, user_id)
    if young is None:
        return None
    cohort = await session.get(Cohort, young.cohort_id)
    assert cohort is not None
    guardian = await session.scalar(
        select(GuardianConsent.guardian_name).where(GuardianConsent.young_person_id == young.id)
        .order_by(GuardianConsent.id.desc()).limit(1)
    )
    choose_by = await deadline_of(session, cohort.id, young.department_code)
    choices = int(await session.scalar(
        select(func.count()).select_from(YouthChoice).where(YouthChoice.young_person_id == young.id)) or 0)
    placed = (await session.execute(
        select(Mission.title, Organisation.name, YouthOffer.start_date, YouthOffer.end_date, YouthOffer.hours,
               YouthPlacement.status)
        .join(YouthOffer, YouthOffer.id == YouthPlacement.offer_id)
        .join(Mission, Mission.id == YouthOffer.mission_id)
        .join(Organisation, Organisation.id == Mission.organisation_id)
        .where(YouthPlacement.young_person_id == young.id, YouthPlacement.status != PlacementStatus.CANCELLED)
        .limit(1)
    )).first()
    return Home(first_name=young.first_name, status=YouthStatus(young.status), cohort_name=cohort.name,
                stay_start=cohort.stay_start, stay_end=cohort.stay_end, missions_start=cohort.missions_start,
                missions_end=cohort.missions_end, choose_by=choose_by, guardian_name=guardian,
                can_choose=can_choose(young), choices=choices,
                deadline_passed=choose_by is not None and datetime.now(PARIS).date() > choose_by,
                placement=None if placed is None else PlacementSummary(*placed))
