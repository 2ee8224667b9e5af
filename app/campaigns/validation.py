"""The campaign form's rules, one French message per field."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from app.campaigns.filters import CAMPAIGN_SLUG
from app.campaigns.images import ImageRefused, Sniffed, sniff
from app.campaigns.models import MAX_IMAGE_BYTES, Campaign
from app.campaigns.schemas import CampaignInput
from app.organisations.service import slugify
from app.reference import DOMAINS
from app.text_rules import MESSAGE_LENGTH, TextFields, length_of

FIELDS = ("name", "slug", "text", "starts_on", "ends_on", "image_alt")
RESERVED = frozenset({"images"})  # /campagnes/images/… serves the pictures
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
TOO_BIG = "L'image dépasse 2 Mo : réduisez-la ou enregistrez-la en JPEG ou WebP, puis réessayez."


class CampaignInvalid(ValueError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


class CampaignNotFound(LookupError):
    pass


def _day(raw: str, field: str, label: str, errors: dict[str, str]) -> date | None:
    if not raw:
        errors[field] = f"Indiquez la date de {label}."
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        errors[field] = "Saisissez une date au format AAAA-MM-JJ."
        return None
    if not EARLIEST <= day <= LATEST:
        errors[field] = "Choisissez une date entre 2000 et 2100."
        return None
    return day


def check_image(data: bytes | None) -> Sniffed | None:
    """Raises `ImageRefused` for a file too large or not a PNG, JPEG or WebP image."""
    if data is None:
        return None
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(TOO_BIG)
    return sniff(data)


def validate(form: Mapping[str, Any], domains: list[str], image: bytes | None, *,
             has_image: bool) -> tuple[CampaignInput, Sniffed | None]:
    """`domains`: the form's repeated `domains` values; `image`: the uploaded file, None when none was chosen;
    `has_image`: the campaign already has one (editing). Raises `CampaignInvalid`."""
    errors: dict[str, str] = {}
    fields = TextFields(form)
    name = fields.text("name", "Nom", length_of(Campaign.name), collapse=True)
    if not name and "name" not in fields.refused:
        errors["name"] = "Indiquez le nom de la campagne."
    slug = fields.text("slug", "Adresse de la page", length_of(Campaign.slug)).lower()
    if not slug and "slug" not in fields.refused:
        slug = slugify(name)[:60].strip("-") if name else ""
    if slug and not CAMPAIGN_SLUG.fullmatch(slug):
        errors["slug"] = ("L'adresse de la page ne peut contenir que des lettres minuscules sans accent, des chiffres "
                          "et des tirets (ni au début ni à la fin).")
    elif slug in RESERVED:
        errors["slug"] = "Cette adresse est réservée : choisissez-en une autre."
    elif not slug and "slug" not in fields.refused and name:
        errors["slug"] = "Indiquez l'adresse de la page, par exemple collecte-nationale."
    text = fields.text("text", "Texte de présentation", MESSAGE_LENGTH, multiline=True)
    if not text and "text" not in fields.refused:
        errors["text"] = "Présentez la campagne en quelques phrases."
    starts_on = _day(str(form.get("starts_on") or "").strip(), "starts_on", "début", errors)
    ends_on = _day(str(form.get("ends_on") or "").strip(), "ends_on", "fin", errors)
    if starts_on and ends_on and ends_on < starts_on:
        errors["ends_on"] = "La date de fin doit être le jour du début ou après."
    chosen = []
    for domain in domains:
        if domain not in DOMAINS:
            errors["domains"] = "Choisissez les domaines dans la liste."
        elif domain not in chosen:
            chosen.append(domain)
    alt = fields.text("image_alt", "Texte alternatif de l'image", length_of(Campaign.image_alt), collapse=True)
    remove = str(form.get("remove_image") or "") == "1"
    sniffed = None
    try:
        sniffed = check_image(image)
    except ImageRefused as refused:
        errors["image"] = refused.message
    keeps_image = image is not None or (has_image and not remove)
    if keeps_image and not alt and "image_alt" not in fields.refused:
        errors["image_alt"] = ("Décrivez l'image en quelques mots pour les personnes qui ne la voient pas "
                               "(lecteur d'écran).")
    errors.update(fields.refused)
    if errors:
        raise CampaignInvalid(errors)
    assert starts_on is not None and ends_on is not None
    return CampaignInput(slug=slug, name=name, text=text, starts_on=starts_on, ends_on=ends_on, domains=chosen,
                         image_alt=alt if keeps_image else "", remove_image=remove and image is None), sniffed
