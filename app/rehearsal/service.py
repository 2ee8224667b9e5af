"""What a rehearsal needs from the platform besides its public pages: missions of its own to apply to, sign-in links
for its applicants (their addresses receive no e-mail), and the integrity of what it wrote, read after the queues
have drained."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import msgspec
from redis.asyncio import Redis
from sqlalchemy import ARRAY, BigInteger, ColumnElement, String, bindparam, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import tokens
from app.accounts.schemas import SignInRequest
from app.accounts.service import forget_request, parse_email, prepare_signin_mail
from app.applications.statuses import HOLDING
from app.geo.models import Commune
from app.missions.cache import mark_changed
from app.missions.models import Mission, MissionAddress
from app.organisations.models import Organisation, OrganisationManager
from app.rehearsal import DOMAIN, is_rehearsal_address
from app.settings import Settings
from app.volunteers.validation import SignupInvalid
from surge.emergencies.models import Emergency

# A run's name goes into addresses (`<run>.<n>@rehearsal.invalid`), an emergency's slug and a URL: kept plain.
RUN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
# A rehearsal organisation's donation URL: the reserved domain and its run. No real organisation can have one that
# works, and the purge also requires that nobody manages it.
MARK = f"https://{DOMAIN}/"
EMERGENCY_PREFIX = "repetition-"
MAX_MISSIONS = 50
MAX_PLACES = 10_000
MAX_ITEMS = 20_000  # receipts or applications in one integrity request
MAX_LINKS = 200

NAME = "Répétition de charge (structure fictive)"
DESCRIPTION = ("Structure fictive créée pour une répétition de charge de la plateforme ; elle disparaît à la fin de "
               "l'exercice. Merci de ne pas candidater à ses missions.")
MISSION_TITLE = "Mission fictive de répétition n° {number}"
MISSION_TEXT = ("Mission fictive créée pour une répétition de charge : elle disparaît à la fin de l'exercice, avec "
                "les candidatures reçues. Merci de ne pas y candidater.")
EMERGENCY_TITLE = "Exercice de charge (répétition technique)"
EMERGENCY_TEXT = ("Urgence fictive créée pour une répétition de charge de la plateforme : elle disparaît à la fin de "
                  "l'exercice.")


class RehearsalRefused(Exception):
    """A request the rehearsal endpoints refuse; `errors` maps a field to a French message (a 422)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


def check_run(run: object) -> str:
    value = str(run or "").strip().lower()
    if not RUN.fullmatch(value):
        raise RehearsalRefused({"run": "Le nom de la répétition ne prend que des lettres minuscules, des chiffres et "
                                       "des tirets (40 caractères au plus)."})
    return value


def mark_of(run: str) -> str:
    return MARK + run


def rehearsal_organisations(run: str | None) -> ColumnElement[bool]:
    """The rehearsal's organisations (of one run, or of all): marked by their donation URL, and managed by nobody."""
    marked = Organisation.donation_url == mark_of(check_run(run)) if run else Organisation.donation_url.like(
        MARK + "%")
    return marked & ~exists().where(OrganisationManager.organisation_id == Organisation.id)


def emergency_slug(run: str) -> str:
    return EMERGENCY_PREFIX + run


class Seeded(msgspec.Struct, frozen=True, kw_only=True):
    run: str
    organisation_id: int
    mission_ids: list[int]
    places: int
    emergency: str | None = None


async def seed(session: AsyncSession, *, run: str, missions: int, places: int, commune_code: str,
               emergency: bool, domain: str = "solidarite-insertion", today: date | None = None) -> Seeded:
    """A validated organisation nobody manages (no manager gets an e-mail), `missions` published missions of `places`
    places each at `commune_code`, and with `emergency` a live emergency of the commune's department the missions
    belong to, for a dispatch. Again for the same run: what was seeded then."""
    run = check_run(run)
    if not 1 <= missions <= MAX_MISSIONS or not 1 <= places <= MAX_PLACES:
        raise RehearsalRefused({"missions": f"De 1 à {MAX_MISSIONS} missions de 1 à {MAX_PLACES} places."})
    existing = await session.scalar(select(Organisation.id).where(rehearsal_organisations(run)))
    if existing is not None:
        ids = list(await session.scalars(select(Mission.id).where(Mission.organisation_id == existing)
                                         .order_by(Mission.id)))
        found = await session.scalar(select(Emergency.slug).where(Emergency.slug == emergency_slug(run)))
        count = await session.scalar(select(Mission.places).where(Mission.organisation_id == existing).limit(1))
        return Seeded(run=run, organisation_id=existing, mission_ids=ids, places=int(count or places), emergency=found)
    commune = await session.get(Commune, commune_code)
    if commune is None or commune.latitude is None or commune.longitude is None:
        raise RehearsalRefused({"commune_code": "Cette commune n'existe pas (code INSEE attendu, par exemple 69123)."})
    postal_code = commune.postal_codes[0]
    slug = None
    if emergency:
        slug = emergency_slug(run)
        session.add(Emergency(slug=slug, title=EMERGENCY_TITLE, description=EMERGENCY_TEXT, needs=EMERGENCY_TEXT,
                              departments=[commune.department_code], priority_domains=[domain], status="live",
                              live_at=datetime.now(UTC)))
    organisation = Organisation(name=NAME, type="association", address_line="1 place de la Mairie",
                                postal_code=postal_code, commune_code=commune.code, description=DESCRIPTION,
                                donation_url=mark_of(run), status="validated")
    session.add(organisation)
    await session.flush()
    mission_ids = []
    for number in range(1, missions + 1):
        mission = Mission(organisation_id=organisation.id, title=MISSION_TITLE.format(number=number),
                          description=MISSION_TEXT, domain=domain, activities=[], remote=False,
                          start_date=today or date.today(), places=places, open_to_minors=True,
                          priority=emergency, emergency_slug=slug, status="published")
        session.add(mission)
        await session.flush()
        session.add(MissionAddress(mission_id=mission.id, address_line="1 place de la Mairie", postal_code=postal_code,
                                   commune_code=commune.code, latitude=commune.latitude,
                                   longitude=commune.longitude))
        mission_ids.append(mission.id)
    mark_changed(session, mission_ids)  # searches and emergency pages show them from the commit on
    return Seeded(run=run, organisation_id=organisation.id, mission_ids=mission_ids, places=places, emergency=slug)


def rehearsal_addresses(raw: Sequence[object]) -> list[str]:
    """The normalised addresses, each of the rehearsal domain; raises `RehearsalRefused` for any other."""
    if not raw or len(raw) > MAX_LINKS:
        raise RehearsalRefused({"emails": f"Donnez de 1 à {MAX_LINKS} adresses."})
    addresses = []
    for value in raw:
        try:
            _, normalized = parse_email(value)
        except SignupInvalid as invalid:
            raise RehearsalRefused({"emails": invalid.errors["email"]}) from None
        if not is_rehearsal_address(normalized):
            raise RehearsalRefused({"emails": f"Seules les adresses en @{DOMAIN} reçoivent un lien ici : les autres "
                                              "se connectent par l'e-mail qu'elles reçoivent."})
        addresses.append(normalized)
    return addresses


async def signin_links(session: AsyncSession, redis: Redis, settings: Settings, emails: Sequence[object],
                       *, now: float) -> dict[str, str | None]:
    """Address → the token of a sign-in link (what the e-mail would carry), or None while the sign-up is not saved
    yet. Rehearsal addresses only: refused before anything is written for any other. The link is minted by the
    sign-in e-mail's own code and confirmed by the person's own sign-in page, so the rehearsal signs in the real way
    but for the mailbox."""
    links: dict[str, str | None] = {}
    for email in rehearsal_addresses(emails):
        key = tokens.new_id()
        request = SignInRequest(email=email, email_normalized=email)
        await redis.set(tokens.request_key(key), msgspec.json.encode(request), ex=settings.signin_link_ttl_seconds)
        try:
            mail = await prepare_signin_mail(session, redis, secret=settings.secret_key.reveal(), key=key,
                                             link_ttl=settings.signin_link_ttl_seconds, base_url=settings.base_url,
                                             now=now)
        finally:
            await forget_request(redis, key)
        found = parse_qs(urlsplit(str(mail.context["link"])).query).get("jeton") \
            if mail is not None and mail.kind == "signin_link" else None
        links[email] = found[0] if found else None
    return links


class Integrity(msgspec.Struct, frozen=True, kw_only=True):
    """Accepted writes against PostgreSQL: `missing` and `doubled` must be 0, as must `oversold` (over the missions
    checked, the places held beyond each mission's places)."""

    signups_accepted: int
    signups_saved: int
    signups_missing: int
    signups_doubled: int
    applications_accepted: int
    applications_saved: int
    applications_missing: int
    applications_doubled: int
    missions_checked: int
    oversold: int

    @property
    def ok(self) -> bool:
        return not (self.signups_missing or self.signups_doubled or self.applications_missing
                    or self.applications_doubled or self.oversold)


SIGNUPS = text("SELECT receipt, count(*) FROM volunteers WHERE receipt = ANY(:receipts) GROUP BY receipt")
APPLICATIONS = text("""
SELECT wanted.mission_id, wanted.email, count(applications.id)
FROM unnest(:missions, :emails) AS wanted(mission_id, email)
JOIN volunteers ON volunteers.email_normalized = wanted.email
JOIN applications ON applications.volunteer_id = volunteers.id AND applications.mission_id = wanted.mission_id
GROUP BY wanted.mission_id, wanted.email
""")
OVERSOLD = text("""
SELECT coalesce(sum(greatest(held - places, 0)), 0), count(*) FROM (
  SELECT missions.places, count(applications.id) FILTER (WHERE applications.status = ANY(:holding)) AS held
  FROM missions LEFT JOIN applications ON applications.mission_id = missions.id
  WHERE missions.id = ANY(:missions) GROUP BY missions.id
) AS per_mission
""")


async def integrity(session: AsyncSession, *, receipts: Sequence[str], applications: Sequence[tuple[int, str]],
                    mission_ids: Sequence[int]) -> Integrity:
    """`receipts`: the sign-ups answered 202; `applications`: the (mission, address) pairs answered with a place or
    the wait-list; `mission_ids`: the missions whose places are checked (those of the pairs are added)."""
    if len(receipts) > MAX_ITEMS or len(applications) > MAX_ITEMS:
        raise RehearsalRefused({"receipts": f"Au plus {MAX_ITEMS} reçus et {MAX_ITEMS} candidatures par demande."})
    wanted = sorted(set(receipts))
    rows = (await session.execute(SIGNUPS.bindparams(bindparam("receipts", wanted, type_=ARRAY(String))))).all()
    saved = {receipt: int(count) for receipt, count in rows}
    pairs = sorted(set(applications))
    found: dict[tuple[int, str], int] = {}
    if pairs:
        statement = APPLICATIONS.bindparams(bindparam("missions", [m for m, _ in pairs], type_=ARRAY(BigInteger)),
                                            bindparam("emails", [e for _, e in pairs], type_=ARRAY(String)))
        found = {(int(m), str(e)): int(count) for m, e, count in (await session.execute(statement)).all()}
    missions = sorted(set(mission_ids) | {mission for mission, _ in pairs})
    oversold = checked = 0
    if missions:
        statement = OVERSOLD.bindparams(bindparam("missions", missions, type_=ARRAY(BigInteger)),
                                        bindparam("holding", [str(s) for s in HOLDING], type_=ARRAY(String)))
        excess, checked = (await session.execute(statement)).one()
        oversold = int(excess)
    return Integrity(
        signups_accepted=len(wanted), signups_saved=len(saved), signups_missing=len(wanted) - len(saved),
        signups_doubled=sum(count - 1 for count in saved.values()),
        applications_accepted=len(pairs), applications_saved=len(found), applications_missing=len(pairs) - len(found),
        applications_doubled=sum(count - 1 for count in found.values()), missions_checked=int(checked),
        oversold=oversold,
    )
