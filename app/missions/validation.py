"""Mission form validation: one clear French message per field, from untrusted form input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.geo.index import PostcodeIndex
from app.missions.models import Mission, MissionAddress
from app.reference import ACTIVITIES, DOMAINS
from app.text_rules import DESCRIPTION_LENGTH, TextFields, TextRefused, clean_items, length_of
from app.volunteers.validation import TYPED_LENGTH, SignupInvalid, _place

MAX_ADDRESSES = 3  # the form's address rows: address_line_1, postal_code_1, commune_code_1, …
# The text a template fixes: a mission made from one takes these from it, and keeps them.
TEXT_FIELDS = ("title", "description", "domain", "activities", "open_to_minors", "prerequisites")
# `priority` is not a form field: the coordination and the referents set it (moderation.set_priority).
FIELDS = (
    "title", "description", "domain", "activities", "remote", "start_date", "end_date", "schedule", "places",
    "open_to_minors", "prerequisites", "emergency_slug",
    *(f"{name}_{row}" for row in range(1, MAX_ADDRESSES + 1)
      for name in ("address_line", "postal_code", "commune_code")),
)
CHECKED = {"remote", "open_to_minors"}
LABELS = {
    "title": "Titre de la mission",
    "description": "Description",
    "domain": "Domaine",
    "activities": "Activités",
    "start_date": "Date de début",
    "end_date": "Date de fin",
    "schedule": "Rythme récurrent",
    "places": "Nombre de places",
    "prerequisites": "Prérequis",
    "emergency_slug": "Urgence liée",
}
PREREQUISITES_LENGTH = 2_000
MAX_ACTIVITIES = 10
UNKNOWN_ACTIVITY = "Choisissez les activités dans la liste proposée."


class MissionInvalid(SignupInvalid):
    """Field → French message; the form shows them, the error handler maps them to a 422."""


@dataclass(frozen=True, slots=True)
class ValidAddress:
    address_line: str
    postal_code: str
    commune_code: str


@dataclass(frozen=True, slots=True)
class ValidMission:
    title: str
    description: str
    domain: str
    activities: list[str]
    remote: bool
    start_date: date | None
    end_date: date | None
    schedule: str | None
    places: int
    open_to_minors: bool
    prerequisites: str | None
    emergency_slug: str | None
    addresses: list[ValidAddress]


def _date(fields: TextFields, field: str, errors: dict[str, str]) -> date | None:
    text = fields.text(field, LABELS[field], TYPED_LENGTH)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[field] = "Saisissez une date au format AAAA-MM-JJ."
        return None


def _filled(raw: object) -> bool:
    return raw is not None and not (isinstance(raw, str) and not raw.strip())


def _addresses(
    fields: TextFields, remote: bool, postcodes: PostcodeIndex, errors: dict[str, str]
) -> list[ValidAddress]:
    addresses = []
    for row in range(1, MAX_ADDRESSES + 1):
        line = fields.text(f"address_line_{row}", f"Adresse {row}", length_of(MissionAddress.address_line),
                           collapse=True)
        postal, commune = fields.data.get(f"postal_code_{row}"), fields.data.get(f"commune_code_{row}")
        if f"address_line_{row}" in fields.refused or not (line or _filled(postal) or _filled(commune)):
            continue
        found: dict[str, str] = {}
        postal_code, commune_code = _place(postal, commune, postcodes, found)
        if not line:
            found["address_line"] = "Indiquez l'adresse (numéro et voie)."
        errors.update({f"{field}_{row}": message for field, message in found.items()})
        if not found:
            addresses.append(ValidAddress(line, postal_code, commune_code))
    if (not addresses and not remote and "postal_code_1" not in errors and "address_line_1" not in errors
            and "address_line_1" not in fields.refused):
        errors["address_line_1"] = "Indiquez au moins une adresse, ou cochez « mission à distance »."
    return addresses


def _activities(fields: TextFields, errors: dict[str, str]) -> list[str]:
    """Slugs of ACTIVITIES, in the order given, once each: the form's checkboxes (a repeated field), a JSON array, or
    one text with commas (an API client's, or an older form's)."""
    raw = fields.data.get("activities")
    if isinstance(raw, list | tuple):
        raw = [part for item in raw for part in (item.split(",") if isinstance(item, str) else [item])]
    try:
        chosen = clean_items(raw, LABELS["activities"], max_items=len(ACTIVITIES),
                             max_length=length_of(Mission.activities), separator=",")
    except TextRefused as refused:
        fields.refused["activities"] = refused.message
        return []
    slugs = list(dict.fromkeys(chosen))
    if any(slug not in ACTIVITIES for slug in slugs):
        errors["activities"] = UNKNOWN_ACTIVITY
    elif len(slugs) > MAX_ACTIVITIES:
        errors["activities"] = f"Choisissez {MAX_ACTIVITIES} activités au plus."
    return slugs


def _text(fields: TextFields, errors: dict[str, str]) -> dict[str, Any]:
    """The TEXT_FIELDS, checked."""
    title = fields.text("title", LABELS["title"], length_of(Mission.title), collapse=True)
    if len(title) < 5:
        errors["title"] = "Donnez un titre à la mission (5 à 150 caractères)."
    description = fields.text("description", LABELS["description"], DESCRIPTION_LENGTH, multiline=True)
    if len(description) < 20:
        errors["description"] = "Décrivez la mission en quelques phrases (20 caractères au moins)."
    domain = fields.text("domain", LABELS["domain"], length_of(Mission.domain))
    if domain not in DOMAINS:
        errors["domain"] = "Choisissez le domaine de la mission."
    activities = _activities(fields, errors)
    prerequisites = fields.text("prerequisites", LABELS["prerequisites"], PREREQUISITES_LENGTH, multiline=True)
    return {"title": title, "description": description, "domain": domain, "activities": activities,
            "open_to_minors": bool(fields.data.get("open_to_minors")), "prerequisites": prerequisites or None}


def validate_text(data: dict[str, Any]) -> dict[str, Any]:
    """A template's text: the TEXT_FIELDS of a mission, with the same rules and messages."""
    errors: dict[str, str] = {}
    fields = TextFields(data)
    text = _text(fields, errors)
    errors.update(fields.refused)
    if errors:
        raise MissionInvalid(errors)
    return text


def validate_mission(data: dict[str, Any], postcodes: PostcodeIndex, *, today: date) -> ValidMission:
    errors: dict[str, str] = {}
    fields = TextFields(data)
    text = _text(fields, errors)
    remote = bool(data.get("remote"))
    start, end = _date(fields, "start_date", errors), _date(fields, "end_date", errors)
    schedule = fields.text("schedule", LABELS["schedule"], length_of(Mission.schedule), collapse=True) or None
    if start and end and end < start:
        errors["end_date"] = "La date de fin doit suivre la date de début."
    elif end and end < today:
        errors["end_date"] = "La date de fin est déjà passée."
    elif not start and not schedule and not {"start_date", "end_date"} & (errors.keys() | fields.refused.keys()):
        errors["start_date"] = "Indiquez une date de début, ou décrivez le rythme de la mission."
    raw_places = str(data["places"]) if isinstance(data.get("places"), int) else fields.text(
        "places", LABELS["places"], TYPED_LENGTH)
    places = int(raw_places) if raw_places.isascii() and raw_places.isdecimal() and len(raw_places) < 6 else 0
    if places <= 0:
        errors["places"] = "Indiquez un nombre de places (1 au moins)."
    emergency_slug = fields.text("emergency_slug", LABELS["emergency_slug"], length_of(Mission.emergency_slug))
    addresses = _addresses(fields, remote, postcodes, errors)
    errors.update(fields.refused)
    if errors:
        raise MissionInvalid(errors)
    return ValidMission(
        **text,
        remote=remote,
        start_date=start,
        end_date=end,
        schedule=schedule,
        places=places,
        emergency_slug=emergency_slug.lower() or None,
        addresses=addresses,
    )
