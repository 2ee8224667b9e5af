"""A partner's XML feed: fetched from a public address only (`fetch`), parsed safely and incrementally (`parse`)."""

from __future__ import annotations


class FeedError(Exception):
    """Why a whole feed was refused, in French, fit for the import log the partner reads (no credentials, no trace)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
