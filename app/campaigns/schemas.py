"""What the campaign pages show, as cached in Redis."""

from __future__ import annotations

from datetime import date

import msgspec

from app.reference import DOMAINS


class CampaignRead(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    slug: str
    name: str
    text: str
    starts_on: date
    ends_on: date
    domains: list[str]
    image_url: str | None = None
    image_alt: str = ""
    image_width: int | None = None
    image_height: int | None = None

    @property
    def path(self) -> str:
        return f"/campagnes/{self.slug}"

    @property
    def paragraphs(self) -> list[str]:
        """The text as the admin typed it: paragraphs split on blank lines (escaped by the template)."""
        return [part.strip() for part in self.text.replace("\r\n", "\n").split("\n\n") if part.strip()]

    @property
    def domain_labels(self) -> list[str]:
        return [DOMAINS[domain] for domain in self.domains if domain in DOMAINS]

    def running(self, today: date) -> bool:
        return self.starts_on <= today <= self.ends_on

    def phase(self, today: date) -> str:
        """"upcoming", "running" or "ended"."""
        if today < self.starts_on:
            return "upcoming"
        return "running" if today <= self.ends_on else "ended"


class CampaignList(msgspec.Struct, frozen=True):
    items: list[CampaignRead]


class CampaignInput(msgspec.Struct, frozen=True, kw_only=True):
    """A validated form: `image` is the uploaded file's bytes when one was sent."""

    slug: str
    name: str
    text: str
    starts_on: date
    ends_on: date
    domains: list[str]
    image_alt: str
    remove_image: bool = False
