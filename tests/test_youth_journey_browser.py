"""The SNU journey in a real headless Chromium against granian, with real workers and e-mails through a local SMTP
sink: a referent of the Rhône invites a young person of 16, who creates their space; their guardian consents from the
e-mailed link; an organisation's manager opens a mission in Lyon to the SNU and the referent validates it; the young
person adds it to their wishes; once the deadline has passed the referent allocates and confirms; the young person,
the guardian and the tutor sign the agreement from their e-mailed links, the referent from the follow-up page, where
the mission is then under way."""

from __future__ import annotations

import re
from datetime import timedelta

import asyncpg
from playwright.async_api import Browser, Page, expect

from ops.services import MailSink
from tests.conftest import run_worker
from tests.servers import WebServer
from tests.test_application_journey_browser import new_page, sign_in
from tests.test_youth_cohorts import MISSIONS_START, TODAY, add_cohort, born, no_cohorts

FIXTURES = (no_cohorts,)
REFERENT = "referente.rhone@example.org"
MANAGER = "tuteur.journey@example.org"
YOUNG = "ines.journey@example.org"
GUARDIAN = "parent.journey@example.org"
MISSION = "Accompagner les sorties des résidents"


async def seed(db: asyncpg.Connection) -> tuple[int, int]:
    """A cohort whose department 69 chooses until in ten days, its referent, and a published mission in Lyon, open
    to minors, of a validated organisation with its manager (a volunteer too, so the tutor has a name)."""
    cohort_id = await add_cohort(db, name="Cohorte d'automne", deadline=TODAY + timedelta(days=10))
    referent_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                    REFERENT)
    await db.execute("INSERT INTO referent_scopes (user_id, department_code) VALUES ($1, '69')", referent_id)
    await db.execute(
        "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date, postal_code,"
        " commune_code, domains, availability, skills, consent_at, accepted_at) VALUES ('r-snu-journey', $1, $1,"
        " 'Théo', 'Tuteur', DATE '1985-06-02', '69003', '69123', '{solidarite-insertion}', 'weekends', '{}',"
        " now(), now())", MANAGER,
    )
    manager_id = await db.fetchval("INSERT INTO users (email, email_normalized) VALUES ($1, $1) RETURNING id",
                                   MANAGER)
    organisation_id = await db.fetchval(
        "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description, status)"
        " VALUES ('Entraide du Rhône', 'association', 'W691234567', '8 rue Servient', '69003', '69123',"
        " 'Aide aux personnes isolées.', 'validated') RETURNING id"
    )
    await db.execute("INSERT INTO organisation_managers (organisation_id, user_id) VALUES ($1, $2)",
                     organisation_id, manager_id)
    mission_id: int = await db.fetchval(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, status) VALUES ($1, $2, 'Promener les résidents et leur tenir compagnie.',"
        " 'solidarite-insertion', '{}', false, current_date, 4, true, 'published') RETURNING id",
        organisation_id, MISSION,
    )
    await db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT $1, '8 rue Servient', '69003', code, latitude, longitude FROM communes WHERE code = '69123'",
        mission_id,
    )
    return cohort_id, mission_id


def link_in(sink: MailSink, to: str, path: str) -> str:
    """The path and query of the last link to `path` e-mailed to `to` (the server under test, not BASE_URL)."""
    for message in reversed(sink.messages()):
        if message["To"] == to and (found := re.search(rf"https?://[^/\s]+({re.escape(path)}\?jeton=\S+)",
                                                      message.get_content())):
            return found[1]
    raise AssertionError(f"no {path} link e-mailed to {to}")


async def sign_agreement(page: Page, link: str, name: str) -> None:
    await page.goto(link)
    await expect(page.locator("#resume")).to_contain_text(MISSION)
    await page.get_by_label(re.compile("^Votre prénom et votre nom")).fill(name)
    await page.get_by_label("J'ai lu et j'accepte le contrat d'engagement").check()
    await page.get_by_role("button", name="Signer le contrat").click()
    await expect(page.locator("#info")).to_contain_text("Merci, votre signature est enregistrée.")


async def test_invited_consented_chosen_allocated_and_signed_by_every_party(
    browser: Browser, web: WebServer, sink: MailSink, db: asyncpg.Connection
) -> None:
    cohort_id, mission_id = await seed(db)

    # 1. The referent invites a young person of the Rhône.
    referent = await new_page(browser, web)
    await sign_in(referent, sink, REFERENT)
    await referent.goto("/snu/referent/invitations")
    await referent.get_by_label("Cohorte").select_option(label="Cohorte d'automne")
    await referent.get_by_label(re.compile("^Département")).fill("69")
    await referent.get_by_label("Prénom du ou de la jeune").fill("Inès")
    await referent.get_by_label("Nom du ou de la jeune", exact=True).fill("Jeune")
    await referent.get_by_label("Son adresse e-mail").fill(YOUNG)
    await referent.get_by_role("button", name="Envoyer l'invitation").click()
    await expect(referent.locator("#info")).to_contain_text("Invitation enregistrée")

    manager = await new_page(browser, web)
    await sign_in(manager, sink, MANAGER)  # its worker sends the invitation too

    # 2. The young person creates their space from the e-mail, with their guardian's name and address.
    young = await new_page(browser, web)
    await young.goto(link_in(sink, YOUNG, "/snu/invitation"))
    await expect(young.get_by_role("heading", level=1)).to_have_text("Rejoindre la cohorte « Cohorte d'automne »")
    await expect(young.get_by_label("Prénom", exact=True)).to_have_value("Inès")
    await young.get_by_label(re.compile("^Date de naissance")).fill(born(16).isoformat())
    await young.get_by_label(re.compile("^Code postal")).fill("69003")
    await young.get_by_label("Son prénom et son nom").fill("Gaëlle Jeune")
    await young.get_by_label("Son adresse e-mail").fill(GUARDIAN)
    await young.get_by_role("button", name="Créer mon espace jeune").click()
    await expect(young.get_by_role("heading", level=1)).to_have_text("Bonjour Inès")
    await expect(young.locator("#statut")).to_contain_text("En attente de l'accord de votre représentant·e légal·e")

    # 4. The manager opens the mission to the SNU, tutoring it; the referent validates the offer.
    await manager.goto(f"/missions/{mission_id}-x")
    await manager.get_by_role("link", name="Offre SNU (ouvrir aux jeunes du SNU)").click()
    await expect(manager.get_by_role("heading", level=1)).to_have_text("Ouvrir aux jeunes du SNU")
    await manager.get_by_label(re.compile("^Places pour les jeunes")).fill("2")
    await manager.get_by_label("Date de début", exact=True).fill((MISSIONS_START + timedelta(days=10)).isoformat())
    await manager.get_by_label(re.compile("^Date de fin")).fill((MISSIONS_START + timedelta(days=40)).isoformat())
    await expect(manager.get_by_label(re.compile("^Heures de mission"))).to_have_value("84")
    await manager.get_by_label(re.compile("^Tuteur ou tutrice")).select_option(label=f"Théo Tuteur ({MANAGER})")
    await manager.get_by_role("button", name="Ouvrir la mission aux jeunes").click()
    await expect(manager.locator("body")).to_contain_text("Offre enregistrée")

    await referent.goto("/snu/referent/offres")
    await referent.locator("tr", has_text=MISSION).get_by_role("button", name="Valider").click()
    await expect(referent.locator("#info")).to_contain_text("Offre validée")

    # 3. On their phone, the young person signs in (the worker sends the guardian's request); the guardian consents.
    phone = await new_page(browser, web)
    await sign_in(phone, sink, YOUNG)
    guardian = await new_page(browser, web)
    await guardian.goto(link_in(sink, GUARDIAN, "/snu/consentement"))
    await expect(guardian.get_by_role("heading", level=1)).to_contain_text("Inès Jeune")
    await expect(guardian.get_by_label(re.compile("^Votre prénom et votre nom"))).to_have_value("Gaëlle Jeune")
    await guardian.get_by_label("Je donne mon accord").check()
    await guardian.get_by_role("button", name="Enregistrer ma réponse").click()
    await expect(guardian.locator("#info")).to_contain_text("Merci, votre réponse est enregistrée")

    # 5. The young person finds the mission and adds it to their wishes.
    await phone.goto("/snu")
    await expect(phone.locator("#statut")).to_contain_text("Vous êtes prêt·e à choisir votre mission.")
    await phone.get_by_role("link", name="Choisir mes missions").click()
    card = phone.locator("#offres li", has_text=MISSION)
    await expect(card).to_contain_text("Du ")
    await card.get_by_role("button", name=f"Ajouter à mes vœux : {MISSION}").click()
    await expect(phone.locator("#info")).to_contain_text("La mission est ajoutée à vos vœux.")
    await expect(phone.locator("#voeux")).to_contain_text(MISSION)

    # 6. The deadline passes.
    await db.execute("UPDATE cohort_department_deadlines SET choose_by = $1 WHERE cohort_id = $2",
                     TODAY - timedelta(days=1), cohort_id)

    # 7. The referent launches the allocation, reviews the preview once solved, and confirms it.
    await referent.goto("/snu/referent")
    await referent.get_by_role("link", name="Affectation", exact=True).click()
    await expect(referent.get_by_role("heading", level=1)).to_have_text("Affectation des jeunes du SNU")
    await referent.get_by_role("button", name="Lancer l'affectation").click()
    await expect(referent.locator("#statut")).to_contain_text("Calcul en cours")
    run_worker({"SMTP_URL": sink.url})
    await expect(referent.locator("#statut")).to_contain_text("Plan prêt")  # the page's script saw it solved
    await expect(referent.locator("#rangs")).to_contain_text("1er vœu : 1 · 2e vœu : 0")
    await expect(referent.locator("#affectes")).to_contain_text("Inès Jeune")
    await referent.get_by_role("button", name="Confirmer l'affectation").click()
    await expect(referent.locator("#info")).to_contain_text("Affectation confirmée")

    # 8. Every party signs: the young person, the guardian and the tutor from their e-mails, the referent from the
    # follow-up page; the mission is then under way.
    run_worker({"SMTP_URL": sink.url})
    await sign_agreement(phone, link_in(sink, YOUNG, "/snu/convention"), "Inès Jeune")
    await sign_agreement(guardian, link_in(sink, GUARDIAN, "/snu/convention"), "Gaëlle Jeune")
    await sign_agreement(manager, link_in(sink, MANAGER, "/snu/convention"), "Théo Tuteur")
    await referent.goto("/snu/referent")
    waiting = referent.locator("#signatures")
    await expect(waiting).to_contain_text("Inès Jeune")
    await waiting.get_by_role("link", name=re.compile("^Lire et signer")).click()
    await referent.get_by_label(re.compile("^Votre prénom et votre nom")).fill("Référente du Rhône")
    await referent.get_by_label("J'ai lu et j'accepte le contrat d'engagement").check()
    await referent.get_by_role("button", name="Signer le contrat").click()
    await expect(referent.locator("#info")).to_contain_text("Toutes les parties ont signé : le contrat est conclu.")

    await referent.goto("/snu/referent")
    await expect(referent.locator("#en-cours")).to_contain_text("Inès Jeune")
    await expect(referent.locator("#en-cours")).to_contain_text(MISSION)
    await expect(referent.locator("#signatures-nombre")).to_have_text("0")
    assert await db.fetchval("SELECT count(*) FROM youth_agreement_signatures WHERE signed_at IS NOT NULL") == 4
    assert await db.fetchval("SELECT signed_at IS NOT NULL FROM youth_agreements") is True
