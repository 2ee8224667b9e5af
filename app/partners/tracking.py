"""Tracked links `/r/{mission_id}/{partner_id}` (API Engagement's): each human click is a `partner_clicks` row whose
random token, signed with the app secret, travels as `apiengagement_id`.

Inbound (a partner sends a visitor to one of our missions): the mission page keeps the signed id in a cookie of its
own — not in the session, which signing in replaces — and an application through our flow credits the click once.
Outbound (we send a visitor to a partner's mission): the partner reports the application with `POST /v2/activity`.

Bots and clients over the per-address window are redirected all the same but not counted. Rows hold no address
and no user agent; the per-address counter is keyed on a keyed hash of the address and lives one minute."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from itsdangerous import BadSignature, Signer
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.base import unit_of_work
from app.missions.models import Mission
from app.organisations.models import Organisation
from app.organisations.service import is_online as organisation_is_online
from app.organisations.service import slugify
from app.partners.models import Partner, PartnerClick

CLICK_COOKIE = "renfort_partner_click"
CLICK_COOKIE_SECONDS = 30 * 86_400  # as API Engagement's own tracker keeps its click id
CLICKS_PER_ADDRESS_PER_MINUTE = 20
MAX_SIGNED_LENGTH = 120
SALT = "renfort.partner-click"
TRACKING = {"utm_source": "renfort", "utm_medium": "api", "utm_campaign": "renfort"}
# Conservative: what announces itself as automated, and no user agent at all (checked separately).
BOT = re.compile(
    r"bot|crawl|spider|slurp|curl|wget|python-requests|python-urllib|httpx|aiohttp|go-http-client|java/|okhttp|"
    r"libwww|scrapy|headless|phantomjs|preview|facebookexternalhit|whatsapp|monitor|uptime|lighthouse",
    re.IGNORECASE,
)
ONLINE_STATUSES = ("published", "full")
ID = re.compile(r"[0-9]{1,18}")
# A public web host: dotted labels ("javascript" of "javascript:alert(1)" is none).
HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}", re.IGNORECASE)


def _signer(secret: str) -> Signer:
    return Signer(secret, salt=SALT)


def sign(secret: str, token: str) -> str:
    return _signer(secret).sign(token).decode()


def unsign(secret: str, signed: object) -> str | None:
    """The click token of a signed id we handed out, or None for anything else (tampered, truncated, not a string)."""
    if not isinstance(signed, str) or not signed or len(signed) > MAX_SIGNED_LENGTH or not signed.isascii():
        return None
    try:
        return _signer(secret).unsign(signed).decode()
    except BadSignature:
        return None


def is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or BOT.search(user_agent) is not None


def row_id(raw: str) -> int | None:
    """A path id as API Engagement reads it: digits only (anything else is an unknown mission or partner)."""
    return int(raw) if ID.fullmatch(raw) else None


def client_block(address: str) -> str:
    """What one client can hold: its IPv4 address, or its IPv6 /64 (a client picks any address inside at will)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def is_navigation(fetch_dest: str | None) -> bool:
    """A person following the link: a browser says `Sec-Fetch-Dest: document`. An image, script or (hidden) frame
    pointing at a tracked link is not a click; clients that send no such header are judged by the rest."""
    return fetch_dest is None or fetch_dest == "document"


class ClickKeys:
    """The Redis keys of the per-address click window."""

    def __init__(self, secret: str, address: str, window: int) -> None:
        digest = hmac.new(secret.encode(), client_block(address).encode("utf-8", "surrogatepass"),
                          hashlib.sha256).hexdigest()[:24]
        self.window = f"renfort:partners:clicks:{digest}:{window}"


async def within_limit(redis: Redis, secret: str, address: str, now: float) -> bool:
    """A fixed one-minute window per address; Redis unreachable: the click is not counted (the redirect goes on)."""
    keys = ClickKeys(secret, address, int(now // 60))
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(keys.window)
            pipe.expire(keys.window, 120)
            count, _ = await pipe.execute()
    except RedisError:
        return False
    return int(count) <= CLICKS_PER_ADDRESS_PER_MINUTE


def outbound_url(application_url: str | None, signed: str) -> str | None:
    """The partner's own application page with our parameters added (its own query kept), or None when the stored
    address is not a web address: only what the partner stored is ever a target, never input."""
    raw = (application_url or "").strip()
    if not raw:
        return None
    if "://" not in raw:
        raw = "https://" + raw
    if any(character.isspace() or not character.isprintable() for character in raw):
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not HOST.fullmatch(parts.hostname or ""):
        return None
    ours = {"apiengagement_id": signed, **TRACKING}
    kept = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name not in ours]
    return urlunsplit(parts._replace(query=urlencode([*kept, *ours.items()])))


@dataclass(frozen=True, slots=True)
class Target:
    page: str  # our mission page
    application_url: str | None  # the partner's, for an outbound click
    direction: str | None  # the click to record ("inbound" | "outbound"), None when nothing is counted
    mission_id: int
    partner_id: int


def mission_path(mission_id: int, title: str) -> str:
    return f"/missions/{mission_id}-{slugify(title)}"


async def resolve(session: AsyncSession, mission_id: int, partner_id: int | None) -> Target | None:
    """Where a tracked link leads, and whether it is a click to count. None (a 404): no such mission online. A link
    that names another partner than the one it can credit leads to our mission page, uncounted."""
    row = (await session.execute(
        select(Mission.title, Mission.status, Mission.partner_id, Mission.application_url, Mission.deleted_at,
               Organisation.status)
        .join(Organisation, Organisation.id == Mission.organisation_id).where(Mission.id == mission_id)
    )).first()
    if row is None:
        return None
    title, status, owner_id, application_url, deleted_at, organisation_status = row
    if status not in ONLINE_STATUSES or deleted_at is not None or not organisation_is_online(organisation_status):
        return None
    page = mission_path(mission_id, title)
    active = partner_id is not None and bool(
        await session.scalar(select(Partner.active).where(Partner.id == partner_id))
    )
    if not active or partner_id is None:
        return Target(page, None, None, mission_id, 0)
    if owner_id is None:
        return Target(page, None, "inbound", mission_id, partner_id)
    if owner_id == partner_id:
        return Target(page, application_url, "outbound", mission_id, partner_id)
    return Target(page, None, None, mission_id, partner_id)


async def follow(session: AsyncSession, target: Target, *, secret: str, counted: bool) -> str:
    """Records the click (when it counts) and returns the redirect's location."""
    if target.direction is None:
        return target.page
    token = secrets.token_hex(16)
    signed = sign(secret, token)
    if target.direction == "outbound":
        location = outbound_url(target.application_url, signed)
        if location is None:  # nothing valid to send the visitor to: our page, which names the partner
            return target.page
    else:
        location = f"{target.page}?{urlencode({'apiengagement_id': signed})}"
    if counted:
        session.add(PartnerClick(token=token, mission_id=target.mission_id, partner_id=target.partner_id,
                                 direction=target.direction))
        await session.flush()
    return location


def landing(secret: str, signed: str, path: str, *, secure: bool) -> Redirect:
    """A visitor a partner sent lands on our mission page: the click id moves into its cookie and the address drops
    it (so it is neither shared, bookmarked nor sent on as a referrer, and the page's address stays the one URL)."""
    cookies = []
    if unsign(secret, signed) is not None:
        cookies.append(Cookie(key=CLICK_COOKIE, value=signed, max_age=CLICK_COOKIE_SECONDS, path="/", httponly=True,
                              secure=secure, samesite="lax"))
    return Redirect(path, status_code=302, cookies=cookies, headers={"Cache-Control": "no-store"})


def forget(secure: bool) -> Cookie:
    """Clears the click cookie once its application is credited."""
    return Cookie(key=CLICK_COOKIE, value="", max_age=0, path="/", httponly=True, secure=secure, samesite="lax")


def inbound_token(secret: str, signed: object) -> str | None:
    """The click id an inbound visitor's cookie carries, when its signature holds."""
    return unsign(secret, signed)


async def credit_inbound(session: AsyncSession, token: str, mission_id: int) -> bool:
    """Credits the inbound click a visitor arrived with for their application through our flow: once per click, and
    only on that click's mission. Run by a job (queues/partner_clicks.py), so the apply path stays free of SQL."""
    result = await session.execute(text(
        "INSERT INTO partner_applications (click_id, partner_id, mission_id, direction, status)"
        " SELECT id, partner_id, mission_id, 'inbound', 'PENDING' FROM partner_clicks"
        " WHERE token = :token AND mission_id = :mission_id AND direction = 'inbound'"
        " ON CONFLICT (click_id) DO NOTHING RETURNING id"
    ), {"token": token, "mission_id": mission_id})
    return result.first() is not None


async def partner_of(engine: AsyncEngine, mission_id: int) -> tuple[int, str] | None:
    """(owner partner id, its name) of a partner's mission, None for ours: asked only when our apply flow refused."""
    async with unit_of_work(engine) as session:
        row = (await session.execute(
            select(Partner.id, Partner.name).join(Mission, Mission.partner_id == Partner.id)
            .where(Mission.id == mission_id)
        )).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def applied_elsewhere(engine: AsyncEngine, mission_id: int) -> Template | None:
    """Our apply flow refused the mission as closed: when it is a partner's, the page says where to apply instead
    (nothing was written: the Redis state of a partner's mission is always closed, see applications.service.seed)."""
    owner = await partner_of(engine, mission_id)
    if owner is None:
        return None
    partner_id, name = owner
    message = (f"Cette mission est proposée par {name} : la candidature se fait sur son site, pas sur Renfort. "
               "Le bouton ci-dessous vous y conduit.")
    context = {"status": 409, "message": message, "errors": {}, "signed_in": True,
               "action": (f"/r/{mission_id}/{partner_id}", f"Candidater sur {name}")}
    return Template("error.html", context=context, status_code=409,
                    headers={"Cache-Control": "private, no-store"})
