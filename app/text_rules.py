"""The one rule for every text a person sends, from a form or a JSON body: refused with a French message that names
the field when it holds a character PostgreSQL refuses (NUL), one no keyboard types (other controls, lone surrogates,
non-characters), or more characters than its column holds. Validators read each text field through `clean_text` (or
`TextFields`, `clean_items`), so nothing they accept can make PostgreSQL refuse the row later: in a queue, one such
row would hold up every record behind it.

`Text` columns have no limit in PostgreSQL; their bounds are chosen here: 5 000 characters for a message or a
reason (less where the form announces less), 10 000 for a description.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import msgspec
from sqlalchemy.orm import InstrumentedAttribute

# C0 controls (tab, LF and CR allowed in multi-line fields only), DEL, C1 controls, surrogates, U+FFFE and U+FFFF.
SINGLE_LINE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
MULTI_LINE_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

MESSAGE_LENGTH = 5_000
DESCRIPTION_LENGTH = 10_000


class TextRefused(ValueError):
    """`message` is French and names the field, never the value (it may be personal data). `reason` (type,
    character, length, count; blank or format from a field's own parser) lets a validator word some its own way."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(reason)
        self.message = message
        self.reason = reason


def length_of(column: InstrumentedAttribute[Any]) -> int:
    """What a `String(n)` column (or each item of an `ARRAY(String(n))`) holds: a validator's bound follows the
    model."""
    column_type = getattr(column.type, "item_type", column.type)
    length = getattr(column_type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} has no length: choose a bound for it")
    return length


def french_number(value: int) -> str:
    return f"{value:,}".replace(",", "\u202f")  # 5 000, with a narrow no-break space


def clean_text(raw: object, label: str, max_length: int, *, multiline: bool = False, collapse: bool = False) -> str:
    """The text as the validators keep it: NFC, stripped (with inner whitespace runs made one space when `collapse`),
    "" for an absent value. Raises `TextRefused`."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise TextRefused(f"Le champ « {label} » doit être un texte.", "type")
    # Before stripping: Python counts some controls (U+001C–U+001F, U+0085) as whitespace and would hide them.
    if (MULTI_LINE_REFUSED if multiline else SINGLE_LINE_REFUSED).search(raw):
        raise TextRefused(f"Le champ « {label} » contient un caractère non autorisé.", "character")
    text = unicodedata.normalize("NFC", raw)
    text = " ".join(text.split()) if collapse else text.strip()
    if len(text) > max_length:
        raise TextRefused(f"Le champ « {label} » ne doit pas dépasser {french_number(max_length)} caractères.",
                          "length")
    return text


def clean_items(raw: object, label: str, *, max_items: int, max_length: int, separator: str | None = None
                ) -> list[str]:
    """A list of short texts (a JSON array, a form's repeated field, or one text split on `separator`): each item by
    `clean_text`, collapsed, blank ones dropped; at most `max_items`. Raises `TextRefused`."""
    if raw is None:
        return []
    if isinstance(raw, str):
        parts: list[object] = list(raw.split(separator)) if separator else [raw]
    elif isinstance(raw, list | tuple):
        parts = list(raw)
    else:
        raise TextRefused(f"Le champ « {label} » doit être une liste de textes.", "type")
    items = []
    for part in parts:
        try:
            item = clean_text(part, label, max_length, collapse=True)
        except TextRefused as refused:
            if refused.reason != "length":
                raise
            raise TextRefused(f"Chaque élément du champ « {label} » doit faire {french_number(max_length)} "
                              "caractères au plus.", "length") from None
        if item:
            items.append(item)
    if len(items) > max_items:
        raise TextRefused(f"Le champ « {label} » ne doit pas compter plus de {french_number(max_items)} éléments.",
                          "count")
    return items


class TextFields:
    """The text fields of one form or body, read through `clean_text`. A refusal is kept per field in `refused`; a
    validator adds them to its errors last, so they win over its own message for a value it saw as blank."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.refused: dict[str, str] = {}

    def text(self, field: str, label: str, max_length: int, *, multiline: bool = False,
             collapse: bool = False) -> str:
        try:
            return clean_text(self.data.get(field), label, max_length, multiline=multiline, collapse=collapse)
        except TextRefused as refused:
            self.refused[field] = refused.message
            return ""

    def items(self, field: str, label: str, *, max_items: int, max_length: int, separator: str | None = None
              ) -> list[str]:
        try:
            return clean_items(self.data.get(field), label, max_items=max_items, max_length=max_length,
                               separator=separator)
        except TextRefused as refused:
            self.refused[field] = refused.message
            return []


def json_object(body: bytes) -> dict[str, Any]:
    """A JSON body that must be an object; raises `TextRefused` (field "body") for anything else. msgspec refuses a
    lone surrogate escape ("\\ud800") for the whole body: the standard parser keeps it, so the field rule can name
    the field it is in."""
    invalid = TextRefused("Le corps de la requête doit être un objet JSON valide.", "type")
    try:
        data = msgspec.json.decode(body)
    except RecursionError:  # nested deeper than any body of ours
        raise invalid from None
    except msgspec.DecodeError:
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise invalid from None
    if not isinstance(data, dict):
        raise TextRefused("Le corps de la requête doit être un objet JSON.", "type")
    return data
