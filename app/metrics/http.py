"""Around every HTTP request, outside Litestar's router so that unmatched paths are seen too: a request id (the
client's `X-Request-Id` when it is sane, else a new one) bound for the request's log lines and the jobs it enqueues
and returned in the response's `X-Request-Id`; the request counted and timed by route template; one access line.

A raw ASGI callable, since it runs on the sign-up path at thousands of requests a second: no Request object, the
label children cached per (route, method, status), nothing awaited of its own.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import re
import secrets
import time
from typing import Any, cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from app.http import route_template
from app.metrics.instruments import DURATION_BUCKETS, HTTP_DURATION, HTTP_REQUESTS
from app.observability import ACCESS_LOGGER, REQUEST_ID, BufferedLineHandler

FLUSH_SECONDS = 0.5  # how late the request counts of a scrape may be
UNMATCHED = "unmatched"  # the route label of a path no route serves (404, 405): one series, whatever was asked
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HEADER = b"x-request-id"
# What a proxy or a client may hand us as a request id (a UUID, nginx's $request_id, a PaaS router's): anything
# else, a new one. Strict, so that what lands in every log line cannot be a payload.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{7,63}")

access_log = logging.getLogger(ACCESS_LOGGER)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == HEADER:
            try:
                given = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if SANE_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


class _Tally:
    """One series' requests of the current event-loop tick: a count, a sum, a count per duration bucket."""

    __slots__ = ("buckets", "count", "counter", "histogram", "total")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter, self.histogram = counter, histogram
        self.count, self.total, self.buckets = 0, 0.0, [0] * (len(DURATION_BUCKETS) + 1)


class ObservedRequests:
    """Counts are added up in memory and written to the process's metric file every FLUSH_SECONDS: each write to
    the file takes a lock, and at thousands of requests a second writing each request cost a few percent of the
    sign-up rate (loadtests.bench_signups). A scrape is at most that late; a killed process loses that much."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], _Tally] = {}
        self._touched: list[_Tally] = []

    def _record(self, route: str, method: str, status: int, seconds: float) -> None:
        tally = self._series.get((route, method, status))
        if tally is None:
            tally = self._series[(route, method, status)] = _Tally(
                HTTP_REQUESTS.labels(route, method, str(status)), HTTP_DURATION.labels(route, method)
            )
        if not tally.count:
            if not self._touched:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush)
            self._touched.append(tally)
        tally.count += 1
        tally.total += seconds
        tally.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1

    def _flush(self) -> None:
        touched, self._touched = self._touched, []
        for tally in touched:
            tally.counter.inc(tally.count)
            # What Histogram.observe does for one value (prometheus_client 0.26, pinned), for a tick's values at once:
            # the sum, and each bucket's own count (the exposition makes them cumulative).
            tally.histogram._sum.inc(tally.total)
            for index, count in enumerate(tally.buckets):
                if count:
                    tally.histogram._buckets[index].inc(count)
                    tally.buckets[index] = 0
            tally.count, tally.total = 0, 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked: str = cast("HTTPScope", scope)["method"]
        method = asked if asked in METHODS else "OTHER"
        request_id = _request_id(scope)
        token = REQUEST_ID.set(request_id)
        header = (HEADER, request_id.encode())
        status = 500  # what the client gets when the app raises before answering

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope) or UNMATCHED
            self._record(route, method, status, seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(method, route, status, seconds, request_id)
            REQUEST_ID.reset(token)


class AccessLine:
    """The access log's line, in the JsonFormatter's shape, made without a LogRecord: what a line holds besides its
    time, request id and duration comes from bounded sets (method, route template, status), so it is serialised
    once per set and kept. A fifth of the cost of going through `logging` (measured: ~8 µs down to ~1.5 µs)."""

    def __init__(self) -> None:
        self._fixed: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._second = -1
        self._time = ""

    def __call__(self, method: str, route: str, status: int, seconds: float, request_id: str) -> str:
        fixed = self._fixed.get((method, route, status))
        if fixed is None:
            message = json.dumps(f"{method} {route} {status}", ensure_ascii=False)
            fixed = self._fixed[(method, route, status)] = (
                f', "level": "INFO", "logger": "{ACCESS_LOGGER}", "message": {message}, "request_id": ',
                f', "method": {json.dumps(method)}, "route": {json.dumps(route, ensure_ascii=False)}, '
                f'"status": {status}, "duration_ms": ',
            )
        now = time.time()
        if int(now) != self._second:  # strftime once a second, as JsonFormatter does
            self._second = int(now)
            self._time = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        # The request id is hex or matched SANE_ID: nothing in it needs escaping.
        return f'{{"time": "{self._time}"{fixed[0]}"{request_id}"{fixed[1]}{round(seconds * 1000, 2)}}}\n'


access_line = AccessLine()


def _log_access(method: str, route: str, status: int, seconds: float, request_id: str) -> None:
    """Never the raw path, its query string, the client's address, cookies or body."""
    handlers = access_log.handlers
    if len(handlers) == 1 and isinstance(handlers[0], BufferedLineHandler):
        handlers[0].add(access_line(method, route, status, seconds, request_id))
        return
    # Another handler was configured (a test's, a library's): the ordinary way, through `logging`.
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, f"{method} {route} {status}", None, None)
    record.access = {"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000, 2)}
    access_log.handle(record)
