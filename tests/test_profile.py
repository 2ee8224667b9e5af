"""The volunteer's own profile: French messages per field, the e-mail kept as the identity, e-mail preferences, and
the page for a signed-in person who never signed up as a volunteer."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from ops.services import MailSink
from tests.test_organisations import post_form, sign_in
from tests.test_signin import sign_up

EMAIL = "camille.durand@example.org"
PROFILE = "/mon-espace/profil"


def edited(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "first_name": "Camille",
        "last_name": "Durand-Lefèvre",
        "phone": "07 98 76 54 32",
        "postal_code": "69210",
        "commune_code": "69032",  # Bully: 69210 is shared by eleven communes
        "domains": ["sante-pour-tous", "protection-nature"],
        "availability": "evenings",
        "skills": "secourisme,  permis B ",
        "mail_emergencies": "on",  # mail_applications unticked: absent from the form
    }
    body.update(overrides)
    return body


async def signed_up_volunteer(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection,
                              mail_sink: MailSink) -> None:
    await sign_up(client, mail_sink, EMAIL)  # through the real API and a real worker
    await sign_in(client, redis, db, EMAIL)


async def test_the_profile_shows_the_volunteer_as_signed_up_with_the_email_read_only(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    await signed_up_volunteer(client, redis, db, mail_sink)
    page = await client.get(PROFILE)
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert f'<strong id="email">{EMAIL}</strong>' in page.text
    assert 'name="email"' not in page.text  # the identity is shown, never editable
    assert 'value="Ana"' in page.text and 'value="69003"' in page.text
    assert 'id="availability-weekends" name="availability" value="weekends" checked' in page.text
    assert 'name="mail_applications" value="on" checked' in page.text
    assert 'name="mail_emergencies" value="on" checked' in page.text
    assert 'href="/mon-espace/profil"' in (await client.get("/mon-espace")).text


async def test_every_wrong_field_gets_its_french_message_and_the_form_comes_back_filled(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    await signed_up_volunteer(client, redis, db, mail_sink)
    bad = edited(first_name=" ", last_name="R2-D2", phone="12345", postal_code="69210", commune_code="",
                 domains=[], availability="jamais", skills="x" * 81)
    response = await post_form(client, PROFILE, bad, PROFILE)
    assert response.status_code == 422
    assert response.headers["cache-control"] == "no-store"
    for message in (
        "Indiquez votre prénom.",
        "Utilisez uniquement des lettres, des espaces, des tirets ou des apostrophes.",
        "Saisissez un numéro de téléphone français valide, par exemple 06 12 34 56 78.",
        "Plusieurs communes ont ce code postal : choisissez la vôtre.",
        "Choisissez au moins un domaine d&#39;action.",
        "Choix inconnu : utilisez les valeurs proposées.",
        "Indiquez au plus 20 compétences de 80 caractères au maximum chacune.",
    ):
        assert message in response.text, message
    assert 'value="R2-D2"' in response.text and '<option value="69032"' in response.text
    assert 'name="mail_emergencies" value="on" checked' in response.text
    assert 'name="mail_applications" value="on" checked' not in response.text
    row = await db.fetchrow("SELECT first_name, last_name, phone FROM volunteers WHERE email_normalized = $1", EMAIL)
    assert dict(row) == {"first_name": "Ana", "last_name": "Martin", "phone": "+33612345678"}

    unknown = await post_form(client, PROFILE, edited(postal_code="99999"), PROFILE)
    assert unknown.status_code == 422 and "Ce code postal n&#39;existe pas. Vérifiez-le." in unknown.text
    elsewhere = await post_form(client, PROFILE, edited(commune_code="69123"), PROFILE)
    assert elsewhere.status_code == 422
    assert "Cette commune ne correspond pas au code postal indiqué." in elsewhere.text


async def test_a_valid_edit_is_saved_with_its_email_preferences_and_confirmed(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    await signed_up_volunteer(client, redis, db, mail_sink)
    response = await post_form(client, PROFILE, edited(email="autre@example.org"), PROFILE)
    assert response.status_code == 303 and response.headers["location"] == "/mon-espace/profil?enregistre=1"
    row = await db.fetchrow("SELECT * FROM volunteers")
    assert row["email_normalized"] == EMAIL  # a posted e-mail is ignored: it is the identity
    assert row["first_name"] == "Camille" and row["last_name"] == "Durand-Lefèvre"
    assert row["phone"] == "+33798765432"
    assert (row["postal_code"], row["commune_code"]) == ("69210", "69032")
    assert row["domains"] == ["sante-pour-tous", "protection-nature"]
    assert row["availability"] == "evenings" and row["skills"] == ["secourisme", "permis B"]
    assert (row["mail_applications"], row["mail_emergencies"]) == (False, True)
    assert row["birth_date"].isoformat() == "1990-04-12"  # not on the form: untouched

    page = await client.get(response.headers["location"])
    assert "Vos modifications sont enregistrées." in page.text
    assert 'name="mail_applications" value="on" checked' not in page.text
    assert 'name="mail_emergencies" value="on" checked' in page.text

    both_off = edited(phone="", skills="")
    del both_off["mail_emergencies"]
    assert (await post_form(client, PROFILE, both_off, PROFILE)).status_code == 303
    row = await db.fetchrow("SELECT phone, skills, mail_applications, mail_emergencies FROM volunteers")
    assert dict(row) == {"phone": None, "skills": [], "mail_applications": False, "mail_emergencies": False}


async def test_a_signed_in_person_who_never_signed_up_is_sent_to_the_signup(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "gestion@example.org")
    page = await client.get(PROFILE)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "Aucun profil de bénévole" in page.text and 'href="/inscription"' in page.text
    response = await post_form(client, PROFILE, edited())
    assert response.status_code == 200 and "Aucun profil de bénévole" in response.text
    assert await db.fetchval("SELECT count(*) FROM volunteers") == 0


async def test_the_profile_needs_a_session_and_a_csrf_token(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection, mail_sink: MailSink
) -> None:
    anonymous = await client.get(PROFILE, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/connexion?suite=%2Fmon-espace%2Fprofil"
    await signed_up_volunteer(client, redis, db, mail_sink)
    forged = await client.post(PROFILE, data=edited(), follow_redirects=False)
    assert forged.status_code == 403
    assert await db.fetchval("SELECT first_name FROM volunteers") == "Ana"
