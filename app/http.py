"""Small request helpers shared by pages and API controllers."""

from __future__ import annotations

from typing import Any

from litestar import Request


def client_ip(request: Request[Any, Any, Any], trusted_proxy_hops: int) -> str:
    """The caller's address: the socket peer, or the entry our own proxies added to X-Forwarded-For."""
    if trusted_proxy_hops > 0:
        forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
        if len(forwarded) >= trusted_proxy_hops:
            return forwarded[-trusted_proxy_hops]
    return request.client.host if request.client else "unknown"


def wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")
