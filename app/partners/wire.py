"""What partners read from us, in API Engagement's v0 names (`MissionV0`): the list and single envelopes, a mission
and its addresses, built from plain rows (never ORM objects) and encoded by msgspec."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

import msgspec

from app.partners import domains
from app.reference import ACTIVITIES

OUR_PUBLISHER_ID = "renfort"
OUR_PUBLISHER_NAME = "Renfort"
MISSION_TYPE = "benevolat"
COUNTRY = "FR"


class Location(msgspec.Struct, frozen=True):
    lat: float
    lon: float


class AddressV0(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    street: str | None
    postal_code: str | None
    department_name: str | None
    department_code: str | None
    city: str | None
    region: str | None
    country: str = COUNTRY
    location: Location | None


class MissionV0(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A mission as API Engagement's v0 returns it (its essential fields): flags are the strings "yes"/"no", dates
    ISO 8601 in UTC, `applicationUrl` the tracked link for the caller, the first address copied flat (legacy)."""

    id: str = msgspec.field(name="_id")
    client_id: str
    title: str
    description: str | None
    application_url: str
    domain: str | None
    activity: str | None
    type: str = MISSION_TYPE
    remote: str
    open_to_minors: str | None
    reduced_mobility_accessible: str | None
    places: int | None
    schedule: str | None
    start_at: str | None
    end_at: str | None
    created_at: str
    updated_at: str
    deleted: bool = False
    status_code: str = "ACCEPTED"
    publisher_id: str
    publisher_name: str
    organization_name: str | None
    organization_client_id: str | None
    organization_rna: str | None = msgspec.field(name="organizationRNA")
    organization_siret: str | None
    addresses: list[AddressV0]
    city: str | None
    postal_code: str | None
    department_code: str | None
    department_name: str | None
    country: str | None
    location: Location | None


class MissionListV0(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    total: int
    limit: int
    skip: int
    data: list[MissionV0]


class MissionOneV0(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    data: MissionV0


class ErrorV0(msgspec.Struct, frozen=True, kw_only=True):
    """Every error of the partner API: `code` is API Engagement's (NOT_FOUND, INVALID_QUERY…), `message` in French."""

    ok: bool
    code: str
    message: str


@functools.lru_cache(maxsize=1 << 16)  # the same creation and update instants come back request after request
def iso_instant(value: datetime) -> str:
    """`2026-06-01T08:30:00.000Z`, as API Engagement writes its dates."""
    # isoformat truncates to the millisecond, as API Engagement does; about twice as fast as strftime.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def iso_day(value: date | None) -> str | None:
    """Our mission dates are days: midnight UTC of that day (the date filters compare the same way)."""
    return None if value is None else value.isoformat() + "T00:00:00.000Z"


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def activity_labels(slugs: list[str] | None) -> str | None:
    labels = [ACTIVITIES.get(slug, slug) for slug in slugs or ()]
    return ", ".join(labels) or None


def organisation_client_id(organisation_id: int, partner_key: str | None) -> str:
    """A partner's organisation keeps the id the partner gave it ("id:…"), or its RNA/SIRET key; ours, our id."""
    if partner_key is None:
        return str(organisation_id)
    kind, _, value = partner_key.partition(":")
    return value if kind == "id" and value else partner_key


def mission_v0(row: Any, addresses: list[AddressV0], *, application_url: str, domain: str | None) -> MissionV0:
    """From a row (an asyncpg record) of app/partners/read.py's mission columns (`MISSION_COLUMNS` there)."""
    first = addresses[0] if addresses else None
    ours = row["partner_id"] is None
    return MissionV0(
        id=str(row["id"]),
        client_id=str(row["id"]) if ours or row["client_id"] is None else row["client_id"],
        title=row["title"],
        description=row["description"],
        application_url=application_url,
        domain=domain,
        activity=activity_labels(row["activities"]),
        remote="full" if row["remote"] else "no",
        open_to_minors=yes_no(row["open_to_minors"]),
        # We do not record it: unknown, which API Engagement writes as null.
        reduced_mobility_accessible=None,
        places=row["places"],
        schedule=row["schedule"],
        start_at=iso_day(row["start_date"]),
        end_at=iso_day(row["end_date"]),
        created_at=iso_instant(row["created_at"]),
        updated_at=iso_instant(row["updated_at"]),
        publisher_id=OUR_PUBLISHER_ID if ours else str(row["partner_id"]),
        publisher_name=OUR_PUBLISHER_NAME if ours else (row["partner_name"] or ""),
        organization_name=row["organisation_name"],
        organization_client_id=organisation_client_id(row["organisation_id"], row["partner_key"]),
        organization_rna=row["rna"],
        organization_siret=row["siret"],
        addresses=addresses,
        city=first.city if first else None,
        postal_code=first.postal_code if first else None,
        department_code=first.department_code if first else None,
        department_name=first.department_name if first else None,
        country=first.country if first else None,
        location=first.location if first else None,
    )


ADDRESSES = msgspec.json.Decoder(list[tuple[str | None, str | None, str | None, str | None, float, float]] | None)


ENCODER = msgspec.json.Encoder()
APPLICATION_URL = b'"applicationUrl":""'  # a key cannot occur inside a JSON string: its quotes would be escaped


class Fragment(NamedTuple):
    """A mission encoded as JSON for any caller, cut where the caller's `applicationUrl` goes."""

    head: bytes  # up to the opening quote of the link
    tail: bytes  # from its closing quote on


def cut(encoded: bytes) -> Fragment:
    at = encoded.index(APPLICATION_URL) + len(APPLICATION_URL) - 1
    return Fragment(encoded[:at], encoded[at:])


def list_body(total: int, limit: int, skip: int, missions: Iterable[bytes]) -> bytes:
    """`MissionListV0` as msgspec encodes it, around missions already encoded."""
    return b'{"ok":true,"total":%d,"limit":%d,"skip":%d,"data":[%s]}' % (total, limit, skip, b",".join(missions))


class Rendering:
    """Turns rows of app/partners/details.py into `MissionV0` for one caller: its tracked links, and department and
    region names from the process's copy (code → (name, region name)). With `partner_id` None, the missions are
    rendered for nobody in particular (`fragment`), their links put in per caller by `joined`."""

    def __init__(self, departments: Mapping[str, tuple[str, str | None]], base_url: str,
                 partner_id: int | None) -> None:
        self._departments = departments
        self._link = f"{base_url}/r/{{}}/{partner_id}"
        # The link as it reads inside a JSON string, for `joined`.
        self._escaped = ENCODER.encode(base_url)[1:-1].replace(b"%", b"%%") + b"/r/%d/" + str(partner_id).encode()
        self._domains: dict[str, str] = {}

    def address(self, street: str | None, postal_code: str | None, city: str | None, department: str | None,
                lat: float, lon: float) -> AddressV0:
        name, region = self._departments.get(department or "", (None, None))
        return AddressV0(street=street, postal_code=postal_code, department_name=name, department_code=department,
                         city=city, region=region, location=Location(lat, lon))

    def mission(self, row: Any, *, application_url: str | None = None) -> MissionV0:
        raw = row["addresses"]
        items = ADDRESSES.decode(raw) if isinstance(raw, str | bytes) else raw
        domain = self._domains.get(row["domain"])
        if domain is None:
            domain = self._domains[row["domain"]] = domains.to_engagement(row["domain"])
        link = self._link.format(row["id"]) if application_url is None else application_url
        return mission_v0(row, [self.address(*item) for item in items or ()], application_url=link, domain=domain)

    def encoded(self, row: Any) -> bytes:
        return ENCODER.encode(self.mission(row))

    def fragment(self, row: Any) -> Fragment:
        return cut(ENCODER.encode(self.mission(row, application_url="")))

    def joined(self, mission_id: int, fragment: Fragment) -> bytes:
        """The fragment with this caller's tracked link: what `encoded` writes for the same row."""
        return fragment.head + self._escaped % mission_id + fragment.tail
