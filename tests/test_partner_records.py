"""A partner's incoming record: strict dates, the domain and activity mappings, placing on real communes, and the
automatic moderation's refusals with API Engagement's wording."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from app.db.base import make_engine, unit_of_work
from app.partners import dates, domains
from app.partners.normalise import normalise, plain_text
from app.partners.placing import Placer
from app.partners.records import PartnerRecord, RecordAddress, RecordLocation
from app.reference import ACTIVITIES, DOMAINS
from tests.conftest import DATABASE_URL

ENGAGEMENT_DOMAINS = [
    "animaux", "autre", "batiment-industrie-logistique", "benevolat-competences", "communication", "culture-loisirs",
    "education", "emploi", "environnement", "gestion-finance-droit", "humanitaire", "memoire-et-citoyennete",
    "numerique", "prevention-protection", "recherche", "sante", "service-public-defense-securite", "sport",
    "solidarite-insertion", "vivre-ensemble",
]


async def _load_placer() -> Placer:
    engine = make_engine(DATABASE_URL, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            return await Placer.load(session)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def placer(database: str) -> Placer:
    return asyncio.run(_load_placer())


def good(**fields: object) -> PartnerRecord:
    values: dict[str, object] = {
        "client_id": "m-1", "title": "Aide aux devoirs pour collégiens", "description": "<p>Accompagner des élèves</p>",
        "application_url": "https://partenaire.example/m/1", "domain": "education", "remote": "no", "places": 3,
        "start_at": "2030-01-31", "end_at": "2030-06-30", "organization_name": "Asso Lyon Devoirs",
        "organization_client_id": "org-1",
        "addresses": [RecordAddress(street="1 rue de la République", postal_code="69001", city="Lyon")],
    }
    values.update(fields)
    return PartnerRecord(**values)  # type: ignore[arg-type]


# --- dates -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("2030-01-31", date(2030, 1, 31)),
    ("2030-01-31T09:00:00Z", datetime(2030, 1, 31, 9, tzinfo=UTC)),
    ("2030-01-31T09:00:00.250+02:00", datetime(2030, 1, 31, 9, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=2)))),
    ("2030-01-31T23:30:00-05:00", datetime(2030, 1, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))),
])
def test_iso_dates_with_a_day_or_a_full_time_and_offset_are_accepted(text: str, expected: date) -> None:
    assert dates.parse_iso(text) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("01/02/2025", "invalide"),
    ("2025-1-2", "invalide"),
    ("2030-01-31T09:00:00", "fuseau horaire"),
    ("2030-01-31T09:00", "fuseau horaire"),
    ("2030-02-30", "n'existe pas"),
    ("1999-12-31", "entre 2000 et 2100"),
    ("2101-01-01", "entre 2000 et 2100"),
    ("2030-01-31T25:00:00Z", "n'existe pas"),
    ("demain", "invalide"),
    ("2030-01-31\x00", "invalide"),
    ("9" * 5000, "trop longue"),
])
def test_ambiguous_or_impossible_dates_are_refused_in_french_never_guessed(text: str, words: str) -> None:
    with pytest.raises(dates.InvalidDate) as refused:
        dates.parse_iso(text)
    assert words in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_a_date_time_becomes_its_day_in_france() -> None:
    assert dates.to_day("2030-01-31T23:30:00Z") == date(2030, 2, 1)  # 00:30 in Paris
    assert dates.to_day("2030-07-31T21:59:59Z") == date(2030, 7, 31)  # 23:59:59 in Paris, summer time


# --- domains and activities ----------------------------------------------------------------------------------------


def test_every_one_of_the_twenty_engagement_domains_maps_onto_one_of_ours() -> None:
    assert set(domains.ENGAGEMENT_DOMAINS) == set(ENGAGEMENT_DOMAINS)
    for slug in ENGAGEMENT_DOMAINS:
        assert domains.to_ours(slug) in DOMAINS, slug


def test_each_of_our_domains_goes_back_to_one_engagement_domain_that_maps_back_to_it() -> None:
    for ours in DOMAINS:
        engagement = domains.to_engagement(ours)
        assert engagement in ENGAGEMENT_DOMAINS
        assert domains.to_ours(engagement) == ours


def test_our_own_domain_slugs_and_spelled_out_names_are_accepted_and_others_are_not() -> None:
    assert domains.to_ours("sante-pour-tous") == "sante-pour-tous"
    assert domains.to_ours("Mémoire et citoyenneté") == "memoire-citoyennete"
    assert domains.to_ours("mobilite") is None
    assert domains.to_ours("solidarite") is None


def test_activities_map_from_slugs_or_labels_and_unknown_ones_are_dropped() -> None:
    assert domains.activities_to_ours(
        ["soutien-scolaire", "Animation, Valorisation", "Jardinage, Bricolage", "Opérations militaires", "inconnue"]
    ) == ["soutien-scolaire-formation", "animation-loisirs", "amenagement-espaces-naturels", "travaux-manuels"]
    assert domains.activities_to_ours(["maraude", "Maraude"]) == ["maraude"]


def test_each_of_our_activities_has_an_engagement_label() -> None:
    labels = domains.activities_to_engagement(list(ACTIVITIES))
    assert len(labels) <= len(ACTIVITIES) and all(labels)
    assert set(domains.OUR_ACTIVITY_LABELS) == set(ACTIVITIES)


# --- placing -------------------------------------------------------------------------------------------------------


async def test_placing_from_a_postal_code_picks_the_named_commune_else_the_most_populous(placer: Placer) -> None:
    # 69970 is shared by Chaponnay (the most populous) and Marennes.
    chosen = placer.place(RecordAddress(postal_code="69970", city="MARENNES"))
    assert chosen is not None and chosen.commune_name == "Marennes"
    populous = placer.place(RecordAddress(postal_code="69970"))
    assert populous is not None and populous.commune_name == "Chaponnay"
    paris = placer.place(RecordAddress(postal_code="75011", city="Paris"))
    assert paris is not None and paris.commune_code == "75056"


async def test_placing_from_a_city_and_department_without_postal_code(placer: Placer) -> None:
    placed = placer.place(RecordAddress(city="saint etienne", department_code="42"))
    assert placed is not None and placed.commune_code == "42218"
    assert placer.place(RecordAddress(city="Nulle-Part-Sur-Mer", department_code="42")) is None


async def test_placing_from_coordinates_alone_takes_the_nearest_commune(placer: Placer) -> None:
    placed = placer.place(RecordAddress(location=RecordLocation(lat=45.7640, lon=4.8357)))
    assert placed is not None and placed.department_code == "69"
    assert (placed.latitude, placed.longitude) == (45.7640, 4.8357)
    assert placer.place(RecordAddress(lat=0.0, lon=-30.0)) is None  # mid-Atlantic


async def test_implausible_partner_coordinates_give_way_to_the_town_hall(placer: Placer) -> None:
    placed = placer.place(RecordAddress(postal_code="13001", city="Marseille", lat=48.85, lon=2.35))
    assert placed is not None and placed.commune_code == "13055"
    assert abs(placed.latitude - 43.3) < 0.3  # Marseille, not the Paris point sent


# --- normalisation and moderation ------------------------------------------------------------------------------------


async def test_a_good_record_is_published_with_plain_text_and_our_vocabulary(placer: Placer) -> None:
    result = normalise(good(activities=["soutien-scolaire"], open_to_minors="yes"), placer)
    assert result.refusal is None
    assert result.mission["status"] == "published" and result.mission["domain"] == "education-pour-tous"
    assert result.mission["description"] == "Accompagner des élèves"
    assert result.mission["activities"] == ["soutien-scolaire-formation"]
    assert result.mission["open_to_minors"] is True and result.mission["places"] == 3
    assert result.addresses[0].commune_code == "69123"
    assert result.organisation is not None and result.organisation.partner_key == "id:org-1"
    assert len(result.digest) == 32 and normalise(good(), placer).digest != result.digest


@pytest.mark.parametrize(("fields", "reason"), [
    ({"title": "  "}, "Titre manquant"),
    ({"title": "Aide &#233;l&#232;ves"}, "Problème d'encodage dans le titre"),
    ({"title": "Bénévolat"}, "Le titre est trop court (1 seul mot)"),
    ({"title": "Mot " * 60}, "Le titre est trop long (plus de 150 caractères)"),
    ({"client_id": None}, "ClientId manquant"),
    ({"client_id": "x" * 201}, "ClientId invalide"),
    ({"description": ""}, "Description manquante"),
    ({"description": "a&amp;#233;b"}, "Problème d'encodage dans la description"),
    ({"description": "mot " * 5001}, "La description est trop longue (plus de 20000 caractères)"),
    ({"description": "avec un \x00 nul"}, "La mission contient des caractères de contrôle non autorisés"),
    ({"title": "Aide\x07 aux devoirs"}, "Le titre contient des caractères de contrôle non autorisés"),
    ({"application_url": None}, "URL de candidature manquant"),
    ({"application_url": "javascript:alert(1)"}, "URL de candidature invalide"),
    ({"application_url": "https://x.example/" + "a" * 1000}, "URL de candidature trop longue"),
    ({"remote": "souvent"}, "Valeur remote non valide (no, possible, full ou local)"),
    ({"places": 0}, "Nombre de places invalide (doit être supérieur à 0)"),
    ({"places": "trois"}, "Nombre de places invalide (doit être supérieur à 0)"),
    ({"domain": "mobilite"}, 'Domaine non valide : "mobilite"'),
    ({"organization_name": "Asso &#233;t&#233;", "organization_client_id": "o"},
     "Problème d'encodage dans le nom de l'organisation"),
    ({"start_at": "01/02/2030"}, "Date de début : Date invalide"),
    ({"end_at": "2030-06-30T10:00:00"}, "Date de fin : Date ambiguë"),
    ({"start_at": "2030-06-30", "end_at": "2030-01-01"}, "La date de fin précède la date de début"),
    ({"addresses": [RecordAddress(city="Atlantide")]}, "Adresse introuvable"),
    ({"addresses": None}, "Adresse introuvable"),
    ({"organization_name": None, "organization_client_id": None}, "Organisation non identifiée"),
])
async def test_each_moderation_rule_refuses_with_its_reason(placer: Placer, fields: dict[str, object],
                                                           reason: str) -> None:
    result = normalise(good(**fields), placer)
    assert result.refusal is not None and result.refusal.startswith(reason), result.refusal
    assert result.mission["status"] == "draft" and result.mission["status_reason"] == result.refusal
    assert "\x00" not in repr(result.mission) + repr(result.record)  # nothing PostgreSQL would refuse


async def test_rules_apply_in_engagement_order(placer: Placer) -> None:
    assert normalise(good(title="Seul", client_id=None, description=""), placer).refusal == \
        "Le titre est trop court (1 seul mot)"
    assert normalise(good(description="", application_url=None), placer).refusal == "Description manquante"


async def test_a_remote_mission_needs_no_address_and_an_organisation_is_known_by_rna_siret_or_name(
    placer: Placer,
) -> None:
    remote = normalise(good(remote="full", addresses=None, organization_client_id=None,
                            organization_rna="W691234567"), placer)
    assert remote.refusal is None and remote.mission["remote"] is True
    assert remote.organisation is not None and remote.organisation.partner_key == "rna:W691234567"
    by_siret = normalise(good(organization_client_id=None, organization_siret="123 456 789 00012"), placer)
    assert by_siret.organisation is not None and by_siret.organisation.partner_key == "siret:12345678900012"
    by_name = normalise(good(organization_client_id=None, organization_name="Les Restos du Cœur"), placer)
    assert by_name.organisation is not None and by_name.organisation.partner_key == "name:les-restos-du-coeur"


def test_html_descriptions_become_plain_text_and_no_script_survives() -> None:
    text = plain_text("<h2>Rôle</h2><ul><li>Accueillir</li><li>Trier &amp; ranger</li></ul>"
                      "<script>alert('x')</script><p onclick=\"x()\">Fin&nbsp;!</p><<script>b>")
    assert "alert" not in text and "<script" not in text and "onclick" not in text
    assert "Rôle" in text and "• Accueillir" in text and "Trier & ranger" in text and "Fin" in text
    assert "<b" not in text and "<s" not in text
    assert plain_text("Pas de balise &eacute;t&eacute;") == "Pas de balise été"
