"""Where a person goes once signed in: a path on this site only, so that a crafted link (`/connexion?suite=…`)
can never send them to another one after the sign-in."""

from __future__ import annotations

from urllib.parse import urlsplit

SPACE = "/mon-espace"
MAX_LENGTH = 500


def safe(raw: object) -> str:
    """`raw` when it is a same-site relative path, else "" (the caller falls back to SPACE). Refused: anything
    not starting with a single "/", backslashes (browsers read them as "/"), anything but printable ASCII (a tab
    or a newline is dropped by browsers, turning "/\\t/evil" into "//evil"; our own paths are ASCII and a
    redirect header must be), and anything a URL parser reads as having a scheme or a host."""
    if not isinstance(raw, str) or not raw.startswith("/") or len(raw) > MAX_LENGTH:
        return ""
    if raw.startswith("//") or "\\" in raw or any(not 0x20 < ord(char) < 0x7F for char in raw):
        return ""
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return ""
    return raw


def after_sign_in(raw: object) -> str:
    return safe(raw) or SPACE
