"""Hostile text is refused at validation, for every form and API body: a NUL byte, a C1 control, a lone surrogate or
a value longer than its column gets a 4xx with a French message naming the field (never a 500, never a row that
PostgreSQL refuses later), multi-line fields keep their line breaks, accented letters and emoji are welcome, and
the CSV export never hands a spreadsheet a live formula."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from markupsafe import escape
from redis.asyncio import Redis

from app.main import create_app
from app.text_rules import TextRefused, clean_items, clean_text
from tests.conftest import run_worker
from tests.factories import signup
from tests.test_applications import add_volunteers, apply, close, signed_in_volunteers
from tests.test_dispatch_runs import BASE as DISPATCH
from tests.test_dispatch_runs import emergency as live_emergency
from tests.test_dispatch_runs import missions as emergency_missions
from tests.test_emergencies import create as create_emergency
from tests.test_missions import mission, online_mission, validated_organisation
from tests.test_organisations import organisation, post_form, register, sign_in

NUL, C1, SURROGATE = "\x00", "\x85", "\ud800"
API = "/api/v1/volunteers"


def forbidden(label: str) -> str:
    return f"Le champ « {label} » contient un caractère non autorisé."


def too_long(label: str, length: str) -> str:
    return f"Le champ « {label} » ne doit pas dépasser {length} caractères."


async def written(redis: Redis) -> list[bytes]:
    """The keys requests wrote (the geography cache is the web process's own, from its start; the page cache holds
    what the forms read, such as the emergency a sign-up names)."""
    return [key for key in await redis.keys() if not key.startswith((b"renfort:geo:", b"renfort:pages:"))]


def shown(message: str) -> str:
    """As the page prints it (Jinja escapes apostrophes)."""
    return str(escape(message))


@pytest.fixture
async def other(settings: Any) -> Any:
    async with AsyncTestClient(app=create_app(settings)) as second:
        yield second


@pytest.fixture
async def mission_id(client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> int:
    """An online mission managed by `client`'s signed-in person (`other` is the moderator who validated it)."""
    organisation_id = await validated_organisation(client, other, redis, db, "gestion@example.org")
    return await online_mission(client, other, organisation_id)


# The rule itself -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f", "\ud800",
                                       "\udfff", "\ufffe", "\uffff"])
def test_controls_surrogates_and_non_characters_are_refused_anywhere(character: str) -> None:
    for multiline in (False, True):
        with pytest.raises(TextRefused) as refused:
            clean_text(f"Camille{character}Durand", "Prénom", 100, multiline=multiline)
        assert refused.value.message == forbidden("Prénom")
    with pytest.raises(TextRefused):  # stripping would have hidden the ones Python counts as spaces
        clean_text(f"Camille{character}", "Prénom", 100, collapse=True)


def test_line_breaks_and_tabs_only_in_multi_line_fields() -> None:
    kept = clean_text("  Ligne 1\r\nLigne 2\n\tfin  ", "Description", 100, multiline=True)
    assert kept == "Ligne 1\r\nLigne 2\n\tfin"
    for character in ("\n", "\r", "\t"):
        with pytest.raises(TextRefused):
            clean_text(f"Camille{character}Durand", "Prénom", 100)


def test_the_bound_is_the_columns_counted_in_characters_after_normalisation() -> None:
    assert clean_text("é" * 100, "Prénom", 100) == "é" * 100
    assert clean_text("e\u0301" * 100, "Prénom", 100) == "é" * 100  # NFC: 200 code points typed, 100 kept
    with pytest.raises(TextRefused) as refused:
        clean_text("a" * 5_001, "Description", 5_000)
    assert refused.value.message == too_long("Description", "5\u202f000")
    assert clean_text("Œuvre 🌍 solidaire", "Titre", 150) == "Œuvre 🌍 solidaire"
    assert clean_text(None, "Titre", 150) == ""
    with pytest.raises(TextRefused) as wrong:
        clean_text(12, "Titre", 150)
    assert wrong.value.message == "Le champ « Titre » doit être un texte."


def test_lists_are_checked_item_by_item_and_bounded_in_count() -> None:
    assert clean_items(" accueil,  distribution ,", "Activités", max_items=2, max_length=80, separator=",") == [
        "accueil", "distribution"]
    with pytest.raises(TextRefused) as many:
        clean_items(["a", "b", "c"], "Activités", max_items=2, max_length=80)
    assert many.value.message == "Le champ « Activités » ne doit pas compter plus de 2 éléments."
    with pytest.raises(TextRefused) as long_item:
        clean_items(["a" * 81], "Activités", max_items=2, max_length=80)
    assert long_item.value.message == "Chaque élément du champ « Activités » doit faire 80 caractères au plus."
    with pytest.raises(TextRefused) as control:
        clean_items(["ok", "k\x00"], "Activités", max_items=2, max_length=80)
    assert control.value.message == forbidden("Activités")


# The sign-up API and pages -------------------------------------------------------------------------------------


async def post_json(client: AsyncTestClient, body: dict[str, Any]) -> Any:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a hostile client would send it.
    return await client.post(API, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


async def test_the_signup_api_names_the_field_of_hostile_text_and_queues_nothing(
    client: AsyncTestClient, redis: Redis
) -> None:
    fields = {"first_name": "Prénom", "last_name": "Nom", "email": "Adresse e-mail", "phone": "Téléphone",
              "birth_date": "Date de naissance", "postal_code": "Code postal", "commune_code": "Commune",
              "emergency": "Urgence"}
    for field, label in fields.items():
        for character in (NUL, C1, SURROGATE):
            response = await post_json(client, signup(**{field: f"69{character}003"}))
            assert response.status_code == 422, (field, repr(character))
            assert response.json()["errors"][field] == forbidden(label), (field, repr(character))
    for field, label in (("domains", "Domaines d'action"), ("skills", "Compétences")):
        for character in (NUL, C1, SURROGATE):
            response = await post_json(client, signup(**{field: [f"permis{character}B"]}))
            assert response.status_code == 422
            assert response.json()["errors"][field] == forbidden(label)
    one_over = {"first_name": ("A" * 101, too_long("Prénom", "100")),
                "last_name": ("B" * 101, too_long("Nom", "100")),
                "email": ("a" * 243 + "@example.org", too_long("Adresse e-mail", "254")),
                "emergency": ("c" * 65, too_long("Urgence", "64")),
                "skills": (["s" * 81], "Indiquez au plus 20 compétences de 80 caractères au maximum chacune.")}
    for field, (value, message) in one_over.items():
        response = await post_json(client, signup(**{field: value}))
        assert response.status_code == 422 and response.json()["errors"][field] == message, field
    header_injection = await post_json(client, signup(email="ana@example.org\r\nBcc: tous@example.org"))
    assert header_injection.json()["errors"]["email"] == forbidden("Adresse e-mail")
    wrong_type = await post_json(client, signup(first_name=12, skills={"a": 1}))
    assert wrong_type.status_code == 422
    assert wrong_type.json()["errors"]["first_name"] == "Le champ « Prénom » doit être un texte."
    for body in (b'{"first_name": "\\ud800', b"[" * 5_000, b'{"first_name": NaN}'):
        malformed = await client.post(API, content=body, headers={"content-type": "application/json"})
        assert malformed.status_code == 422 and malformed.json()["errors"], body[:20]
    assert await written(redis) == []  # nothing queued, nothing counted: refused before Redis

    accepted = await post_json(client, signup(first_name="Élodie", last_name="Lœuvre-Næss", skills=["Cuisine 🍲"]))
    assert accepted.status_code == 202, accepted.text
    assert await written(redis) != []


async def test_the_signup_page_shows_the_message_naming_the_field(client: AsyncTestClient, redis: Redis) -> None:
    for values, message in (({"first_name": f"Ana{NUL}"}, forbidden("Prénom")),
                            ({"last_name": f"Martin{C1}"}, forbidden("Nom")),
                            ({"first_name": "A" * 101}, too_long("Prénom", "100"))):
        response = await post_form(client, "/inscription", signup(consent="on", **values), "/inscription")
        assert response.status_code == 422
        assert shown(message) in response.text
    assert await written(redis) == []


async def test_a_form_sent_as_multipart_with_invalid_utf8_is_not_a_500(client: AsyncTestClient) -> None:
    body = (b'--x\r\nContent-Disposition: form-data; name="first_name"\r\n\r\n\xff\xfe\r\n--x--\r\n')
    response = await client.post("/inscription", content=body,
                                 headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= response.status_code < 500


async def test_the_profile_refuses_hostile_text_and_keeps_the_saved_values(
    client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    [(_, email)] = await add_volunteers(db, 1)
    await sign_in(client, redis, db, email)
    profile = {"first_name": "Camille", "last_name": "Durand", "postal_code": "69003",
               "domains": ["solidarite-insertion"], "availability": "weekends"}
    for values, message in (({"first_name": f"Ca{NUL}mille"}, forbidden("Prénom")),
                            ({"last_name": f"Durand{C1}"}, forbidden("Nom")),
                            ({"skills": f"secourisme,{C1}"}, forbidden("Compétences")),
                            ({"last_name": "D" * 101}, too_long("Nom", "100"))):
        response = await post_form(client, "/mon-espace/profil", {**profile, **values}, "/mon-espace/profil")
        assert response.status_code == 422
        assert shown(message) in response.text
    assert await db.fetchval("SELECT first_name FROM volunteers WHERE email = $1", email) == "Camille"
    saved = await post_form(client, "/mon-espace/profil", {**profile, "first_name": "Hélène-Œdipe"},
                            "/mon-espace/profil")
    assert saved.status_code == 303
    assert await db.fetchval("SELECT first_name FROM volunteers WHERE email = $1", email) == "Hélène-Œdipe"


async def test_the_signin_email_refuses_controls_line_breaks_and_overlong_addresses(client: AsyncTestClient) -> None:
    for email, message in ((f"ana{NUL}@example.org", forbidden("Adresse e-mail")),
                           (f"ana@example.org{C1}", forbidden("Adresse e-mail")),
                           ("ana@example.org\r\nBcc: tous@example.org", forbidden("Adresse e-mail")),
                           ("a" * 243 + "@example.org", too_long("Adresse e-mail", "254"))):
        response = await post_form(client, "/connexion", {"email": email}, "/connexion")
        assert response.status_code == 422
        assert shown(message) in response.text


# Organisations and missions ------------------------------------------------------------------------------------


async def test_the_organisation_form_and_the_moderation_reason(
    client: AsyncTestClient, other: AsyncTestClient, redis: Redis, db: asyncpg.Connection
) -> None:
    await sign_in(client, redis, db, "gestion@example.org")
    path = "/organisations/nouvelle"
    for values, field_message in (({"name": f"Restos{NUL}"}, forbidden("Nom de la structure")),
                                  ({"address_line": f"12 rue{C1}"}, forbidden("Numéro et voie")),
                                  ({"description": f"Aide alimentaire{NUL} à Lyon, tous les jours."},
                                   forbidden("Présentation")),
                                  ({"donation_url": f"https://dons.example.org/{C1}"},
                                   forbidden("Lien pour faire un don")),
                                  ({"name": "N" * 151}, too_long("Nom de la structure", "150")),
                                  ({"description": "D" * 5_001}, too_long("Présentation", "5\u202f000"))):
        response = await post_form(client, path, organisation(**values), path)
        assert response.status_code == 422, values
        assert shown(field_message) in response.text
    assert await db.fetchval("SELECT count(*) FROM organisations") == 0
    unclosed = await post_form(client, path, organisation(donation_url="https://[dons"), path)
    assert unclosed.status_code == 422

    description = "Aide alimentaire à Lyon.\r\nDistribution le samedi 🍞, accueil des familles."
    organisation_id, _ = await register(client, name="Les Œuvres du Cœur", description=description)
    saved = await db.fetchval("SELECT description FROM organisations WHERE id = $1", organisation_id)
    assert saved == description  # the line break kept, the emoji too

    await post_form(client, f"/organisations/{organisation_id}/soumettre", {})
    await sign_in(other, redis, db, "admin@example.org", admin=True)
    for reason, message in ((f"Dossier{NUL}incomplet", forbidden("Motif")),
                            ("M" * 2_001, too_long("Motif", "2\u202f000"))):
        response = await post_form(other, f"/moderation/organisations/{organisation_id}/refuser", {"reason": reason},
                                   "/moderation/organisations")
        assert response.status_code == 422
        assert shown(message) in response.text
    assert await db.fetchval("SELECT status FROM organisations WHERE id = $1", organisation_id) == \
        "awaiting_validation"


async def test_the_mission_form_and_the_search_api(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection
                                                   ) -> None:
    await sign_in(client, redis, db, "gestion@example.org")
    organisation_id, _ = await register(client)
    path = f"/organisations/{organisation_id}/missions/nouvelle"
    for values, message in (({"title": f"Distribution{NUL} du samedi"}, forbidden("Titre de la mission")),
                            ({"description": f"Accueillir les familles{C1} et distribuer les colis."},
                             forbidden("Description")),
                            ({"activities": f"accueil, distri{NUL}bution"}, forbidden("Activités")),
                            ({"address_line_1": f"1 place{C1}"}, forbidden("Adresse 1")),
                            ({"postal_code_1": f"69{NUL}001"}, forbidden("Code postal")),
                            ({"schedule": f"le samedi{NUL}"}, forbidden("Rythme récurrent")),
                            ({"prerequisites": f"Aucun{C1}"}, forbidden("Prérequis")),
                            ({"emergency_slug": f"crue{NUL}"}, forbidden("Urgence liée")),
                            ({"places": f"1{NUL}"}, forbidden("Nombre de places")),
                            ({"title": "T" * 151}, too_long("Titre de la mission", "150")),
                            ({"description": "D" * 10_001}, too_long("Description", "10\u202f000")),
                            ({"schedule": "S" * 301}, too_long("Rythme récurrent", "300")),
                            ({"address_line_1": "A" * 201}, too_long("Adresse 1", "200")),
                            ({"activities": "a" * 81}, "Chaque élément du champ « Activités » doit faire 80 "
                                                       "caractères au plus.")):
        response = await post_form(client, path, mission(**values), path)
        assert response.status_code == 422, values
        assert shown(message) in response.text, values
    assert await db.fetchval("SELECT count(*) FROM missions") == 0

    response = await post_form(client, path, mission(title="Maraude 🌙 et café", prerequisites="Aucun.\nVenir à 8 h."),
                               path)
    assert response.status_code == 303, response.text
    row = await db.fetchrow("SELECT title, prerequisites FROM missions")
    assert dict(row) == {"title": "Maraude 🌙 et café", "prerequisites": "Aucun.\nVenir à 8 h."}

    for params in ({"emergency": NUL}, {"postal_code": f"690{NUL}1"}, {"page": NUL}):
        search = await client.get("/api/v1/missions", params=params)
        assert search.status_code == 422 and search.json()["errors"], params
    assert (await client.get("/api/v1/missions", params={"domain": C1})).status_code < 500


# Emergencies and dispatch --------------------------------------------------------------------------------------


async def test_the_emergency_form(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await sign_in(client, redis, db, "coord.aude@example.org", departments=("11",))
    for values, message in (({"title": f"Inondations{NUL}"}, forbidden("Titre")),
                            ({"description": f"Des crues{C1} ont touché l'Aude."}, forbidden("La situation")),
                            ({"needs": f"Nettoyage{NUL} des maisons."}, forbidden("Les besoins")),
                            ({"departments": f"11,{C1}"}, forbidden("Départements concernés")),
                            ({"priority_domains": [f"sport{NUL}"]}, forbidden("Domaines prioritaires")),
                            ({"ends_on": f"2099-01-01{NUL}"}, forbidden("Date de fin prévue")),
                            ({"title": "T" * 151}, too_long("Titre", "150")),
                            ({"needs": "N" * 5_001}, too_long("Les besoins", "5\u202f000"))):
        response = await create_emergency(client, **values)
        assert response.status_code == 422, values
        assert shown(message) in response.text, values
    assert await db.fetchval("SELECT count(*) FROM emergencies") == 0
    situation = "Des crues ont touché l'Aude.\r\nTrente communes 🌊 sont concernées."
    assert (await create_emergency(client, description=situation)).status_code == 303
    assert await db.fetchval("SELECT description FROM emergencies") == situation


async def test_the_dispatch_form(client: AsyncTestClient, redis: Redis, db: asyncpg.Connection) -> None:
    await live_emergency(db)
    [mission_id] = await emergency_missions(db, (2,))
    await sign_in(client, redis, db, "coordination69@example.org", departments=("69",))
    valid = {"pool": "departements", "max_km": "30", "missions": [str(mission_id)]}
    for values, message in (({"max_km": f"30{NUL}"}, forbidden("Distance maximale")),
                            ({"pool": f"departements{C1}"}, forbidden("Bénévoles à mobiliser")),
                            ({"domains": [f"sport{NUL}"]}, forbidden("Domaines des bénévoles")),
                            ({"missions": [f"{mission_id}{NUL}"]}, forbidden("Missions")),
                            ({"max_km": "3" * 33}, too_long("Distance maximale", "32"))):
        response = await post_form(client, DISPATCH, {**valid, **values}, DISPATCH)
        assert response.status_code == 422, values
        assert shown(message) in response.text, values
    assert await db.fetchval("SELECT count(*) FROM dispatch_runs") == 0


# Applications: the volunteer's message, the manager's reason and message, the export ----------------------------


async def test_application_texts_are_refused_before_redis_and_the_export_neutralises_formulas(
    client: AsyncTestClient, mission_id: int, settings: Any, redis: Redis, db: asyncpg.Connection
) -> None:
    clients, ids = await signed_in_volunteers(settings, redis, db, 2)
    await db.execute("UPDATE volunteers SET first_name = '=HYPERLINK(\"http://evil.example\",\"x\")',"
                     " last_name = '@SUM(A1)', phone = '+33612345678' WHERE id = $1", ids[0])
    try:
        for message, shown_message in ((f"Dispo{NUL}", forbidden("Un mot pour la structure")),
                                       (f"Dispo{C1}", forbidden("Un mot pour la structure")),
                                       ("m" * 1_001, too_long("Un mot pour la structure", "1\u202f000"))):
            response = await post_form(clients[0], f"/missions/{mission_id}/candidater", {"message": message})
            assert response.status_code == 422
            assert shown(shown_message) in response.text
        assert await redis.llen("renfort:applications:pending") == 0
        assert await db.fetchval("SELECT count(*) FROM applications") == 0

        assert await apply(clients[0], mission_id, "Disponible le samedi 🙂\nEt le dimanche matin.") == "pending"
        assert await apply(clients[1], mission_id, "-1+1") == "pending"
        run_worker()
        assert await db.fetchval("SELECT message FROM applications WHERE volunteer_id = $1", ids[0]) == \
            "Disponible le samedi 🙂\nEt le dimanche matin."

        listing = f"/missions/{mission_id}/candidatures"
        for reason, message in ((f"Complet{NUL}", forbidden("Motif du refus")),
                                ("Complet\r\nBcc: x", forbidden("Motif du refus")),
                                ("r" * 1_001, too_long("Motif du refus", "1\u202f000"))):
            response = await post_form(client, f"{listing}/decision",
                                       {"decision": "refuser", "volunteer": [str(ids[1])], "reason": reason}, listing)
            assert response.status_code == 422
            assert shown(message) in response.text
        page = await client.get(listing)
        sending = page.text.split('name="envoi" value="', 1)[1].split('"', 1)[0]
        for body, message in ((f"Bonjour{NUL}", forbidden("Message")),
                              ("b" * 5_001, too_long("Message", "5\u202f000"))):
            response = await post_form(client, f"{listing}/message",
                                       {"volunteer": [str(ids[0])], "body": body, "envoi": sending}, listing)
            assert response.status_code == 422
            assert shown(message) in response.text
        assert not await redis.exists(f"renfort:applications:message-sent:{sending}")  # nothing sent, still usable
        declined = await post_form(client, f"{listing}/decision",
                                   {"decision": "refuser", "volunteer": [str(ids[1])], "reason": "Complet, désolé.",
                                    "confirm": "1"},
                                   listing)
        assert declined.status_code == 303

        response = await post_form(client, f"/missions/{mission_id}/candidatures/export", {}, listing)
        location = response.headers["location"]
        run_worker()
        download = await client.get(location + "/candidatures.csv")
        assert download.status_code == 200
        assert download.content.startswith("\ufeff".encode())
        text = download.content.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        by_email = {row[2]: row for row in rows[1:]}
        first = by_email["benevole1@example.org"]
        assert first[:4] == ["'=HYPERLINK(\"http://evil.example\",\"x\")", "'@SUM(A1)", "benevole1@example.org",
                             "'+33612345678"]
        assert first[7] == "Disponible le samedi 🙂\nEt le dimanche matin."
        assert by_email["benevole2@example.org"][7] == "'-1+1"
        assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    finally:
        await close(clients)
