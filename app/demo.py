"""Demo data for a local run (`python -m app.demo`, called by ./ops/run): a few volunteers across France,
validated organisations with missions, and two emergencies — Covid-19 (March 2020) and Ukraine (March 2022) —
with priority missions across several departments, a validated mission template, and an organisation and a mission
waiting for moderation. Accounts to sign in with (links land in .local/mail/): coordination@demo.renfort.example
(national coordinator), referent@demo.renfort.example (referent of the Auvergne-Rhône-Alpes region),
admin@demo.renfort.example (administrator: appoints the others at /administration/roles) and
gestion@demo.renfort.example (manages the organisations).

Idempotent (keyed by e-mail, name, slug and title). Runs only where ENVIRONMENT is set to development or test
(./ops/run sets it): the setting's default would let a forgotten variable seed a real database with made-up people
and a national coordinator. Volunteers are written through the same `save_signups` the workers use.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import CoordinatorScope, ReferentScope, User
from app.campaigns.models import Campaign
from app.db.base import make_engine, unit_of_work
from app.geo.models import Commune
from app.missions.models import Mission, MissionAddress, MissionTemplate
from app.organisations.models import Organisation, OrganisationManager
from app.settings import Settings, get_settings
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import new_receipt, save_signups
from surge.emergencies.models import Emergency

# (first name, last name, postal code, commune INSEE code, domain, emergency)
PEOPLE = [
    ("Camille", "Bernard", "75011", "75056", "solidarite-insertion", "covid-19"),
    ("Louis", "Petit", "69003", "69123", "sante-pour-tous", "covid-19"),
    ("Chloé", "Robert", "13001", "13055", "education-pour-tous", None),
    ("Hugo", "Richard", "33000", "33063", "prevention-protection", "ukraine"),
    ("Inès", "Durand", "59000", "59350", "solidarite-insertion", "ukraine"),
    ("Nathan", "Dubois", "67000", "67482", "cooperation-internationale", "ukraine"),
    ("Léa", "Moreau", "31000", "31555", "sport-pour-tous", None),
    ("Jules", "Laurent", "44000", "44109", "protection-nature", None),
    ("Manon", "Simon", "97400", "97411", "sante-pour-tous", None),
    ("Adam", "Michel", "69100", "69266", "benevolat-competences", "covid-19"),
]


SEEDING_ENVIRONMENTS = ("development", "test")


CAMPAIGN_SLUG = "collecte-solidaire"
CAMPAIGN_NAME = "Collecte solidaire d'hiver"
CAMPAIGN_TEXT = ("Un mois pour remplir les rayons des épiceries et banques alimentaires avant l'hiver.\n\n"
                 "Trier, collecter, livrer : chaque heure donnée compte.")


def seeding_refusal(settings: Settings, program: str) -> str | None:
    """Why `program` must not write made-up data here (None: it may): only where ENVIRONMENT says, explicitly,
    development or test — never by default."""
    if settings.environment_declared and settings.environment in SEEDING_ENVIRONMENTS:
        return None
    shown = settings.environment if settings.environment_declared else "unset"
    return (f"{program} writes made-up people and accounts: it runs only with ENVIRONMENT=development or "
            f"ENVIRONMENT=test (ENVIRONMENT is {shown}).")


def volunteer_email(first: str, last: str) -> str:
    return f"{first.lower()}.{last.lower()}@demo.renfort.example"


def demo_signups(now: datetime) -> list[QueuedSignup]:
    return [
        QueuedSignup(
            receipt=new_receipt(),
            email=volunteer_email(first, last),
            email_normalized=volunteer_email(first, last),
            first_name=first,
            last_name=last,
            birth_date=date(1980 + index, 1 + index % 12, 10),
            postal_code=postal_code,
            commune_code=commune_code,
            domains=[domain],
            availability="weekends",
            emergency=emergency,
            accepted_at=now,
            consent_at=now,
        )
        for index, (first, last, postal_code, commune_code, domain, emergency) in enumerate(PEOPLE)
    ]


COORDINATOR = "coordination@demo.renfort.example"
MANAGER = "gestion@demo.renfort.example"
REFERENT = "referent@demo.renfort.example"
ADMIN = "admin@demo.renfort.example"
REFERENT_REGION = "84"  # Auvergne-Rhône-Alpes


def demo_accounts() -> list[dict[str, str]]:
    """Who to sign in as (at /connexion) and what to try; `python -m app.demo --accounts` prints it as JSON."""
    first, last, *_ = PEOPLE[0]
    return [
        {"email": ADMIN, "role": "administrator", "try": "appoint referents and coordinators: /administration/roles"},
        {"email": REFERENT, "role": "referent, Auvergne-Rhône-Alpes",
         "try": "moderate what waits: /moderation/organisations, /moderation/missions"},
        {"email": COORDINATOR, "role": "national coordinator",
         "try": "emergencies, dashboard, dispatch: /coordination"},
        {"email": MANAGER, "role": "organisation manager", "try": "missions and applications: /mon-espace/structures"},
        {"email": volunteer_email(first, last), "role": f"volunteer (1 of {len(PEOPLE)})",
         "try": "apply at /missions, follow at /mon-espace/candidatures"},
    ]


# (name, commune INSEE code, address, description)
ORGANISATIONS = [
    ("Banque alimentaire de Paris", "75056", "15 avenue Jean Jaurès", "Collecte et redistribution de denrées."),
    ("Entraide du Rhône", "69123", "8 rue Servient", "Aide aux personnes isolées et aux familles à Lyon."),
    ("Solidarité Marseille", "13055", "2 La Canebière", "Distribution de repas et maraudes à Marseille."),
    ("Secours du Nord", "59350", "1 place du Théâtre", "Entraide et accueil d'urgence dans la métropole lilloise."),
    ("Accueil Ukraine Strasbourg", "67482", "5 place de la Gare", "Accueil des personnes réfugiées d'Ukraine."),
    ("Gironde Solidaire", "33063", "10 cours de l'Intendance", "Hébergement et accompagnement des familles."),
]
# Registered, waiting for the referent: (name, commune INSEE code, address, description)
AWAITING_ORGANISATION = ("Épicerie solidaire de Villeurbanne", "69266", "12 rue Francis de Pressensé",
                         "Épicerie à petits prix pour les familles de Villeurbanne, tenue par des bénévoles.")
TEMPLATE = ("Collecte nationale de la banque alimentaire",
            "Accueillir les clients à l'entrée d'un magasin, leur présenter la collecte et trier les denrées "
            "données. Une formation de 15 minutes est assurée sur place par l'équipe.",
            "solidarite-insertion", ["accueil-information", "collecte-produits"])

EMERGENCIES = [
    ("covid-19", "Covid-19 — mars 2020", [],
     "L'épidémie de Covid-19 et le confinement privent les plus fragiles de leurs aides habituelles : les "
     "bénévoles âgés restent chez eux, les associations manquent de bras.",
     "Distribution alimentaire, courses et lien avec les personnes âgées isolées, garde d'enfants de soignants.",
     ["solidarite-insertion", "sante-pour-tous"]),
    ("ukraine", "Ukraine — mars 2022", ["67", "59", "75", "33"],
     "Des milliers de personnes fuyant la guerre en Ukraine arrivent en France.",
     "Accueil en gare, tri et acheminement des dons, interprétariat ukrainien et russe, accompagnement des "
     "familles hébergées.",
     ["solidarite-insertion", "cooperation-internationale"]),
]

# (organisation, title, domain, places, priority, emergency, remote)
MISSIONS = [
    ("Banque alimentaire de Paris", "Distribution de colis aux personnes isolées", "solidarite-insertion", 20, True,
     "covid-19", False),
    ("Entraide du Rhône", "Courses pour les personnes âgées confinées", "solidarite-insertion", 15, True,
     "covid-19", False),
    ("Entraide du Rhône", "Garde d'enfants de soignants", "education-pour-tous", 8, True, "covid-19", False),
    ("Solidarité Marseille", "Appels de convivialité aux aînés", "sante-pour-tous", 30, False, "covid-19", True),
    ("Secours du Nord", "Préparation de repas pour les sans-abri", "solidarite-insertion", 12, True, "covid-19",
     False),
    ("Accueil Ukraine Strasbourg", "Accueil des personnes réfugiées en gare", "solidarite-insertion", 25, True,
     "ukraine", False),
    ("Secours du Nord", "Tri et acheminement des dons", "solidarite-insertion", 20, True, "ukraine", False),
    ("Banque alimentaire de Paris", "Interprétariat ukrainien-français", "cooperation-internationale", 10, True,
     "ukraine", True),
    ("Gironde Solidaire", "Accompagnement des familles hébergées", "solidarite-insertion", 10, False, "ukraine",
     False),
    ("Solidarité Marseille", "Maraude du soir", "solidarite-insertion", 6, False, None, False),
]
# What volunteers do on each demo mission (slugs of app.reference.ACTIVITIES)
MISSION_ACTIVITIES = {
    "Distribution de colis aux personnes isolées": ["distribution", "lutte-contre-isolement"],
    "Courses pour les personnes âgées confinées": ["services-personne"],
    "Garde d'enfants de soignants": ["services-personne", "animation-loisirs"],
    "Appels de convivialité aux aînés": ["lutte-contre-isolement", "ecoute-aide-psychologique"],
    "Préparation de repas pour les sans-abri": ["distribution"],
    "Accueil des personnes réfugiées en gare": ["accueil-information"],
    "Tri et acheminement des dons": ["collecte-produits", "logistique"],
    "Interprétariat ukrainien-français": ["traduction"],
    "Accompagnement des familles hébergées": ["demarches-administratives"],
    "Maraude du soir": ["maraude"],
    "Soutien scolaire du mercredi": ["soutien-scolaire-formation"],
}
# Published by its manager, waiting for the referent's validation
AWAITING_MISSION = ("Entraide du Rhône", "Soutien scolaire du mercredi", "education-pour-tous", 5)


async def _user(session: AsyncSession, email: str) -> int:
    statement = (insert(User).values(email=email, email_normalized=email)
                 .on_conflict_do_update(index_elements=[User.email_normalized], set_={"email": email})
                 .returning(User.id))
    return int((await session.execute(statement)).scalar_one())


async def load_organisations(session: AsyncSession) -> int:
    """Organisations, their manager, the national coordinator, the emergencies and the missions; returns how many
    missions were created."""
    coordinator_id, manager_id = await _user(session, COORDINATOR), await _user(session, MANAGER)
    if await session.scalar(select(CoordinatorScope.id).where(CoordinatorScope.user_id == coordinator_id)) is None:
        session.add(CoordinatorScope(user_id=coordinator_id, department_code=None))
    referent_id, admin_id = await _user(session, REFERENT), await _user(session, ADMIN)
    await session.execute(insert(ReferentScope).values(user_id=referent_id, region_code=REFERENT_REGION)
                          .on_conflict_do_nothing())
    await session.execute(update(User).where(User.id == admin_id).values(is_admin=True))
    title, description, domain, activities = TEMPLATE
    if await session.scalar(select(MissionTemplate.id).where(MissionTemplate.title == title)) is None:
        session.add(MissionTemplate(title=title, description=description, domain=domain, activities=activities,
                                    open_to_minors=True, status="validated", created_by=coordinator_id))
    ids: dict[str, int] = {}
    for (name, commune_code, address, description), status in [
        *((organisation, "validated") for organisation in ORGANISATIONS), (AWAITING_ORGANISATION, "awaiting_validation")
    ]:
        commune = await session.get(Commune, commune_code)
        assert commune is not None, commune_code
        existing = await session.scalar(select(Organisation.id).where(Organisation.name == name))
        if existing is None:
            organisation = Organisation(name=name, type="association", rna=f"W{commune_code[:2]}1234567",
                                        address_line=address, postal_code=commune.postal_codes[0],
                                        commune_code=commune_code, description=description, status=status)
            session.add(organisation)
            await session.flush()
            session.add(OrganisationManager(organisation_id=organisation.id, user_id=manager_id))
            existing = organisation.id
        ids[name] = existing
    now = datetime.now(UTC)
    for slug, title, departments, description, needs, domains in EMERGENCIES:
        await session.execute(insert(Emergency).values(
            slug=slug, title=title, departments=departments, description=description, needs=needs,
            priority_domains=domains, status="live", live_at=now, created_by=coordinator_id,
        ).on_conflict_do_nothing(index_elements=[Emergency.slug]))
    await session.execute(insert(Campaign).values(
        slug=CAMPAIGN_SLUG, name=CAMPAIGN_NAME, text=CAMPAIGN_TEXT, starts_on=date.today() - timedelta(days=1),
        ends_on=date.today() + timedelta(days=30), domains=["solidarite-insertion"], created_by_id=coordinator_id,
    ).on_conflict_do_nothing(index_elements=[Campaign.slug]))
    created = 0
    organisation_communes = {name: commune_code for name, commune_code, _, _ in ORGANISATIONS}
    awaiting_owner, awaiting_title, awaiting_domain, awaiting_places = AWAITING_MISSION
    for (owner, title, domain, places, priority, emergency, remote), status in [
        *((mission, "published") for mission in MISSIONS),
        ((awaiting_owner, awaiting_title, awaiting_domain, awaiting_places, False, None, False), "awaiting_validation"),
    ]:
        organisation_id = ids[owner]
        if await session.scalar(select(Mission.id).where(Mission.organisation_id == organisation_id,
                                                         Mission.title == title)) is not None:
            continue
        mission = Mission(organisation_id=organisation_id, title=title, domain=domain, places=places,
                          priority=priority, emergency_slug=emergency, remote=remote, open_to_minors=False,
                          description=f"{title}. Mission proposée par {owner} ; formation sur place.",
                          activities=MISSION_ACTIVITIES.get(title, []), start_date=date.today(),
                          end_date=date.today() + timedelta(days=60),
                          status=status)
        session.add(mission)
        await session.flush()
        commune = await session.get(Commune, organisation_communes[owner])
        assert commune is not None and commune.latitude is not None and commune.longitude is not None
        session.add(MissionAddress(mission_id=mission.id, address_line="Adresse communiquée après acceptation",
                                   postal_code=commune.postal_codes[0], commune_code=commune.code,
                                   latitude=commune.latitude, longitude=commune.longitude))
        created += 1
    return created


async def load_demo() -> tuple[int, int]:
    settings = get_settings()
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            outcome = await save_signups(session, settings.secret_key.reveal(), demo_signups(datetime.now(UTC)))
            missions = await load_organisations(session)
    finally:
        await engine.dispose()
    return len(outcome.welcome), missions


if __name__ == "__main__":
    if sys.argv[1:] == ["--accounts"]:
        print(json.dumps(demo_accounts(), ensure_ascii=False))
        sys.exit(0)
    if refusal := seeding_refusal(get_settings(), "app.demo"):
        sys.exit(refusal)
    volunteers, missions = asyncio.run(load_demo())
    if volunteers or missions:
        print(f"démo : {volunteers} bénévole(s) et {missions} mission(s) ajouté(s) ; urgences Covid-19 et Ukraine")
    else:
        print("démo : déjà chargée")
