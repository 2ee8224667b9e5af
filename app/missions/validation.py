"""Mission form validation: one clear French message per field, from untrusted form input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.geo.index import PostcodeIndex
from app.reference import DOMAINS
from app.volunteers.validation import SignupInvalid, _place, _text

MAX_ADDRESSES = 3  # the form's address rows: address_line_1, postal_code_1, commune_code_1, …
FIELDS = (
    "title", "description", "domain", "activities", "remote", "start_date", "end_date", "schedule", "places",
    "open_to_minors", "prerequisites", "priority", "emergency_slug",
    *(f"{name}_{row}" for row in range(1, MAX_ADDRESSES + 1)
      for name in ("address_line", "postal_code", "commune_code")),
)
CHECKED = {"remote", "open_to_minors", "priority"}


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
    priority: bool
    emergency_slug: str | None
    addresses: list[ValidAddress]


def _date(raw: Any, field: str, errors: dict[str, str]) -> date | None:
    text = _text(raw)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[field] = "Saisissez une date au format AAAA-MM-JJ."
        return None


def _addresses(
    data: dict[str, Any], remote: bool, postcodes: PostcodeIndex, errors: dict[str, str]
) -> list[ValidAddress]:
    addresses = []
    for row in range(1, MAX_ADDRESSES + 1):
        line = " ".join(_text(data.get(f"address_line_{row}")).split())
        postal, commune = _text(data.get(f"postal_code_{row}")), _text(data.get(f"commune_code_{row}"))
        if not (line or postal or commune):
            continue
        found: dict[str, str] = {}
        postal_code, commune_code = _place(postal, commune, postcodes, found)
        if not line:
            found["address_line"] = "Indiquez l'adresse (numéro et voie)."
        errors.update({f"{field}_{row}": message for field, message in found.items()})
        if not found:
            addresses.append(ValidAddress(line[:200], postal_code, commune_code))
    if not addresses and not remote and "postal_code_1" not in errors and "address_line_1" not in errors:
        errors["address_line_1"] = "Indiquez au moins une adresse, ou cochez « mission à distance »."
    return addresses


def validate_mission(data: dict[str, Any], postcodes: PostcodeIndex, *, today: date) -> ValidMission:
    errors: dict[str, str] = {}
    title = " ".join(_text(data.get("title")).split())
    if not 5 <= len(title) <= 150:
        errors["title"] = "Donnez un titre à la mission (5 à 150 caractères)."
    description = _text(data.get("description"))
    if len(description) < 20:
        errors["description"] = "Décrivez la mission en quelques phrases (20 caractères au moins)."
    domain = _text(data.get("domain"))
    if domain not in DOMAINS:
        errors["domain"] = "Choisissez le domaine de la mission."
    activities = [" ".join(part.split())[:80] for part in _text(data.get("activities")).split(",") if part.strip()]
    if len(activities) > 10:
        errors["activities"] = "10 activités au maximum, séparées par des virgules."
    remote = bool(data.get("remote"))
    start, end = _date(data.get("start_date"), "start_date", errors), _date(data.get("end_date"), "end_date", errors)
    schedule = " ".join(_text(data.get("schedule")).split())[:300] or None
    if start and end and end < start:
        errors["end_date"] = "La date de fin doit suivre la date de début."
    elif end and end < today:
        errors["end_date"] = "La date de fin est déjà passée."
    elif not start and not schedule and not {"start_date", "end_date"} & errors.keys():
        errors["start_date"] = "Indiquez une date de début, ou décrivez le rythme de la mission."
    raw_places = _text(data.get("places")) if not isinstance(data.get("places"), int) else str(data.get("places"))
    places = int(raw_places) if raw_places.isdecimal() and len(raw_places) < 6 else 0
    if places <= 0:
        errors["places"] = "Indiquez un nombre de places (1 au moins)."
    addresses = _addresses(data, remote, postcodes, errors)
    if errors:
        raise MissionInvalid(errors)
    return ValidMission(
        title=title,
        description=description,
        domain=domain,
        activities=activities,
        remote=remote,
        start_date=start,
        end_date=end,
        schedule=schedule,
        places=places,
        open_to_minors=bool(data.get("open_to_minors")),
        prerequisites=_text(data.get("prerequisites"))[:2_000] or None,
        priority=bool(data.get("priority")),
        emergency_slug=_text(data.get("emergency_slug")).lower()[:80] or None,
        addresses=addresses,
    )
