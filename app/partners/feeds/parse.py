"""Reading a partner's XML feed (API Engagement's format: `<source>` holding `<mission>` elements) into PartnerRecords.

defusedxml refuses DTDs, entities and external references (billion laughs, XXE); the feed is read incrementally,
each `<mission>` dropped from the tree once turned into a record, so a 20,000-mission feed never sits whole in
memory as elements. Values are kept raw (text, trimmed; CDATA or not): app/partners/normalise.py judges them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only for the Element type and ParseError: parsing is defusedxml's
from dataclasses import dataclass, field
from typing import IO, Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from app.partners.feeds import FeedError
from app.partners.records import PartnerRecord, RecordAddress

MAX_DEPTH = 12  # <source><mission><addresses><address><location><lat> is 6: deeper is no feed of this format
MAX_ADDRESSES = 50  # per mission: beyond, the rest is ignored (a mission is not in 50 places)
# Memory stays a few times the feed's useful size: a mission's elements are held until it ends, the records until
# the feed is written, so both are bounded (an element costs ~100 bytes however small its text).
MAX_ELEMENTS_PER_MISSION = 1_000
MAX_MISSIONS = 200_000
MAX_REFUSALS = 1_000
DUPLICATE = "clientId en double dans le flux : seule la première mission portant ce clientId est prise en compte."
NO_CLIENT_ID = "Mission sans clientId : elle ne peut pas être identifiée, elle est ignorée."

# Tag (as in the feed) → PartnerRecord field; aliases from API Engagement's importer included.
TEXT_FIELDS = {
    "clientId": "client_id", "title": "title", "description": "description", "applicationUrl": "application_url",
    "domain": "domain", "type": "type", "remote": "remote", "openToMinors": "open_to_minors",
    "reducedMobilityAccessible": "reduced_mobility_accessible", "places": "places", "startAt": "start_at",
    "endAt": "end_at", "schedule": "schedule", "organizationClientId": "organization_client_id",
    "organizationId": "organization_client_id", "organizationName": "organization_name",
    "organizationRNA": "organization_rna", "organizationRna": "organization_rna",
    "organizationSiret": "organization_siret", "organizationSiren": "organization_siren",
    "organizationUrl": "organization_url", "organizationType": "organization_type",
    "organizationDescription": "organization_description", "organizationPostCode": "organization_post_code",
    "organizationCity": "organization_city", "snu": "snu", "snuPlaces": "snu_places", "contactName": "contact_name",
    "contactEmail": "contact_email",
}
ADDRESS_FIELDS = {
    "street": "street", "address": "street", "adresse": "street", "postalCode": "postal_code", "city": "city",
    "departmentCode": "department_code", "departmentName": "department_name", "region": "region",
    "country": "country", "countryCode": "country",
}
NUMBER = re.compile(r"^\s*[-+]?\d+(?:[.,]\d+)?\s*$")


@dataclass
class ParsedFeed:
    records: list[PartnerRecord] = field(default_factory=list)
    # {"clientId": …, "reason": …}: missions of the feed not passed on (no clientId, duplicates), the first ones.
    refusals: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0  # all of them
    received: int = 0  # <mission> elements seen


def parse_feed(source: IO[bytes]) -> ParsedFeed:
    """Raises FeedError (French) for a feed that is not XML, hostile, not `<source>`, or holds no `<mission>`."""
    feed = ParsedFeed()
    seen: set[str] = set()
    depth = elements = 0
    root: ET.Element | None = None
    try:
        for event, element in iterparse(source, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                depth += 1
                elements = 0 if depth == 2 else elements + 1
                if elements > MAX_ELEMENTS_PER_MISSION:
                    raise FeedError(f"Une mission du flux compte plus de {MAX_ELEMENTS_PER_MISSION} éléments : le flux "
                                    "est refusé, rien n'a été importé ni supprimé.")
                if depth > MAX_DEPTH:
                    raise FeedError(f"Le flux imbrique ses éléments trop profondément (plus de {MAX_DEPTH} niveaux).")
                if root is None:
                    root = element
                    if _name(element) != "source":
                        raise FeedError(f"L'élément racine du flux doit être <source>, pas <{_name(element)[:40]}>.")
                continue
            depth -= 1
            if depth == 1 and root is not None:
                if _name(element) == "mission":
                    feed.received += 1
                    if feed.received > MAX_MISSIONS:
                        raise FeedError(f"Le flux compte plus de {MAX_MISSIONS} missions : découpez-le, rien n'a été "
                                        "importé ni supprimé.")
                    _take(feed, seen, _record(element))
                root.clear()  # the mission (or any other child of <source>) is done with
    except FeedError:
        raise
    except DefusedXmlException:
        raise FeedError("Le flux contient une DTD, des entités ou des références externes, refusées par sécurité : "
                        "envoyez un XML sans <!DOCTYPE>.") from None
    except ET.ParseError as error:
        line, column = getattr(error, "position", (0, 0))
        raise FeedError(f"Le flux n'est pas un XML bien formé (ligne {line}, colonne {column}).") from None
    if root is None:
        raise FeedError("Le flux est vide : aucun document XML reçu.")
    if not feed.received:
        raise FeedError("Le flux ne contient aucune mission (aucun élément <mission> sous <source>) : "
                        "rien n'a été importé ni supprimé.")
    if not feed.records:  # else every live mission would be "absent from the feed", and deleted
        raise FeedError("Aucune mission du flux n'a de clientId (élément <clientId>) : rien n'a été importé ni "
                        "supprimé.")
    return feed


def _refuse(feed: ParsedFeed, client_id: str | None, reason: str) -> None:
    feed.refused += 1
    if len(feed.refusals) < MAX_REFUSALS:
        feed.refusals.append({"clientId": client_id, "reason": reason})


def _take(feed: ParsedFeed, seen: set[str], record: PartnerRecord) -> None:
    if not record.client_id:
        _refuse(feed, None, NO_CLIENT_ID)
    elif record.client_id in seen:
        _refuse(feed, record.client_id, DUPLICATE)
    else:
        seen.add(record.client_id)
        feed.records.append(record)


def _name(element: ET.Element) -> str:
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag.rsplit("}", 1)[-1]  # namespaces ignored


def _text(element: ET.Element) -> str | None:
    """The element's text, CDATA included; markup written without CDATA (e.g. HTML in a description) is kept as its
    text. Empty is absent."""
    value = "".join(element.itertext()).strip()
    return value or None


def _record(mission: ET.Element) -> PartnerRecord:
    values: dict[str, Any] = {}
    flat: dict[str, Any] = {}
    flat_location: tuple[float, float] | None = None
    addresses: list[RecordAddress] | None = None
    for child in mission:
        name = _name(child)
        if name == "addresses":
            addresses = [_address(item) for item in child if _name(item) == "address"][:MAX_ADDRESSES]
        elif name == "activity":
            text = _text(child)
            values["activities"] = [part.strip() for part in text.split(",") if part.strip()] if text else None
        elif name in TEXT_FIELDS:
            values.setdefault(TEXT_FIELDS[name], _text(child))
        elif name in ADDRESS_FIELDS:
            flat.setdefault(ADDRESS_FIELDS[name], _text(child))
        elif name == "lonlat":
            flat_location = _pair(_text(child), lat_first=False)
        elif name == "lonLat":
            flat_location = _pair(_text(child), lat_first=True)
        elif name == "location":
            flat_location = _location(child)
    if addresses is None and any(flat.get(key) for key in ("street", "city", "postal_code", "country")):
        address = RecordAddress(**flat)
        if flat_location is not None:
            address.lat, address.lon = flat_location
        addresses = [_padded(address)]
    values["addresses"] = addresses
    if values.get("organization_siren") and not values.get("organization_siret"):
        digits = re.sub(r"\s", "", values["organization_siren"])
        if len(digits) == 14 and digits.isdigit():  # a SIRET given as SIREN, as API Engagement's importer reads it
            values["organization_siret"], values["organization_siren"] = digits, digits[:9]
    return PartnerRecord(**values)


def _address(element: ET.Element) -> RecordAddress:
    values: dict[str, Any] = {}
    location: tuple[float, float] | None = None
    for child in element:
        name = _name(child)
        if name == "location":
            location = _location(child)
        elif name in ADDRESS_FIELDS:
            values.setdefault(ADDRESS_FIELDS[name], _text(child))
    address = RecordAddress(**values)
    if location is not None:
        address.lat, address.lon = location
    return _padded(address)


def _padded(address: RecordAddress) -> RecordAddress:
    """French postal codes lose their leading zero in spreadsheets and JSON numbers: 1000 is 01000."""
    code = address.postal_code
    french = (address.country or "FR").strip().upper() in ("FR", "FRA", "FRANCE")
    if french and code and code.isdigit() and len(code) < 5:
        address.postal_code = code.zfill(5)
    return address


def _location(element: ET.Element) -> tuple[float, float] | None:
    """(lat, lon) from <location><lat/><lon/></location>, or None when missing or out of range."""
    values = {_name(child): _text(child) for child in element}
    return _checked(_number(values.get("lat")), _number(values.get("lon")))


def _pair(text: str | None, *, lat_first: bool) -> tuple[float, float] | None:
    """`<lonlat>lon,lat</lonlat>` (with API Engagement's heuristics for swapped ones) or `<lonLat>lat,lon</lonLat>`
    (sic: Service Civique's order)."""
    parts = (text or "").replace(";", ",").split(",")
    if len(parts) != 2:
        return None
    first, second = _number(parts[0]), _number(parts[1])
    if first is None or second is None:
        return None
    if lat_first:
        return _checked(first, second)
    lon, lat = first, second
    if abs(second) > 90:
        lon, lat = second, first
    elif 4.3 < min(first, second) < 8:  # France's longitudes lie there, its latitudes far above
        lon, lat = min(first, second), max(first, second)
    return _checked(lat, lon)


def _number(text: str | None) -> float | None:
    if text is None or not NUMBER.match(text):
        return None
    return float(text.replace(",", "."))


def _checked(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon
