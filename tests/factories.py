"""Test data: valid sign-up bodies with unique e-mails, real postal codes and commune codes."""

from __future__ import annotations

import itertools
from typing import Any

_sequence = itertools.count(1)


def signup(**overrides: Any) -> dict[str, Any]:
    number = next(_sequence)
    body: dict[str, Any] = {
        "first_name": "Ana",
        "last_name": "Martin",
        "email": f"ana.martin{number}@example.org",
        "phone": "06 12 34 56 78",
        "birth_date": "1990-04-12",
        "postal_code": "69003",
        "commune_code": "69123",
        "domains": ["solidarite-insertion"],
        "availability": "weekends",
        "skills": ["permis B"],
        "consent": True,
        "emergency": "covid-19",
    }
    body.update(overrides)
    return body
