"""The partners' error envelope, API Engagement's: `{"ok": false, "code": …, "message": …}` (message in French)."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Request, Response

# The path prefixes whose errors take this envelope: the key-authenticated API and the tracked links.
PARTNER_PATHS = ("/v0/", "/v2/")


class PartnerApiError(Exception):
    """Raised by the partner routes; turned into the envelope by `partner_api_error`."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.headers = headers or {}


def envelope(status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"ok": False, "code": code, "message": message}, status_code=status_code, headers=headers,
                    media_type=MediaType.JSON)


def partner_api_error(_: Request[Any, Any, Any], error: PartnerApiError) -> Response[Any]:
    return envelope(error.status_code, error.code, error.message, error.headers)


def is_partner_path(path: str) -> bool:
    return path.startswith(PARTNER_PATHS)
