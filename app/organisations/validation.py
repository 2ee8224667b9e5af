"""Organisation form validation: one clear French message per field, from untrusted form input."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.geo.index import PostcodeIndex
from app.organisations.models import Organisation
from app.text_rules import TextFields, length_of
from app.volunteers.validation import TYPED_LENGTH, SignupInvalid, _place

TYPE_LABELS = {
    "association": "Association",
    "collectivite": "Collectivité territoriale",
    "organisation_publique": "Organisation publique",
    "organisation_privee": "Organisation privée",
}
RNA = re.compile(r"^W\d{9}$")
SIRET = re.compile(r"^\d{14}$")
LABELS = {
    "name": "Nom de la structure",
    "type": "Type de structure",
    "rna": "Numéro RNA",
    "siret": "Numéro SIRET",
    "address_line": "Numéro et voie",
    "description": "Présentation",
    "donation_url": "Lien pour faire un don",
}
DESCRIPTION_LENGTH = 5_000
LA_POSTE_SIREN = "356000000"  # La Poste's establishments share one SIREN and follow their own check rule


class OrganisationInvalid(SignupInvalid):
    """Field → French message; the form shows them, the error handler maps them to a 422."""


@dataclass(frozen=True, slots=True)
class ValidOrganisation:
    name: str
    type: str
    rna: str | None
    siret: str | None
    address_line: str
    postal_code: str
    commune_code: str
    description: str
    donation_url: str | None


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def siret_valid(siret: str) -> bool:
    if not SIRET.match(siret):
        return False
    if siret.startswith(LA_POSTE_SIREN):
        return luhn_valid(siret) or sum(int(char) for char in siret) % 5 == 0
    return luhn_valid(siret)


def _identifiers(kind: str, fields: TextFields, errors: dict[str, str]) -> tuple[str | None, str | None]:
    rna = fields.text("rna", LABELS["rna"], TYPED_LENGTH).upper().replace(" ", "") or None
    siret = re.sub(r"[\s.]", "", fields.text("siret", LABELS["siret"], TYPED_LENGTH)) or None
    if rna is not None and kind in TYPE_LABELS and kind != "association":
        errors["rna"] = "Le numéro RNA ne concerne que les associations."
    elif rna is not None and not RNA.match(rna):
        errors["rna"] = "Le numéro RNA commence par W suivi de 9 chiffres, par exemple W751234567."
    if siret is not None and not SIRET.match(siret):
        errors["siret"] = "Le numéro SIRET compte 14 chiffres."
    elif siret is not None and not siret_valid(siret):
        errors["siret"] = "Ce numéro SIRET n'existe pas : vérifiez les chiffres (clé de contrôle incorrecte)."
    if kind == "association" and rna is None and siret is None:
        errors["rna"] = "Une association indique son numéro RNA ou son numéro SIRET."
    elif kind == "organisation_privee" and siret is None:
        errors["siret"] = "Une organisation privée indique son numéro SIRET."
    return rna, siret


def _donation_url(fields: TextFields, errors: dict[str, str]) -> str | None:
    url = fields.text("donation_url", LABELS["donation_url"], length_of(Organisation.donation_url))
    if not url:
        return None
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        hostname = None
    if not hostname or parts.scheme != "https" or "." not in hostname:
        errors["donation_url"] = "Saisissez une adresse web sécurisée, commençant par https://."
        return None
    return url


def validate_organisation(data: dict[str, Any], index: PostcodeIndex) -> ValidOrganisation:
    """Checks every field and raises `OrganisationInvalid` with all the problems at once."""
    errors: dict[str, str] = {}
    fields = TextFields(data)
    name = fields.text("name", LABELS["name"], length_of(Organisation.name), collapse=True)
    if not name:
        errors["name"] = "Indiquez le nom de la structure."
    kind = fields.text("type", LABELS["type"], length_of(Organisation.type))
    if kind not in TYPE_LABELS:
        errors["type"] = "Choisissez le type de structure."
    rna, siret = _identifiers(kind, fields, errors)
    address_line = fields.text("address_line", LABELS["address_line"], length_of(Organisation.address_line),
                               collapse=True)
    if not address_line:
        errors["address_line"] = "Indiquez l'adresse (numéro et voie)."
    postal_code, commune_code = _place(data.get("postal_code"), data.get("commune_code"), index, errors)
    description = fields.text("description", LABELS["description"], DESCRIPTION_LENGTH, multiline=True)
    if len(description) < 20:
        errors["description"] = "Présentez la structure en quelques phrases (20 caractères au moins)."
    donation_url = _donation_url(fields, errors)
    errors.update(fields.refused)
    if errors:
        raise OrganisationInvalid(errors)
    return ValidOrganisation(
        name=name,
        type=kind,
        rna=rna if kind == "association" else None,
        siret=siret,
        address_line=address_line,
        postal_code=postal_code,
        commune_code=commune_code,
        description=description,
        donation_url=donation_url,
    )
