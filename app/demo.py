"""Demo data for a local run (`python -m app.demo`, called by ./ops/run): a few volunteers across France.

Idempotent (keyed by e-mail); never run in production. Written through the same `save_signups` the workers use.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from app.db.base import make_engine, unit_of_work
from app.settings import get_settings
from app.volunteers.schemas import QueuedSignup
from app.volunteers.service import new_receipt, save_signups

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


def demo_signups(now: datetime) -> list[QueuedSignup]:
    return [
        QueuedSignup(
            receipt=new_receipt(),
            email=f"{first.lower()}.{last.lower()}@demo.renfort.example",
            email_normalized=f"{first.lower()}.{last.lower()}@demo.renfort.example",
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


async def load_demo() -> int:
    engine = make_engine(get_settings().database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            outcome = await save_signups(session, demo_signups(datetime.now(UTC)))
    finally:
        await engine.dispose()
    return len(outcome.welcome)


if __name__ == "__main__":
    created = asyncio.run(load_demo())
    print(f"démo : {created} bénévole(s) ajouté(s)" if created else "démo : déjà chargée")
