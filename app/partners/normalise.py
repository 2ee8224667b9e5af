"""A partner's record → a mission ready for the database, with the automatic moderation's verdict.

The rules and their French wording follow API Engagement's moderation (`getModeration`), in its order, with ours in
between where they belong (lengths, control characters, URL scheme, strict dates, a place for every non-remote
mission, an organisation identity). A refused record is still stored when it has a clientId — as a draft with the
reason, never online — so the partner reads the verdict back from `/v2`. Our referents never moderate these."""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import msgspec

from app.partners import dates, domains
from app.partners.organisations import OrganisationDraft, draft_of
from app.partners.placing import Placed, Placer
from app.partners.records import PartnerRecord, RecordAddress
from app.text_rules import TextRefused
from app.volunteers.validation import parse_email

# Bumped when the rules change, so that every record is written again on its next import.
RULES_VERSION = b"1"
MAX_TITLE = 150
MAX_DESCRIPTION = 20_000
MAX_RAW_DESCRIPTION = 5 * MAX_DESCRIPTION  # as sent, markup included
MAX_CLIENT_ID = 200
MAX_URL = 1_000
MAX_SCHEDULE = 300
MAX_PLACES = 100_000
MAX_ADDRESSES = 50
MAX_ACTIVITIES = 20
MAX_SNU_PLACES = 500  # youth_offers.places' bound
MAX_CONTACT_NAME = 200
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and line breaks are allowed in texts
LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # none at all in one-line fields
ESCAPED_CONTROL = re.compile(rb"\\u00[01][0-9a-fA-F]|\\[bf]")
TAG = re.compile(r"<\s*(?:/\s*)?[a-zA-Z!][^<>]*>")
URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
REMOTE = {
    "": "no", "no": "no", "non": "no", "false": "no", "0": "no",
    "possible": "possible", "yes": "possible", "oui": "possible", "true": "possible", "1": "possible",
    "partiel": "possible", "partielle": "possible", "hybride": "possible",
    "full": "full", "total": "full", "100": "full", "remote": "full",
    "local": "local",
}
TRUE = {"yes", "true", "1", "oui"}
FALLBACK_DOMAIN = "solidarite-insertion"  # where API Engagement's `autre` goes, for a mission sent without a domain

UNSAFE = "contient des caractères de contrôle non autorisés"


@dataclass(frozen=True, slots=True)
class SnuOffer:
    """A mission sent with `snu` true, `snuPlaces` and both dates: the SNU offer (app/youth) written beside it."""

    places: int
    start_date: date
    end_date: date
    tutor_name: str | None
    tutor_email: str | None  # normalised, or None when absent or not an address


@dataclass(frozen=True, slots=True)
class Normalised:
    """A record as we store it. `refusal` None: published; else a draft with that reason. `client_id` None: it
    cannot even be stored (no clientId), only reported."""

    client_id: str | None
    refusal: str | None
    mission: dict[str, Any]  # missions columns
    organisation: OrganisationDraft | None
    addresses: list[Placed]
    record: dict[str, Any]  # the record as received, cleaned: kept in missions.partner_record
    digest: str
    snu: SnuOffer | None = None


# Regular expressions rather than an HTML parser: 20,000 descriptions convert in well under a second, and the result
# is plain text (escaped wherever it is shown), so only the words need to survive, never the markup. A tag's inside
# is `[^<>]*`, never `[^>]*`: each attempt then stops at the next `<`, so "<p<p<p…" costs linear time, not quadratic;
# and an optional slash between spaces is `\s*(?:/\s*)?`, never `\s*/?\s*` (two ways to split the same spaces).
SKIPPED = re.compile(r"<\s*(script|style|template|noscript|iframe|object|svg|head|title)\b.*?(?:<\s*/\s*\1\s*>|\Z)",
                     re.IGNORECASE | re.DOTALL)
COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
ITEM = re.compile(r"<\s*li\b[^<>]*>", re.IGNORECASE)
BLOCK = re.compile(r"<\s*(?:/\s*)?(?:p|div|br|ul|ol|li|h[1-6]|tr|table|section|article|blockquote|hr)\b[^<>]*>",
                   re.IGNORECASE)
ANY_TAG = re.compile(r"<[^<>]*>")


def plain_text(raw: str) -> str:
    """The text of a description: HTML (when it has tags) converted, entities decoded, spaces tidied."""
    if TAG.search(raw):
        text = ANY_TAG.sub("", BLOCK.sub("\n", ITEM.sub("\n • ", SKIPPED.sub("", COMMENT.sub("", raw)))))
    else:
        text = raw
    text = html.unescape(text)
    text = text.replace("<", "‹").replace(">", "›") if TAG.search(text) else text  # no tag survives, even re-formed
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _line(raw: str | None) -> str:
    return " ".join(html.unescape(raw).split()) if isinstance(raw, str) else ""


def _clean(value: Any) -> Any:
    """The record as JSON, control characters dropped (PostgreSQL refuses NUL in text and JSONB)."""
    if isinstance(value, str):
        return CONTROL.sub("", value)
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    return value


def flag(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return value.strip().casefold() in TRUE


def _has_control(record: PartnerRecord) -> bool:
    for name in ("title", "application_url", "domain", "type", "remote", "start_at", "end_at", "organization_name",
                 "organization_client_id", "organization_rna", "organization_siret", "schedule", "contact_name",
                 "contact_email"):
        value = getattr(record, name)
        if isinstance(value, str) and LINE_CONTROL.search(value):
            return True
    texts = [record.description, record.organization_description, *(record.activities or [])]
    return any(isinstance(text, str) and CONTROL.search(text) for text in texts)


class _Verdict:
    """The first refusal reason wins, as in API Engagement's moderation."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def refuse(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason


def _places(raw: int | str | None, verdict: _Verdict) -> int:
    if raw is None or raw == "":
        return 1
    value: int | None = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", raw):
        value = int(raw)
    if value is None or value <= 0:
        verdict.refuse("Nombre de places invalide (doit être supérieur à 0)")
        return 1
    if value > MAX_PLACES:
        verdict.refuse(f"Nombre de places invalide ({MAX_PLACES} au plus)")
        return MAX_PLACES
    return value


def _snu(record: PartnerRecord, start: date | None, end: date | None, verdict: _Verdict) -> SnuOffer | None:
    if not flag(record.snu):
        return None
    raw = record.snu_places
    value: int | None = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    if isinstance(raw, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", raw):
        value = int(raw)
    if value is None or value <= 0:
        verdict.refuse("Nombre de places SNU invalide (snuPlaces doit être un entier supérieur à 0)")
        return None
    if start is None or end is None or end < start:  # an offer has dates: without them, none
        return None
    name = LINE_CONTROL.sub("", _line(record.contact_name))[:MAX_CONTACT_NAME] or None
    try:
        email: str | None = parse_email(record.contact_email)[1] if record.contact_email else None
    except TextRefused:
        email = None
    return SnuOffer(places=min(value, MAX_SNU_PLACES), start_date=start, end_date=end, tutor_name=name,
                    tutor_email=email)


def _day(raw: str | None, label: str, verdict: _Verdict) -> date | None:
    if raw is None or not raw.strip():
        return None
    try:
        return dates.to_day(raw)
    except dates.InvalidDate as error:
        verdict.refuse(f"{label} : {error}")
        return None


def _domain(raw: str) -> str | None:
    return _cached_domain(raw) if len(raw) <= 100 else domains.to_ours(raw)


# A feed uses a few dozen domain and activity spellings, again and again: mapped once each.
_cached_domain = functools.lru_cache(maxsize=1_024)(domains.to_ours)


def _activities(raw: tuple[str, ...]) -> tuple[str, ...]:
    cacheable = all(isinstance(item, str) for item in raw) and sum(map(len, raw)) <= 300
    return _cached_activities(raw) if cacheable else _mapped_activities(raw)


def _mapped_activities(raw: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(domains.activities_to_ours(list(raw))[:MAX_ACTIVITIES])


_cached_activities = functools.lru_cache(maxsize=4_096)(_mapped_activities)


def digest_of(encoded: bytes) -> str:
    """What tells an unchanged record (its JSON, as `msgspec.json.encode` gives it) from a changed one."""
    return hashlib.blake2b(encoded + RULES_VERSION, digest_size=16).hexdigest()


def client_key(record: PartnerRecord) -> str | None:
    """The clientId a record is stored under (None: it cannot be stored)."""
    raw = record.client_id
    return LINE_CONTROL.sub("", raw.strip())[:MAX_CLIENT_ID] or None if isinstance(raw, str) else None


def normalise(record: PartnerRecord, placer: Placer) -> Normalised:
    """Checks and maps one record; never raises for its content."""
    verdict = _Verdict()
    unsafe = _has_control(record)
    raw_title = CONTROL.sub("", _line(record.title))
    title = LINE_CONTROL.sub("", raw_title)
    client_id = LINE_CONTROL.sub("", record.client_id.strip()) if isinstance(record.client_id, str) else ""
    if not title:
        verdict.refuse("Titre manquant")
    if "&#" in (record.title or ""):  # as API Engagement: an entity left in a title is a sender's encoding slip
        verdict.refuse("Problème d'encodage dans le titre")
    if unsafe and LINE_CONTROL.search(record.title or ""):
        verdict.refuse(f"Le titre {UNSAFE}")
    if title and " " not in title:
        verdict.refuse("Le titre est trop court (1 seul mot)")
    if len(title) > MAX_TITLE:
        verdict.refuse(f"Le titre est trop long (plus de {MAX_TITLE} caractères)")
    if not client_id:
        verdict.refuse("ClientId manquant")
    elif len(client_id) > MAX_CLIENT_ID or client_id != (record.client_id or "").strip():
        verdict.refuse(f"ClientId invalide (au plus {MAX_CLIENT_ID} caractères, sans caractère de contrôle)")
    raw_description = record.description if isinstance(record.description, str) else ""
    if len(raw_description) > MAX_RAW_DESCRIPTION:  # refused before any conversion: bounded work per record
        verdict.refuse(f"La description est trop longue (plus de {MAX_DESCRIPTION} caractères)")
        raw_description = raw_description[:MAX_RAW_DESCRIPTION]
    description = plain_text(CONTROL.sub("", raw_description))
    if not description:
        verdict.refuse("Description manquante")
    if "&#" in description:
        verdict.refuse("Problème d'encodage dans la description")
    if len(description) > MAX_DESCRIPTION:
        verdict.refuse(f"La description est trop longue (plus de {MAX_DESCRIPTION} caractères)")
        description = description[:MAX_DESCRIPTION]
    if unsafe:
        verdict.refuse(f"La mission {UNSAFE}")
    url = (record.application_url or "").strip()
    if not url:
        verdict.refuse("URL de candidature manquant")
    elif len(url) > MAX_URL:
        verdict.refuse(f"URL de candidature trop longue (plus de {MAX_URL} caractères)")
    elif not URL.fullmatch(url):
        verdict.refuse("URL de candidature invalide (une adresse http:// ou https:// est attendue)")
    remote = REMOTE.get((record.remote or "").strip().casefold())
    if remote is None:
        verdict.refuse("Valeur remote non valide (no, possible, full ou local)")
        remote = "no"
    places = _places(record.places, verdict)
    domain = _domain(record.domain) if record.domain and record.domain.strip() else FALLBACK_DOMAIN
    if domain is None:
        verdict.refuse(f'Domaine non valide : "{LINE_CONTROL.sub("", record.domain or "")[:60]}"')
        domain = FALLBACK_DOMAIN
    organisation = draft_of(record)
    if organisation is not None and "&#" in (record.organization_name or ""):
        verdict.refuse("Problème d'encodage dans le nom de l'organisation")
    start = _day(record.start_at, "Date de début", verdict)
    end = _day(record.end_at, "Date de fin", verdict)
    if start and end and end < start:
        verdict.refuse("La date de fin précède la date de début")
    snu = _snu(record, start, end, verdict)
    addresses = [placed for address in (record.addresses or [])[:MAX_ADDRESSES]
                 if isinstance(address, RecordAddress) and (placed := placer.place(address)) is not None]
    if remote != "full" and not addresses:
        verdict.refuse("Adresse introuvable : indiquez au moins une adresse en France (code postal et ville, ou "
                       "coordonnées), ou remote « full » pour une mission à distance")
    if organisation is None:
        verdict.refuse("Organisation non identifiée (organizationClientId, organizationRNA, organizationSiret ou "
                       "organizationName attendu)")
    encoded = msgspec.json.encode(record)
    digest = digest_of(encoded)
    # JSON spells every control character as an escape: only a record that has one needs cleaning.
    cleaned = _clean(msgspec.to_builtins(record)) if ESCAPED_CONTROL.search(encoded) else msgspec.json.decode(encoded)
    mission = {
        "title": (title or "Mission sans titre")[:MAX_TITLE],
        "description": description or "(sans description)",
        "domain": domain,
        "activities": list(_activities(tuple(record.activities or ()))),
        "remote": remote == "full",
        "start_date": start,
        "end_date": end if not (start and end and end < start) else None,
        "schedule": LINE_CONTROL.sub("", _line(record.schedule))[:MAX_SCHEDULE] or None,
        "places": places,
        "open_to_minors": bool(flag(record.open_to_minors)),
        "status": "draft" if verdict.reason else "published",
        "status_reason": verdict.reason,
        # Only a web address is ever kept: a refused `javascript:` one never reaches a link.
        "application_url": url if len(url) <= MAX_URL and URL.fullmatch(url) and not LINE_CONTROL.search(url)
        else None,
        "import_digest": digest,
    }
    return Normalised(client_id=client_key(record), refusal=verdict.reason, mission=mission,
                      organisation=organisation, addresses=addresses, record=cleaned, digest=digest,
                      snu=snu if verdict.reason is None else None)  # a refused draft offers nothing
