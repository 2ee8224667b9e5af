"""Path patterns over route templates: `*` is one segment (`/api/v1/receipts/*` matches the template
`/api/v1/receipts/{receipt}`), a final `**` any number of segments, none included (`/coordination/**` matches
`/coordination` and everything under it). Rules match the route a request was routed to, not the text of its URL,
so no spelling of a URL (percent-encoding, a trailing slash) reaches a route other than its own."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READS = frozenset({"GET"})
ANY = frozenset[str]()
# HEAD and OPTIONS ask about a page the way GET reads it.
AS_READ = {"HEAD": "GET", "OPTIONS": "GET"}


def _regex(pattern: str) -> str:
    if not pattern.startswith("/"):
        raise ValueError(f"a path pattern starts with '/': {pattern!r}")
    rest = pattern.rstrip("/")
    tail = ""
    if rest.endswith("/**"):
        rest, tail = rest[: -len("/**")], "(?:/.*)?"
    parts = [r"[^/]+" if part == "*" else re.escape(part) for part in rest.split("/")[1:]]
    if any("**" in part for part in rest.split("/")):
        raise ValueError(f"'**' only ends a path pattern: {pattern!r}")
    return ("/" + "/".join(parts) if parts else "") + tail


@dataclass(frozen=True)
class PathRule:
    """`methods`: the methods it covers (empty: every method); `why`: what the path serves, for readers."""

    pattern: str
    methods: frozenset[str] = ANY
    why: str = ""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(_regex(self.pattern) or "/", re.ASCII))

    def matches(self, method: str, template: str) -> bool:
        method = AS_READ.get(method, method)
        return (not self.methods or method in self.methods) and self.regex.fullmatch(normalise(template)) is not None


def normalise(template: str) -> str:
    template = re.sub("/{2,}", "/", template)
    return template.rstrip("/") or "/"


def rule(pattern: str, methods: Iterable[str] = (), why: str = "") -> PathRule:
    return PathRule(pattern, frozenset(methods), why)


def any_matches(rules: Iterable[PathRule], method: str, template: str) -> bool:
    return any(path_rule.matches(method, template) for path_rule in rules)
