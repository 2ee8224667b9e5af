"""Sign-in use cases: request a link (web, Redis only), prepare the e-mail (job), sign in with a link (web)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import exists, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import return_path, tokens
from app.accounts.models import User
from app.accounts.ratelimit import SignInLimiter
from app.accounts.roles import roles_in
from app.accounts.schemas import LinkRecord, Roles, SignedIn, SignInRequest
from app.geo.models import Department, Region
from app.organisations.models import Organisation
from app.text_rules import TextRefused
from app.volunteers import age, confirmation
from app.volunteers.models import Volunteer
from app.volunteers.validation import SignupInvalid
from app.volunteers.validation import parse_email as parse_signup_email
from queues import enqueue


class SignInRateLimited(Exception):
    """Too many sign-in requests from one client address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("sign-in requests over the per-address limit")
        self.retry_after = retry_after


def parse_email(raw: object) -> tuple[str, str]:
    """(as typed, normalised), by the sign-up's rule; raises `SignupInvalid` with a French message for the field."""
    try:
        return parse_signup_email(raw)
    except TextRefused as refused:
        raise SignupInvalid({"email": refused.message}) from None


async def request_link(
    redis: Redis, rq_connection: SyncRedis, limiter: SignInLimiter, *, email: object, client_ip: str, link_ttl: int,
    after: object = "",
) -> None:
    """Queues the sign-in e-mail; touches Redis only, and does the same work whether the address is known or not
    (the job decides between a link and an invitation to sign up). Over the per-e-mail limit nothing is queued,
    but the caller answers the same. `after`: where the link lands, kept with the request when it is a same-site
    path. Raises `SignupInvalid` or `SignInRateLimited`."""
    typed, normalized = parse_email(email)
    verdict = await limiter.check(client_ip=client_ip, email_normalized=normalized)
    if verdict.outcome == "ip":
        raise SignInRateLimited(verdict.retry_after)
    if verdict.outcome == "email":
        return
    key = tokens.new_id()
    record = SignInRequest(email=typed, email_normalized=normalized, after=return_path.safe(after))
    await redis.set(tokens.request_key(key), msgspec.json.encode(record), ex=link_ttl)
    await asyncio.to_thread(enqueue.send_signin_mail, rq_connection, key)


@dataclass(frozen=True, slots=True)
class SignInMail:
    kind: str  # signin_link | signin_unknown
    email: str
    email_normalized: str
    context: dict[str, object]


async def is_known(session: AsyncSession, email_normalized: str) -> bool:
    volunteer = exists().where(Volunteer.email_normalized == email_normalized)
    user = exists().where(User.email_normalized == email_normalized)
    return bool(await session.scalar(select(volunteer | user)))


async def prepare_signin_mail(
    session: AsyncSession, redis: Redis, *, secret: str, key: str, link_ttl: int, base_url: str, now: float
) -> SignInMail | None:
    """The e-mail a sign-in request becomes: a link for a known address, an invitation to sign up otherwise.
    None when the request has expired (the person will ask again)."""
    raw = await redis.get(tokens.request_key(key))
    if raw is None:
        return None
    request = msgspec.json.decode(raw, type=SignInRequest)
    minutes = max(1, link_ttl // 60)
    if not await is_known(session, request.email_normalized):
        return SignInMail("signin_unknown", request.email, request.email_normalized, {"base_url": base_url})
    token_id = tokens.new_id()
    link = LinkRecord(email=request.email, email_normalized=request.email_normalized, after=request.after)
    await redis.set(tokens.link_key(token_id), msgspec.json.encode(link), ex=link_ttl)
    token = tokens.mint(secret, token_id, int(now) + link_ttl)
    context = {"link": f"{base_url}/connexion/lien?jeton={token}", "minutes": minutes, "base_url": base_url}
    return SignInMail("signin_link", request.email, request.email_normalized, context)


async def forget_request(redis: Redis, key: str) -> None:
    await redis.delete(tokens.request_key(key))


async def check_link(redis: Redis, *, secret: str, token: str, now: float) -> None:
    """For the confirmation page: a genuine, unexpired, unused link. Consumes nothing."""
    link = tokens.read(secret, token, now)
    if not await redis.exists(tokens.link_key(link.token_id)):
        raise tokens.LinkExpired


@dataclass(frozen=True, slots=True)
class LinkUsed:
    account: SignedIn
    after: str  # where to go now: the path the sign-in was asked from, or the person's space


async def sign_in_with_link(redis: Redis, session: AsyncSession, *, secret: str, token: str, now: float) -> LinkUsed:
    """Consumes the link (atomically: a second use finds nothing), creates the user at the first sign-in and computes
    the roles. Raises `LinkInvalid` or `LinkExpired`."""
    link = tokens.read(secret, token, now)
    raw = await redis.getdel(tokens.link_key(link.token_id))
    if raw is None:
        raise tokens.LinkExpired
    record = msgspec.json.decode(raw, type=LinkRecord)
    found = (await session.execute(
        select(Volunteer.id, Volunteer.birth_date).where(Volunteer.email_normalized == record.email_normalized)
    )).first()
    volunteer_id, adult_on = (found[0], age.adult_on(found[1])) if found else (None, None)
    volunteer = volunteer_id is not None
    if volunteer:
        await confirmation.confirm_address(session, record.email_normalized)  # the link proved the address
    user = await session.scalar(select(User).where(User.email_normalized == record.email_normalized))
    if user is None and not volunteer:
        raise tokens.LinkExpired  # the account was deleted since the link was sent
    signed_in_at = datetime.fromtimestamp(now, UTC)
    statement = (
        insert(User)
        .values(email=record.email, email_normalized=record.email_normalized, last_sign_in_at=signed_in_at)
        .on_conflict_do_update(index_elements=[User.email_normalized], set_={"last_sign_in_at": signed_in_at})
        .returning(User)
    )
    user = await session.scalar(statement, execution_options={"populate_existing": True})
    assert user is not None
    roles = await roles_in(session, user.id, volunteer=volunteer)
    assert roles is not None
    account = SignedIn(user_id=user.id, email=user.email, roles=roles, since=int(now), volunteer_id=volunteer_id,
                       adult_on=adult_on)
    return LinkUsed(account, return_path.after_sign_in(record.after))


async def describe_roles(session: AsyncSession, roles: Roles) -> list[str]:
    """The roles in French, for the person's own page."""
    labels = []
    if roles.volunteer:
        labels.append("Bénévole")
    if roles.national_coordinator:
        labels.append("Coordination nationale")
    if roles.departments:
        rows = await session.execute(
            select(Department.code, Department.name).where(Department.code.in_(roles.departments))
        )
        names = dict(rows.all())
        for code in roles.departments:
            labels.append(f"Coordination départementale : {names.get(code, code)} ({code})")
    if roles.national_referent:
        labels.append("Référent·e national·e")
    if roles.referent_regions:
        regions = dict((await session.execute(
            select(Region.code, Region.name).where(Region.code.in_(roles.referent_regions))
        )).all())
        labels.extend(f"Référent·e régional·e : {regions.get(code, code)}" for code in roles.referent_regions)
    regional = set((await session.scalars(
        select(Department.code).where(Department.region_code.in_(roles.referent_regions))
    )).all()) if roles.referent_regions else set()
    own = [code for code in roles.referent_departments if code not in regional]
    if own:
        names = dict((await session.execute(
            select(Department.code, Department.name).where(Department.code.in_(own))
        )).all())
        labels.extend(f"Référent·e départemental·e : {names.get(code, code)} ({code})" for code in own)
    if roles.organisations:
        managed = await session.scalars(
            select(Organisation.name).where(Organisation.id.in_(roles.organisations)).order_by(Organisation.name)
        )
        labels.extend(f"Gestion de la structure : {name}" for name in managed)
    if roles.admin:
        labels.append("Administration de la plateforme")
    return labels
