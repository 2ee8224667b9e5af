"""The ceiling: a bare Litestar app doing only what the web tier cannot avoid on the surge path.

One POST decodes and validates a sign-up-shaped body with msgspec and answers 202; one GET answers a fixed page.
Served with the `web` server line from the Procfile, its throughput is what `ceiling_ratio` divides by.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from litestar import Litestar, MediaType, get, post

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Code5 = Annotated[str, msgspec.Meta(pattern=r"^[0-9AB]{5}$")]
Slug = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class SignupBody(msgspec.Struct, forbid_unknown_fields=True):
    first_name: Name
    last_name: Name
    email: Annotated[str, msgspec.Meta(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    birth_date: date
    postal_code: Code5
    commune_code: Code5
    domains: Annotated[list[Slug], msgspec.Meta(min_length=1, max_length=10)]
    availability: Slug
    consent: bool
    phone: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    skills: Annotated[list[Annotated[str, msgspec.Meta(max_length=80)]], msgspec.Meta(max_length=20)] = []
    emergency: Slug | None = None


class Accepted(msgspec.Struct):
    receipt: str
    status: str


# About the size of a cached emergency page's HTML, so the GET ceiling moves a realistic payload.
PAGE = (
    "<!doctype html><html lang='fr'><head><meta charset='utf-8'><title>Urgence</title></head><body>"
    + "<p>Missions prioritaires près de chez vous.</p>" * 60
    + "</body></html>"
).encode()


@post("/api/v1/volunteers", status_code=202)
async def signup(data: SignupBody) -> Accepted:
    return Accepted(receipt="x", status="accepted")


@get("/page", media_type=MediaType.HTML)
async def page() -> bytes:
    return PAGE


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[signup, page, health], openapi_config=None)
