"""The showcase: a realistic data set for proving the pages (tests/test_pages_audit_browser.py) and taking their
screenshots (`python -m ops.screenshots`). On top of the demo (app/demo.py: organisations, missions, the Covid-19
and Ukraine emergencies, the referent, coordinator and manager accounts), it adds volunteers in the Ukraine
emergency's departments, applicants on a Paris mission, applications of the demo volunteer and a planned dispatch
run of the Ukraine emergency waiting for its coordinator's go.

`python -m app.showcase` loads it into the configured database and prints, as JSON, the ids the pages need and a
one-time sign-in link (a path, valid ten minutes) per account. For a fresh, throwaway database; refused unless
ENVIRONMENT is set to development or test (app.demo.seeding_refusal).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import msgspec
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import demo
from app.accounts import tokens
from app.accounts.models import User
from app.accounts.schemas import LinkRecord
from app.applications.capacity import Places
from app.applications.models import Application
from app.db.base import make_engine, unit_of_work
from app.geo.models import Commune
from app.missions.models import Mission
from app.settings import Settings, get_settings
from app.volunteers.models import Volunteer
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import new_receipt, save_signups
from surge.dispatch import planning, runs
from surge.emergencies.models import Emergency

EMERGENCY = "ukraine"
APPLICANTS_MISSION = "Distribution de colis aux personnes isolées"  # Banque alimentaire de Paris, the manager's
OTHER_MISSION = "Interprétariat ukrainien-français"
LINK_SECONDS = 600
VOLUNTEER = demo.volunteer_email("Camille", "Bernard")  # applies to missions; sees them in their space

# (first name, last name, commune INSEE code, domain, availability, signed up on the emergency page)
NEIGHBOURS = [
    ("Élodie", "Schmitt", "67482", "solidarite-insertion", "weekends", True),
    ("Thomas", "Meyer", "67482", "cooperation-internationale", "anytime", True),
    ("Sarah", "Klein", "67218", "solidarite-insertion", "evenings", False),
    ("Julien", "Weber", "67180", "prevention-protection", "weekends", True),
    ("Margaux", "Muller", "67482", "solidarite-insertion", "weekdays", False),
    ("Antoine", "Roth", "67218", "sante-pour-tous", "anytime", True),
    ("Pauline", "Lefebvre", "59350", "solidarite-insertion", "weekends", True),
    ("Maxime", "Lemaire", "59512", "solidarite-insertion", "anytime", False),
    ("Clara", "Dupont", "59599", "cooperation-internationale", "evenings", True),
    ("Lucas", "Delattre", "59009", "solidarite-insertion", "weekends", True),
    ("Emma", "Vandamme", "59350", "education-pour-tous", "weekdays", False),
    ("Karim", "Benali", "59512", "solidarite-insertion", "anytime", True),
    ("Sofia", "Martin", "75056", "cooperation-internationale", "anytime", True),
    ("Yanis", "Haddad", "75056", "solidarite-insertion", "evenings", True),
    ("Alice", "Fontaine", "92012", "solidarite-insertion", "weekends", False),
    ("Mathis", "Garcia", "75056", "cooperation-internationale", "weekdays", True),
    ("Olga", "Kovalenko", "75056", "cooperation-internationale", "anytime", True),
    ("Romane", "Girard", "33063", "solidarite-insertion", "weekends", True),
    ("Baptiste", "Lacoste", "33281", "solidarite-insertion", "anytime", False),
    ("Zoé", "Castaing", "33063", "sante-pour-tous", "evenings", True),
]


def email_of(first: str, last: str) -> str:
    """prenom.nom@demo.renfort.example, in plain ASCII as most addresses are."""
    plain = unicodedata.normalize("NFKD", f"{first}.{last}".lower()).encode("ascii", "ignore").decode()
    return f"{plain.replace(' ', '-')}@demo.renfort.example"


# Applicants of the manager's Paris mission: (volunteer e-mail, status, their word to the organisation)
APPLICANTS = [
    (VOLUNTEER, "accepted", "Disponible le samedi matin, j'ai déjà fait des distributions alimentaires."),
    (email_of("Sofia", "Martin"), "pending", "Je parle aussi ukrainien si cela peut aider."),
    (email_of("Yanis", "Haddad"), "pending", None),
    (email_of("Alice", "Fontaine"), "pending", "Je peux venir avec ma voiture pour les livraisons."),
    (email_of("Mathis", "Garcia"), "accepted", None),
    (email_of("Olga", "Kovalenko"), "pending", "Disponible dès la semaine prochaine."),
]


@dataclass(frozen=True, slots=True)
class Accounts:
    volunteer: str = VOLUNTEER
    manager: str = demo.MANAGER
    coordinator: str = demo.COORDINATOR
    referent: str = demo.REFERENT


@dataclass(frozen=True, slots=True)
class Showcase:
    emergency: str  # the slug of the emergency with priority missions in several departments
    mission_id: int  # the manager's mission with applicants
    run_id: int  # the emergency's planned dispatch run
    accounts: Accounts


async def _neighbours(session: AsyncSession, secret: str, now: datetime) -> None:
    codes = {code for _, _, code, _, _, _ in NEIGHBOURS}
    communes = {c.code: c for c in (await session.scalars(select(Commune).where(Commune.code.in_(codes))))}
    signups = [
        QueuedSignup(
            receipt=new_receipt(), email=email_of(first, last), email_normalized=email_of(first, last),
            first_name=first, last_name=last, birth_date=date(1970 + index, 1 + index % 12, 3 + index),
            postal_code=communes[code].postal_codes[0],
            commune_code=code, domains=[domain], availability=availability,
            emergency=EMERGENCY if on_emergency_page else None, accepted_at=now - timedelta(minutes=7 * index),
            consent_at=now,
        )
        for index, (first, last, code, domain, availability, on_emergency_page) in enumerate(NEIGHBOURS)
    ]
    await save_signups(session, secret, signups)


async def _mission_id(session: AsyncSession, title: str) -> int:
    return int((await session.scalars(select(Mission.id).where(Mission.title == title))).one())


async def _applications(session: AsyncSession, now: datetime) -> int:
    mission_id = await _mission_id(session, APPLICANTS_MISSION)
    emails = [email for email, _, _ in APPLICANTS]
    volunteers = dict((await session.execute(
        select(Volunteer.email_normalized, Volunteer.id).where(Volunteer.email_normalized.in_(emails))
    )).all())
    rows = [{"mission_id": mission_id, "volunteer_id": volunteers[email], "status": status, "version": 1,
             "message": message, "applied_at": now - timedelta(hours=5 * index)}
            for index, (email, status, message) in enumerate(APPLICANTS)]
    rows.append({"mission_id": await _mission_id(session, OTHER_MISSION),
                 "volunteer_id": volunteers[VOLUNTEER], "status": "pending", "version": 1,
                 "message": "Je suis traductrice, russe et ukrainien.", "applied_at": now - timedelta(days=1)})
    await session.execute(insert(Application).values(rows).on_conflict_do_nothing())
    return mission_id


async def _planned_run(session: AsyncSession) -> int:
    emergency = (await session.scalars(select(Emergency).where(Emergency.slug == EMERGENCY))).one()
    coordinator_id = (await session.scalars(select(User.id).where(User.email_normalized == demo.COORDINATOR))).one()
    choices = await runs.mission_choices(session, EMERGENCY)
    parameters = runs.parse_parameters(
        {"pool": "les-deux", "max_km": "50", "missions": [str(choice.id) for choice in choices]}, choices
    )
    return await runs.create_run(session, emergency, parameters, coordinator_id)


async def load_showcase(settings: Settings, redis: Redis) -> Showcase:
    engine = make_engine(settings.database_url, pool_size=0)
    now = datetime.now(UTC)
    secret = settings.secret_key.reveal()
    try:
        async with unit_of_work(engine) as session:
            await save_signups(session, secret, demo.demo_signups(now))
            await demo.load_organisations(session)
            await _neighbours(session, secret, now)
            mission_id = await _applications(session, now)
            run_id = await _planned_run(session)
        # What the planning job does, once the run is committed.
        await planning.plan_run(engine, Places(redis, backlog_limit=settings.application_backlog_limit), run_id)
    finally:
        await engine.dispose()
    return Showcase(emergency=EMERGENCY, mission_id=mission_id, run_id=run_id, accounts=Accounts())


async def sign_in_links(redis: Redis, secret: str, emails: dict[str, str]) -> dict[str, str]:
    """A one-time sign-in link per account, as the sign-in e-mail carries it (path only), by the same key."""
    links = {}
    for key, email in emails.items():
        token_id = tokens.new_id()
        record = LinkRecord(email=email, email_normalized=email)
        await redis.set(tokens.link_key(token_id), msgspec.json.encode(record), ex=LINK_SECONDS)
        links[key] = f"/connexion/lien?jeton={tokens.mint(secret, token_id, int(time.time()) + LINK_SECONDS)}"
    return links


async def main() -> dict[str, object]:
    settings = get_settings()
    if refusal := demo.seeding_refusal(settings, "app.showcase"):
        sys.exit(refusal)
    redis = Redis.from_url(settings.redis_url)
    try:
        showcase = await load_showcase(settings, redis)
        links = await sign_in_links(redis, settings.secret_key.reveal(), asdict(showcase.accounts))
    finally:
        await redis.aclose()
    return {**asdict(showcase), "links": links}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), ensure_ascii=False))
