"""Text messages: one interface, chosen by SMS_PROVIDER; only workers send.

The default sender only logs that a message would go out, by volunteer id and length: never the number, the name
or the text (which holds a personal link). A real provider implements `SmsSender` and is added to `sender_for`."""

from __future__ import annotations

import logging
from typing import Protocol

from app.settings import Settings

log = logging.getLogger("renfort.sms")


class SmsSender(Protocol):
    def send(self, *, volunteer_id: int, phone: str, text: str) -> None: ...


class LogOnlySms:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, *, volunteer_id: int, phone: str, text: str) -> None:
        self.sent += 1
        log.info("text message for volunteer %d (%d characters) not sent: SMS_PROVIDER=log", volunteer_id, len(text))


def sender_for(settings: Settings) -> SmsSender:
    if settings.sms_provider == "log":
        return LogOnlySms()
    raise ValueError(f"unknown SMS provider {settings.sms_provider!r}")  # load_settings refuses it first
