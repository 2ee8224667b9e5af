"""Structured logs and Sentry, for web and workers, with personal data kept out of both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
ACCESS_LOGGER = "renfort.access"

# The request being served (web) or whose job is running (worker), for every log line, Sentry event and job it causes.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
# The RQ job running (worker only): its lines carry it, and the jobs it enqueues do not inherit its request id.
JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def enqueuing_request_id() -> str | None:
    """The id a job enqueued now should carry: the web request's only. A job's follow-ups (a drain's e-mails, for
    the many requests it wrote) would carry the one request that happened to start it, which misleads."""
    return None if JOB_ID.get() is not None else REQUEST_ID.get()


@contextmanager
def job_context(job_id: str, request_id: str | None) -> Iterator[None]:
    """Around one job in the worker: its log lines carry the job's id and the request that enqueued it."""
    job_token, request_token = JOB_ID.set(job_id), REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(request_token)
        JOB_ID.reset(job_token)


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


def before_send(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Tags the event with the request (or job) it happened in, so it can be found in the logs, then scrubs it."""
    request_id, job_id = REQUEST_ID.get(), JOB_ID.get()
    if request_id or job_id:
        tags = event.setdefault("tags", {})
        if isinstance(tags, dict):
            tags.update({name: value for name, value in (("request_id", request_id), ("job_id", job_id)) if value})
    return scrub_event(event, hint)


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return scrub(crumb)


def init_sentry(dsn: str | None, *, environment: str, component: str, release: str | None = None) -> bool:
    """Initialises Sentry only when a DSN is configured; returns whether it did. `release`: Settings.release, so
    events name the deployed version (None lets the SDK look for one itself)."""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.litestar import LitestarIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        server_name=component,
        # Logs become breadcrumbs, not events: errors are reported once, by app/errors.py and the RQ integration.
        integrations=[RqIntegration(), LoggingIntegration(level=logging.INFO, event_level=None)],
        # Its request hook parses every body before the handler (malformed JSON became a 500) and attaches the
        # whole parsed body to events; app/errors.py reports errors itself, without the body.
        disabled_integrations=[LitestarIntegration()],
        # send_default_pii stays at its default (off): no IPs, cookies or user data attached by the SDK.
        max_request_body_size="never",
        include_local_variables=False,
        before_send=before_send,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=0.0,
    )
    return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request and job ids when there are some. Access lines (app/metrics/http.py)
    carry their fields in `record.access`: built from the route template, method, status and timing only, they are
    not scrubbed (it would double their cost on the hot path)."""

    _second = -1
    _time = ""

    def _formatted_time(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # strftime once a second, not once a line
            self._second, self._time = second, self.formatTime(record, "%Y-%m-%dT%H:%M:%S")
        return self._time

    def format(self, record: logging.LogRecord) -> str:
        access = getattr(record, "access", None)
        entry: dict[str, Any] = {
            "time": self._formatted_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage() if access is not None else _scrub_text(record.getMessage()),
        }
        request_id, job_id = REQUEST_ID.get(), JOB_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if job_id is not None:
            entry["job_id"] = job_id
        if access is not None:
            entry.update(access)
        if record.exc_info:
            entry["exception"] = _scrub_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class BufferedLineHandler(logging.StreamHandler):
    """Writes the lines of FLUSH_SECONDS in one call: at thousands of requests a second, a write per access line (or
    per event-loop tick) costs more than making it. Outside a running loop (a thread, start-up), each line is written
    at once; a crash loses at most the lines of the last FLUSH_SECONDS."""

    FLUSH_SECONDS = 0.2

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self._lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return
        self.add(line)

    def add(self, line: str) -> None:
        """A line already formatted, ending in a newline (the access log's own lines: app/metrics/http.py)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write([line] if not self._lines else [*self._lines, line])
            return
        if not self._lines:
            loop.call_later(self.FLUSH_SECONDS, self._flush_lines)
        self._lines.append(line)

    def _flush_lines(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write(self._lines)

    def flush(self) -> None:
        """What is buffered, now: at shutdown (the app's lifespan, logging's own exit hook)."""
        with self.lock:  # type: ignore[union-attr]
            if self._lines:
                self._write(self._lines)
        super().flush()

    def _write(self, lines: list[str]) -> None:
        self._lines = []
        with contextlib.suppress(OSError, ValueError):  # a closed or full stream must not break a request
            self.stream.write("".join(lines))
            self.stream.flush()


def configure_logging(level: str, *, access_log: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Never printed by JsonFormatter, and looked up for every record (the access log makes one per request).
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    # Its own level: the access log is on or off (ACCESS_LOG), whatever LOG_LEVEL lets through elsewhere.
    access = logging.getLogger(ACCESS_LOGGER)
    access.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
    access.disabled = not access_log
    access_handler = BufferedLineHandler()
    access_handler.setFormatter(JsonFormatter())
    access.handlers[:] = [access_handler]
    access.propagate = False


def flush_access_log() -> None:
    """Writes the access lines still buffered: a web process calls it as it shuts down."""
    for handler in logging.getLogger(ACCESS_LOGGER).handlers:
        handler.flush()
