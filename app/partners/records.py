"""A partner's mission as it arrives, in API Engagement's field names, whether from `POST/PUT /v2/mission` (JSON) or
from an XML feed: raw values, checked and mapped by app/partners/normalise.py. Types are loose on purpose (a feed
says `yes`, JSON says `true`; a feed's places are text): a wrong value becomes a refusal with its reason, never an
exception."""

from __future__ import annotations

import msgspec

Flag = bool | str | None  # true/false, or "yes"/"no"/"true"/"1"… (XML)


class RecordLocation(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    lat: float | None = None
    lon: float | None = None


class RecordAddress(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=False):
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    department_code: str | None = None
    department_name: str | None = None
    region: str | None = None
    country: str | None = None
    lat: float | None = None  # from <location><lat>, <lonlat>…: degrees, WGS 84
    lon: float | None = None
    location: RecordLocation | None = None  # JSON's `{"lat": …, "lon": …}`; `lat`/`lon` above win when both are set

    def point(self) -> tuple[float | None, float | None]:
        if self.lat is not None or self.lon is not None or self.location is None:
            return self.lat, self.lon
        return self.location.lat, self.location.lon


class PartnerRecord(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=False):
    client_id: str | None = None
    title: str | None = None
    description: str | None = None
    application_url: str | None = None
    domain: str | None = None  # one of API Engagement's 20 domains (or one of ours)
    activities: list[str] | None = None  # API Engagement's activity slugs or labels (a feed's comma list, split)
    type: str | None = None
    remote: str | None = None  # no, possible, full, local
    open_to_minors: Flag = None
    reduced_mobility_accessible: Flag = None
    places: int | str | None = None
    start_at: str | None = None  # ISO 8601, parsed strictly by app/partners/dates.py
    end_at: str | None = None
    schedule: str | None = None
    addresses: list[RecordAddress] | None = None
    organization_client_id: str | None = None
    organization_name: str | None = None
    organization_rna: str | None = msgspec.field(default=None, name="organizationRNA")
    organization_siret: str | None = None
    organization_siren: str | None = None
    organization_url: str | None = None
    organization_type: str | None = None
    organization_description: str | None = None
    organization_post_code: str | None = None
    organization_city: str | None = None
    # The SNU (app/youth/offers.py): a mission open to its young people, with its own places, and whom they meet.
    snu: Flag = None
    snu_places: int | str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
