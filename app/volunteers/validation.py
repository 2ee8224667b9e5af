"""Sign-up and profile validation: one clear French message per field, from untrusted JSON or form input."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.geo.index import PostcodeIndex
from app.reference import AVAILABILITY, DOMAINS

MINIMUM_AGE = 16
EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
NAME = re.compile(r"^[^\W\d_]+(?:[ '’.-]+[^\W\d_]+)*\.?$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
POSTAL_CODE = re.compile(r"^\d{5}$")
# Metropolitan numbers (0X…, +33) and the overseas country codes (Réunion, Guadeloupe, Guyane, Martinique, Mayotte…).
PHONE = re.compile(r"^(?:(?:\+|00)(33|262|269|508|590|594|596|681|687|689)|0)([1-9]\d{8})$")

MESSAGES = {
    "first_name": "Indiquez votre prénom.",
    "last_name": "Indiquez votre nom.",
    "email": "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr.",
    "phone": "Saisissez un numéro de téléphone français valide, par exemple 06 12 34 56 78.",
    "birth_date": "Saisissez votre date de naissance, par exemple 1990-04-12 ou 12/04/1990.",
    "postal_code": "Saisissez un code postal à 5 chiffres.",
    "domains": "Choisissez au moins un domaine d'action.",
    "availability": "Indiquez quand vous êtes disponible.",
    "skills": "Indiquez au plus 20 compétences de 80 caractères au maximum chacune.",
    "consent": "Vous devez accepter que vos données servent à vous proposer des missions pour vous inscrire.",
    "emergency": "Cet identifiant d'urgence n'est pas valide.",
}


@dataclass(frozen=True, slots=True)
class ValidSignup:
    email: str
    email_normalized: str
    first_name: str
    last_name: str
    phone: str | None
    birth_date: date
    postal_code: str
    commune_code: str
    domains: list[str]
    availability: str
    skills: list[str]
    emergency: str | None


@dataclass(frozen=True, slots=True)
class ValidProfile:
    """What a volunteer may change in their own space; the e-mail (the identity) and birth date stay as signed up."""

    first_name: str
    last_name: str
    phone: str | None
    postal_code: str
    commune_code: str
    domains: list[str]
    availability: str
    skills: list[str]
    mail_applications: bool
    mail_emergencies: bool


class SignupInvalid(Exception):
    """Raised with a field → French message mapping; mapped to a 422 in one place."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))  # field names only: the values may be personal data
        self.errors = errors


def normalize_email(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().lower()


def _text(raw: Any) -> str:
    return unicodedata.normalize("NFC", raw).strip() if isinstance(raw, str) else ""


def _name(raw: Any, field: str, errors: dict[str, str]) -> str:
    value = " ".join(_text(raw).split())
    if not value:
        errors[field] = MESSAGES[field]
    elif len(value) > 100:
        errors[field] = "100 caractères au maximum."
    elif not NAME.match(value):
        errors[field] = "Utilisez uniquement des lettres, des espaces, des tirets ou des apostrophes."
    return value


def _phone(raw: Any, errors: dict[str, str]) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    digits = re.sub(r"[\s.\-()]", "", raw) if isinstance(raw, str) else ""
    match = PHONE.match(digits)
    if not match:
        errors["phone"] = MESSAGES["phone"]
        return None
    return f"+{match.group(1) or '33'}{match.group(2)}"


def _birth_date(raw: Any, today: date, errors: dict[str, str]) -> date | None:
    text = _text(raw)
    if not text:
        errors["birth_date"] = "Indiquez votre date de naissance."
        return None
    french = re.match(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", text)
    try:
        born = date(int(french[3]), int(french[2]), int(french[1])) if french else date.fromisoformat(text)
    except ValueError:
        errors["birth_date"] = MESSAGES["birth_date"]
        return None
    if born > today:
        errors["birth_date"] = "La date de naissance ne peut pas être dans le futur."
    elif born.year < today.year - 120:
        errors["birth_date"] = "Vérifiez l'année de naissance."
    elif (today.year - born.year - ((today.month, today.day) < (born.month, born.day))) < MINIMUM_AGE:
        errors["birth_date"] = f"Il faut avoir au moins {MINIMUM_AGE} ans pour s'inscrire."
    return born


def _place(postal: Any, commune: Any, index: PostcodeIndex, errors: dict[str, str]) -> tuple[str, str]:
    postal_code, commune_code = _text(postal).replace(" ", ""), _text(commune)
    if not POSTAL_CODE.match(postal_code):
        errors["postal_code"] = MESSAGES["postal_code"]
        return postal_code, ""
    choices = index.communes(postal_code)
    if not choices:
        errors["postal_code"] = "Ce code postal n'existe pas. Vérifiez-le."
    elif len(choices) == 1 and commune_code in ("", choices[0].code):
        return postal_code, choices[0].code
    elif not commune_code:
        errors["commune_code"] = "Plusieurs communes ont ce code postal : choisissez la vôtre."
    elif commune_code not in {choice.code for choice in choices}:
        errors["commune_code"] = "Cette commune ne correspond pas au code postal indiqué."
    return postal_code, commune_code


def _choices(raw: Any, allowed: dict[str, str], field: str, errors: dict[str, str]) -> list[str]:
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    picked = list(dict.fromkeys(v for v in values if isinstance(v, str) and v))
    if not picked:
        errors[field] = MESSAGES[field]
    elif any(value not in allowed for value in picked) or len(picked) != len(values):
        errors[field] = "Choix inconnu : utilisez les valeurs proposées."
    return picked


def _skills(raw: Any, errors: dict[str, str]) -> list[str]:
    if raw is None:
        return []
    values = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else None
    if values is None or not all(isinstance(value, str) for value in values):
        errors["skills"] = MESSAGES["skills"]
        return []
    skills = [" ".join(value.split()) for value in values if value.strip()]
    if len(skills) > 20 or any(len(skill) > 80 for skill in skills):
        errors["skills"] = MESSAGES["skills"]
    return skills


def _checked(raw: Any) -> bool:
    return raw in (True, "true", "on", "1", "yes", "oui")


def validate_signup(data: dict[str, Any], index: PostcodeIndex, today: date) -> ValidSignup:
    """Checks every field and raises `SignupInvalid` with all the problems at once."""
    errors: dict[str, str] = {}
    first_name = _name(data.get("first_name"), "first_name", errors)
    last_name = _name(data.get("last_name"), "last_name", errors)
    email = _text(data.get("email"))
    email_normalized = normalize_email(email)
    if not email:
        errors["email"] = "Indiquez votre adresse e-mail."
    elif len(email_normalized) > 254 or ".." in email_normalized or not EMAIL.match(email_normalized):
        errors["email"] = MESSAGES["email"]
    phone = _phone(data.get("phone"), errors)
    birth_date = _birth_date(data.get("birth_date"), today, errors)
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    domains = _choices(data.get("domains"), DOMAINS, "domains", errors)
    availability_values = _choices(data.get("availability"), AVAILABILITY, "availability", errors)
    skills = _skills(data.get("skills"), errors)
    if not _checked(data.get("consent")):
        errors["consent"] = MESSAGES["consent"]
    emergency = _text(data.get("emergency")) or None
    if emergency is not None and (len(emergency) > 64 or not SLUG.match(emergency)):
        errors["emergency"] = MESSAGES["emergency"]
    if len(availability_values) > 1:
        errors["availability"] = "Choisissez une seule disponibilité."
    if errors or birth_date is None:
        raise SignupInvalid(errors)
    return ValidSignup(
        email=email,
        email_normalized=email_normalized,
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        birth_date=birth_date,
        postal_code=postal_code,
        commune_code=commune_code,
        domains=domains,
        availability=availability_values[0],
        skills=skills,
        emergency=emergency,
    )


def validate_profile(data: dict[str, Any], index: PostcodeIndex) -> ValidProfile:
    """The profile form, with the sign-up's own field rules and messages; raises `SignupInvalid` with every problem.
    An unticked preference box is absent from a form: absent means no."""
    errors: dict[str, str] = {}
    first_name = _name(data.get("first_name"), "first_name", errors)
    last_name = _name(data.get("last_name"), "last_name", errors)
    phone = _phone(data.get("phone"), errors)
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    domains = _choices(data.get("domains"), DOMAINS, "domains", errors)
    availability_values = _choices(data.get("availability"), AVAILABILITY, "availability", errors)
    skills = _skills(data.get("skills"), errors)
    if len(availability_values) > 1:
        errors["availability"] = "Choisissez une seule disponibilité."
    if errors:
        raise SignupInvalid(errors)
    return ValidProfile(
        first_name=first_name,
        last_name=last_name,
        phone=phone,
        postal_code=postal_code,
        commune_code=commune_code,
        domains=domains,
        availability=availability_values[0],
        skills=skills,
        mail_applications=_checked(data.get("mail_applications")),
        mail_emergencies=_checked(data.get("mail_emergencies")),
    )
