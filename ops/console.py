"""What `./ops/run` shows of its children's output: one short human line per log line, housekeeping hidden.

The platform logs JSON lines (app/observability.py); the console turns each into `web     14:02:11 …`:
- the access log (logger `renfort.access`): `POST /inscription 303 12 ms`, nothing else of the request; static
  files and probes answered without error are left out, so a page view is one line;
- RQ's own INFO lines (job started, "Job OK", result kept, scheduler and registry maintenance) and Alembic's
  preamble are hidden; their warnings and errors show;
- a warning or an error shows its level, its logger and the last line of its traceback (the whole of it is in the
  child's log file, see `ops/supervisor.py`);
- any other line (granian's, a crash before logging is set up) shows as it is, stamped with the time it arrived.
Whatever the line, an e-mail address in it is shown masked (first letter and domain).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

ACCESS_LOGGER = "renfort.access"
NAME_WIDTH = 7  # "release"
QUIET_PREFIXES = ("/static", "/health", "/ready", "/metrics", "/favicon")
QUIET_LOGGERS = ("rq",)  # the logger family, `rq.worker`, `rq.job`, `rq.scheduler`, …
# Alembic's preamble on every connection it opens; its "Running upgrade …" lines still show.
QUIET_MESSAGES = {"alembic.runtime.migration": ("Context impl ", "Will assume ")}
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
WARNING = LEVELS["WARNING"]
EMAIL = re.compile(r"([\w.+'-])[\w.+'-]*@([\w-]+(?:\.[\w-]+)+)")
CLOCK = re.compile(r"\d\d:\d\d:\d\d")
RQ_WORKER_NAME = re.compile(r"^Worker [0-9a-f]{32}: ")  # RQ's random worker name: the name column says who


def mask_email(address: str) -> str:
    """`camille@example.org` → `c***@example.org`: enough to tell whose it is on one's own machine, no more."""
    local, at, domain = address.strip().partition("@")
    return f"{local[:1]}***@{domain}" if at and local else "***"


def mask_emails(text: str) -> str:
    return EMAIL.sub(lambda match: f"{match[1]}***@{match[2]}", text)


def render(name: str, raw: str, *, arrived: float | None = None) -> str | None:
    """The console line for one line of `name`'s output, or None when it is not shown."""
    line = raw.rstrip("\r\n")
    if not line.strip():
        return None
    entry = _json_entry(line)
    if entry is None:
        stamp = time.strftime("%H:%M:%S", time.localtime(arrived))
        return _line(name, stamp, line.removeprefix("[INFO] "))
    stamp = _clock(entry.get("time")) or time.strftime("%H:%M:%S", time.localtime(arrived))
    text = _entry_text(entry)
    return None if text is None else _line(name, stamp, text)


def _line(name: str, stamp: str, text: str) -> str:
    return f"{name:<{NAME_WIDTH}} {stamp} {mask_emails(text)}"


def _json_entry(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "message" in entry else None


def _clock(value: object) -> str | None:
    match = CLOCK.search(value) if isinstance(value, str) else None
    return match[0] if match else None


def _entry_text(entry: dict[str, Any]) -> str | None:
    logger = str(entry.get("logger") or "")
    level = str(entry.get("level") or "INFO").upper()
    severity = LEVELS.get(level, WARNING)
    if logger == ACCESS_LOGGER and severity < WARNING:
        return _access_text(entry)
    message = RQ_WORKER_NAME.sub("", str(entry.get("message") or "").strip())
    if severity < WARNING and (logger.split(".", 1)[0] in QUIET_LOGGERS
                               or message.startswith(QUIET_MESSAGES.get(logger, ()))):
        return None
    first = message.splitlines()[0] if message else ""
    if severity < WARNING:
        return first
    cause = _last_line(str(entry.get("exception") or "")) or _last_line(message.partition("\n")[2])
    return f"{level} {logger}: {first}" + (f" — {cause}" if cause and cause != first else "")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _access_text(entry: dict[str, Any]) -> str | None:
    """`POST /inscription 303 12 ms` from the access line's fields (app/metrics/http.py: method, route template,
    status, duration_ms); its message when they are not there."""
    method, route, status = entry.get("method"), entry.get("route"), entry.get("status")
    if not (isinstance(method, str) and isinstance(route, str) and isinstance(status, int)):
        return str(entry.get("message") or "").strip() or None
    if status < 400 and route.startswith(QUIET_PREFIXES):
        return None
    duration = entry.get("duration_ms")
    if not isinstance(duration, int | float):
        return f"{method} {route} {status}"
    return f"{method} {route} {status} {duration:.{0 if duration >= 10 else 1}f} ms"
