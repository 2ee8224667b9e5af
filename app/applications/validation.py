"""The texts of the application pages, by the platform's text rule (app/text_rules.py): the volunteer's word when
applying, a manager's decline reason and a manager's message. Bounds are the ones the forms announce."""

from __future__ import annotations

from app.text_rules import MESSAGE_LENGTH, TextRefused, clean_text
from app.volunteers.validation import SignupInvalid

APPLICATION_MESSAGE_LENGTH = 1_000
REASON_LENGTH = 1_000


class ApplicationInvalid(SignupInvalid):
    """Field → French message; the error handler maps it to a 422."""


def _clean(raw: object, field: str, label: str, max_length: int, *, multiline: bool) -> str:
    try:
        return clean_text(raw, label, max_length, multiline=multiline)
    except TextRefused as refused:
        raise ApplicationInvalid({field: refused.message}) from None


def application_message(raw: object) -> str:
    return _clean(raw, "message", "Un mot pour la structure", APPLICATION_MESSAGE_LENGTH, multiline=True)


def decline_reason(raw: object) -> str:
    return _clean(raw, "reason", "Motif du refus", REASON_LENGTH, multiline=False)


def manager_message(raw: object) -> str:
    return _clean(raw, "body", "Message", MESSAGE_LENGTH, multiline=True)
