"""Confirming what cannot be undone: the first POST (or a GET link) shows a page that asks, and only a POST that
carries `confirm=1` acts. No JavaScript needed; the page's form carries its own CSRF token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar.response import Template

FIELD = "confirm"
PRIVATE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class Confirmation:
    question: str  # "Voulez-vous vraiment … ?"
    consequence: str  # what will happen, after "Cette action est définitive."
    action: str  # where the confirmed form is posted
    button: str  # the destructive button's label
    back: tuple[str, str]  # (href, label) of the way back, nothing done
    fields: tuple[tuple[str, str], ...] = ()  # what the first form sent, carried as hidden inputs


def confirmed(form: Mapping[str, Any]) -> bool:
    return form.get(FIELD) == "1"


def page(confirmation: Confirmation) -> Template:
    return Template("confirmation.html", context={"confirmation": confirmation}, headers=PRIVATE)
