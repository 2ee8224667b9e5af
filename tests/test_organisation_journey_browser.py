"""The organisation's journey in a real headless Chromium against granian, with real workers and e-mails through a
local SMTP sink: a person with no account registers an association, a referent validates it, the person publishes a
mission that the referent validates, is e-mailed the first application and accepts the volunteer."""

from __future__ import annotations

import re
from datetime import date, timedelta

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in

FOUNDER = "fondatrice.journey@example.org"
REFERENT = "referente.rhone@example.org"
VOLUNTEER = "noa.journey@example.org"
ASSOCIATION = "Les Jardins partagés de la Croix-Rousse"
TITLE = "Entretien du jardin partagé"


async def seed(db: asyncpg.Connection) -> None:
    """The Rhône's referent (appointed by an admin: tests/test_roles_journey_browser.py) and a volunteer's sign-up."""
    referent = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id", REFERENT)
    await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, '69')", referent)
    await db.execute(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-org-journey', $1, $1,"
        " 'Noa', 'Garnier', DATE '1994-06-02', '69004', '69123', '{protection-nature}', 'weekends', '{}',"
        " now(), now())", VOLUNTEER,
    )


def mails_to(sink: MailSink, address: str) -> list[tuple[str, str]]:
    return [(str(mail["Subject"]), mail.get_content()) for mail in sink.messages() if mail["To"] == address]


async def register_association(founder: Page, sink: MailSink) -> None:
    await founder.goto("/inscription/structure")
    await founder.get_by_label("Votre adresse e-mail").fill(FOUNDER)
    await founder.get_by_label("Nom de la structure").fill(ASSOCIATION)
    await founder.get_by_label("Type de structure").select_option("association")
    await founder.get_by_label("Numéro RNA (associations)").fill("W691234567")
    await founder.get_by_label("Numéro et voie").fill("3 rue du Mail")
    await founder.get_by_label("Code postal").fill("69004")
    await founder.get_by_label("Présentation").fill("Un jardin partagé ouvert aux habitants du quartier.")
    await founder.get_by_role("button", name="Inscrire la structure").click()
    await expect(founder.locator("#envoye")).to_contain_text("Si cette adresse est valide")

    run_worker({"SMTP_URL": sink.url})
    [(subject, body)] = mails_to(sink, FOUNDER)
    assert subject == "Confirmez l'inscription de votre structure sur Renfort"
    link = re.search(r"https?://\S+/invitation\?jeton=\S+", body)
    assert link, "no invitation link in the e-mail"
    await founder.goto("/invitation" + link[0].split("/invitation", 1)[1])  # the server under test, not BASE_URL
    await founder.get_by_role("button", name="Accepter et me connecter").click()
    await expect(founder).to_have_url(re.compile(r"/mon-espace/structures$"))
    await expect(founder.locator("h2", has_text=ASSOCIATION)).to_be_visible()
    await founder.get_by_role("button", name="Soumettre à validation").click()
    await expect(founder.locator("#info")).to_contain_text("La structure est soumise à validation")
    await expect(founder.locator(".statut").first).to_have_text("En attente de validation")


async def publish_mission(founder: Page) -> int:
    await founder.goto("/mon-espace/structures")
    await founder.get_by_role("link", name="Nouvelle mission").click()
    await founder.get_by_label("Titre de la mission").fill(TITLE)
    await founder.get_by_label("Description").fill("Désherber, arroser et récolter avec les habitants du quartier.")
    await founder.get_by_label("Domaine").select_option("protection-nature")
    await founder.get_by_label("Adresse 1 : numéro et voie").fill("3 rue du Mail")
    await founder.get_by_label("Code postal").first.fill("69004")
    await founder.get_by_label("Date de début").fill((date.today() + timedelta(days=3)).isoformat())
    await founder.get_by_label("Nombre de places").fill("4")
    await founder.get_by_role("button", name="Enregistrer").click()
    match = re.search(r"/missions/(\d+)-", founder.url)
    assert match, founder.url
    await founder.get_by_role("button", name="Publier", exact=True).click()
    await expect(founder.get_by_text("En attente de validation").first).to_be_visible()
    return int(match[1])


async def test_an_association_registers_is_validated_publishes_and_accepts_its_first_volunteer(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    await seed(db)
    founder = await new_page(browser, web)
    await register_association(founder, sink)
    organisation_id = await db.fetchval("SELECT id FROM organisations WHERE name = $1", ASSOCIATION)

    referent = await new_page(browser, web)
    await sign_in(referent, sink, REFERENT)
    await referent.goto("/moderation/organisations")
    await referent.locator(f"#structure-{organisation_id}").get_by_role("button", name="Valider").click()
    await expect(referent.locator("#validees")).to_contain_text(ASSOCIATION)
    run_worker({"SMTP_URL": sink.url})
    assert "Votre structure est validée sur Renfort" in [subject for subject, _ in mails_to(sink, FOUNDER)]

    # Not trusted yet, no template: the mission waits for the referent.
    mission_id = await publish_mission(founder)
    assert await db.fetchval("SELECT status FROM missions WHERE id = $1", mission_id) == "awaiting_validation"
    await referent.goto("/moderation/missions")
    await referent.locator(f"#mission-{mission_id}").get_by_role("button", name="Valider").click()
    await expect(referent.locator(f"#en-attente #mission-{mission_id}")).to_have_count(0)
    run_worker({"SMTP_URL": sink.url})
    assert f"Votre mission « {TITLE} » est en ligne" in [subject for subject, _ in mails_to(sink, FOUNDER)]

    volunteer = await new_page(browser, web)
    await sign_in(volunteer, sink, VOLUNTEER)
    await volunteer.goto(f"/missions/{mission_id}-x")
    await volunteer.get_by_label("Un mot pour la structure").fill("J'ai un peu d'expérience en permaculture.")
    await volunteer.get_by_role("button", name="Je candidate").click()
    await expect(volunteer.locator("#resultat")).to_contain_text("Votre candidature est envoyée")

    run_worker({"SMTP_URL": sink.url})  # the drain, then the organisation's e-mail it asks for
    run_worker({"SMTP_URL": sink.url})
    told = [body for subject, body in mails_to(sink, FOUNDER) if subject == f"Nouvelle candidature pour « {TITLE} »"]
    assert len(told) == 1 and f"/missions/{mission_id}/candidatures" in told[0]

    await founder.goto("/mon-espace/structures")
    await expect(founder.locator(f"#mission-{mission_id} .candidatures")).to_have_text("1 en attente de réponse")
    await founder.locator(f"#mission-{mission_id} .candidatures").click()
    applicant = founder.locator("#candidats tr", has_text="Noa Garnier")
    await expect(applicant).to_contain_text("J'ai un peu d'expérience en permaculture.")
    await applicant.get_by_role("checkbox").check()
    await founder.get_by_role("button", name="Accepter la sélection").click()
    await expect(founder.locator("#info")).to_contain_text("1 candidature(s) acceptée(s)")

    run_worker({"SMTP_URL": sink.url})
    assert f"Votre candidature à « {TITLE} » est acceptée" in [subject for subject, _ in mails_to(sink, VOLUNTEER)]
    assert await db.fetchval("SELECT status FROM applications WHERE mission_id = $1", mission_id) == "accepted"
