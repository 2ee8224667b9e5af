"""Sign-up and profile validation: one clear French message per field, from untrusted JSON or form input."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.geo.index import PostcodeIndex
from app.reference import AVAILABILITY, DOMAINS
from app.text_rules import TextFields, TextRefused, clean_items, clean_text, length_of
from app.volunteers.models import Volunteer

MINIMUM_AGE = 16
EMAIL = re.compile(r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
NAME = re.compile(r"^[^\W\d_]+(?:[ '’.-]+[^\W\d_]+)*\.?$")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
POSTAL_CODE = re.compile(r"^\d{5}$")
# The domain of anonymised people's placeholder addresses (app/privacy/inactivity.py): nobody signs up under it.
# Other reserved domains stay accepted: rehearsal runs sign up as `…@rehearsal.invalid`, the demo under `.example`.
PLACEHOLDER_DOMAIN = "anonyme.invalid"
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
LABELS = {
    "first_name": "Prénom",
    "last_name": "Nom",
    "email": "Adresse e-mail",
    "phone": "Téléphone",
    "birth_date": "Date de naissance",
    "postal_code": "Code postal",
    "commune_code": "Commune",
    "domains": "Domaines d'action",
    "availability": "Disponibilités",
    "skills": "Compétences",
    "emergency": "Urgence",
}
NAME_LENGTH = length_of(Volunteer.first_name)
EMAIL_LENGTH = length_of(Volunteer.email)
EMERGENCY_LENGTH = length_of(Volunteer.emergency_slug)
CHOICE_LENGTH = length_of(Volunteer.domains)
SKILLS, SKILL_LENGTH = 20, length_of(Volunteer.skills)
# Fields parsed into a shorter form (spaces, separators removed): bounded generously, the parser says the rest.
TYPED_LENGTH = 32


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


def parse_email(raw: object) -> tuple[str, str]:
    """(as typed, normalised), for the sign-up and the sign-in forms; raises `TextRefused` with the field's message."""
    email = clean_text(raw, LABELS["email"], EMAIL_LENGTH)
    if not email:
        raise TextRefused("Indiquez votre adresse e-mail.", "blank")
    normalized = normalize_email(email)
    if len(normalized) > EMAIL_LENGTH or ".." in normalized or not EMAIL.match(normalized):
        raise TextRefused(MESSAGES["email"], "format")
    if normalized.rsplit("@", 1)[-1] == PLACEHOLDER_DOMAIN:
        raise TextRefused(MESSAGES["email"], "reserved")
    return email, normalized


def _name(fields: TextFields, field: str, errors: dict[str, str]) -> str:
    value = fields.text(field, LABELS[field], NAME_LENGTH, collapse=True)
    if field in fields.refused:
        return value
    if not value:
        errors[field] = MESSAGES[field]
    elif not NAME.match(value):
        errors[field] = "Utilisez uniquement des lettres, des espaces, des tirets ou des apostrophes."
    return value


def _phone(fields: TextFields, errors: dict[str, str]) -> str | None:
    raw = fields.text("phone", LABELS["phone"], TYPED_LENGTH)
    if not raw:
        return None
    match = PHONE.match(re.sub(r"[\s.\-()]", "", raw))
    if not match:
        errors["phone"] = MESSAGES["phone"]
        return None
    return f"+{match.group(1) or '33'}{match.group(2)}"


def _birth_date(fields: TextFields, today: date, errors: dict[str, str]) -> date | None:
    text = fields.text("birth_date", LABELS["birth_date"], TYPED_LENGTH)
    if "birth_date" in fields.refused:
        return None
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
    """A postal code and its commune, from raw values; errors under "postal_code" and "commune_code"."""
    refused: dict[str, str] = {}
    postal_code = commune_code = ""
    try:
        postal_code = clean_text(postal, LABELS["postal_code"], TYPED_LENGTH).replace(" ", "")
    except TextRefused as refusal:
        refused["postal_code"] = refusal.message
    try:
        commune_code = clean_text(commune, LABELS["commune_code"], TYPED_LENGTH)
    except TextRefused as refusal:
        refused["commune_code"] = refusal.message
    if refused:
        errors.update(refused)
        return postal_code, commune_code
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


def _choices(fields: TextFields, field: str, allowed: dict[str, str], errors: dict[str, str]) -> list[str]:
    values = fields.items(field, LABELS[field], max_items=len(allowed), max_length=CHOICE_LENGTH)
    if field in fields.refused:
        return []
    picked = list(dict.fromkeys(values))
    if not picked:
        errors[field] = MESSAGES[field]
    elif any(value not in allowed for value in picked) or len(picked) != len(values):
        errors[field] = "Choix inconnu : utilisez les valeurs proposées."
    return picked


def _skills(fields: TextFields, errors: dict[str, str]) -> list[str]:
    try:
        return clean_items(fields.data.get("skills"), LABELS["skills"], max_items=SKILLS, max_length=SKILL_LENGTH,
                           separator=",")
    except TextRefused as refused:
        errors["skills"] = refused.message if refused.reason == "character" else MESSAGES["skills"]
        return []


def _checked(raw: Any) -> bool:
    return raw in (True, "true", "on", "1", "yes", "oui")


def validate_signup(data: dict[str, Any], index: PostcodeIndex, today: date) -> ValidSignup:
    """Checks every field and raises `SignupInvalid` with all the problems at once."""
    errors: dict[str, str] = {}
    fields = TextFields(data)
    first_name = _name(fields, "first_name", errors)
    last_name = _name(fields, "last_name", errors)
    email = email_normalized = ""
    try:
        email, email_normalized = parse_email(data.get("email"))
    except TextRefused as refused:
        errors["email"] = refused.message
    phone = _phone(fields, errors)
    birth_date = _birth_date(fields, today, errors)
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    domains = _choices(fields, "domains", DOMAINS, errors)
    availability_values = _choices(fields, "availability", AVAILABILITY, errors)
    skills = _skills(fields, errors)
    if not _checked(data.get("consent")):
        errors["consent"] = MESSAGES["consent"]
    emergency = fields.text("emergency", LABELS["emergency"], EMERGENCY_LENGTH) or None
    if emergency is not None and not SLUG.match(emergency):
        errors["emergency"] = MESSAGES["emergency"]
    if len(availability_values) > 1:
        errors["availability"] = "Choisissez une seule disponibilité."
    errors.update(fields.refused)
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
    fields = TextFields(data)
    first_name = _name(fields, "first_name", errors)
    last_name = _name(fields, "last_name", errors)
    phone = _phone(fields, errors)
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    domains = _choices(fields, "domains", DOMAINS, errors)
    availability_values = _choices(fields, "availability", AVAILABILITY, errors)
    skills = _skills(fields, errors)
    if len(availability_values) > 1:
        errors["availability"] = "Choisissez une seule disponibilité."
    errors.update(fields.refused)
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
