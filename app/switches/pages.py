"""The French 503 pages of the degraded modes, with their Retry-After: maintenance, load shedding, the organisations'
space in read-only mode, and sign-up while Redis (where sign-ups wait) cannot be reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.response import Template
from litestar.template import TemplateEngineProtocol

TEMPLATE = "switches/indisponible.html"


@dataclass(frozen=True)
class Closed:
    code: str  # the JSON body's `code`, for API clients
    title: str
    message: str
    retry_after: int  # seconds
    action: tuple[str, str] | None = None  # the way forward: (href, label)

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after), "Cache-Control": "no-store"}

    @property
    def json(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}


MAINTENANCE = Closed(
    "maintenance",
    "Renfort est en maintenance",
    "Cette page est momentanément indisponible pendant une opération de maintenance. Réessayez dans quelques "
    "minutes. L'inscription des bénévoles, les pages d'urgence et la coordination restent ouvertes.",
    retry_after=300,
    action=("/inscription", "S'inscrire comme bénévole"),
)
BUSY = Closed(
    "charge",
    "Renfort est très sollicité en ce moment",
    "Pour que les inscriptions des bénévoles et les pages d'urgence restent rapides, cette page est momentanément "
    "indisponible. Réessayez dans quelques instants.",
    retry_after=30,
    action=("/inscription", "S'inscrire comme bénévole"),
)
READ_ONLY = Closed(
    "lecture_seule",
    "L'espace des structures est temporairement en lecture seule",
    "Vous pouvez consulter les structures, les missions et les candidatures, mais pas les modifier pour le moment : "
    "ce que vous venez d'envoyer n'a pas été enregistré. Réessayez dans quelques minutes.",
    retry_after=300,
    action=("/mon-espace/structures", "Revenir à mes structures"),
)
SIGNUP_UNAVAILABLE = Closed(
    "inscriptions_indisponibles",
    "Les inscriptions sont momentanément indisponibles",
    "Un incident technique nous empêche d'enregistrer les inscriptions pour le moment. Rien n'a été enregistré : "
    "réessayez dans quelques minutes.",
    retry_after=120,
)


def context(closed: Closed) -> dict[str, Any]:
    return {"closed": closed, "status": 503}


def render(engine: TemplateEngineProtocol[Any, Any], closed: Closed) -> bytes:
    """For the gate, which answers without building a Litestar response."""
    return engine.get_template(TEMPLATE).render(**context(closed)).encode()


def page(closed: Closed) -> Template:
    """For a handler or an exception handler."""
    return Template(TEMPLATE, context=context(closed), status_code=503, headers=closed.headers)
