"""The four legal texts: their code name, their public address and how the pages name them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    MENTIONS = "mentions"
    ACCESSIBILITY = "accessibility"
    PRIVACY = "privacy"
    TERMS = "terms"


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: Kind
    path: str  # the public page of the current version; old versions live under path + "/versions/{n}"
    label: str


KINDS: dict[Kind, KindInfo] = {
    Kind.MENTIONS: KindInfo(Kind.MENTIONS, "/mentions-legales", "Mentions légales"),
    Kind.ACCESSIBILITY: KindInfo(Kind.ACCESSIBILITY, "/accessibilite", "Déclaration d'accessibilité"),
    Kind.PRIVACY: KindInfo(Kind.PRIVACY, "/donnees-personnelles", "Données personnelles"),
    Kind.TERMS: KindInfo(Kind.TERMS, "/conditions-utilisation", "Conditions d'utilisation et chartes"),
}


def parse_kind(raw: object) -> Kind | None:
    try:
        return Kind(str(raw))
    except ValueError:
        return None
