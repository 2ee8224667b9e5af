"""Structured logs and Sentry, for web and workers, with personal data kept out of both."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

PERSONAL_FIELDS = frozenset(
    {"first_name", "last_name", "email", "email_normalized", "phone", "birth_date", "name", "address", "record"}
)
EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w:-])(?:(?:\+|00)\d{2,3}[\s.-]?|0)[1-9](?:[\s.-]?\d\d){4}(?![\w-])")
# Bare dates only (a birth date), not the timestamps logs and events are full of.
DATE = re.compile(r"(?<![\d-])(?:19|20)\d\d-\d\d-\d\d(?![\d:T]| \d\d:)|\b\d\d/\d\d/(?:19|20)\d\d\b")
# Event fields the SDK and Sentry rely on; they never hold personal data.
STRUCTURAL = frozenset({"event_id", "timestamp", "start_timestamp", "sdk", "platform", "level", "release",
                        "environment", "server_name", "type", "modules", "contexts"})
FILTERED = "[Filtered]"


def _scrub_text(text: str) -> str:
    return DATE.sub(FILTERED, PHONE.sub(FILTERED, EMAIL.sub(FILTERED, text)))


def scrub(value: Any) -> Any:
    """Removes personal fields by name and e-mail addresses, phone numbers and dates by shape, at any depth."""
    if isinstance(value, dict):
        return {key: FILTERED if key in PERSONAL_FIELDS else scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return _scrub_text(value)
    return value


def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        # Request bodies and cookies of a sign-up are personal data through and through: never sent.
        for key in ("data", "cookies", "query_string"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() not in {"cookie", "authorization"}}
    return {key: value if key in STRUCTURAL else scrub(value) for key, value in event.items()}


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return scrub(crumb)


def init_sentry(dsn: str | None, *, environment: str, component: str) -> bool:
    """Initialises Sentry only when a DSN is configured; returns whether it did."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.litestar import LitestarIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        server_name=component,
        # Logs become breadcrumbs, not events: errors are reported once, by app/errors.py and the RQ integration.
        integrations=[RqIntegration(), LoggingIntegration(level=logging.INFO, event_level=None)],
        # Its request hook parses every body before the handler (malformed JSON became a 500) and attaches the
        # whole parsed body to events; app/errors.py reports errors itself, without the body.
        disabled_integrations=[LitestarIntegration()],
        # send_default_pii stays at its default (off): no IPs, cookies or user data attached by the SDK.
        max_request_body_size="never",
        include_local_variables=False,
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=0.0,
    )
    return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": _scrub_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = _scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
