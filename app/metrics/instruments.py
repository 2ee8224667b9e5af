"""What each web process counts as it serves: requests by route template, their durations, cache reads. Summed over
the processes of the server run at scrape time (app/metrics/process_files.py); labels come from the code (route
templates, methods, statuses, cache names), never from what a visitor typed, so their number stays bounded."""

from __future__ import annotations

import asyncio
import warnings

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

from app.metrics import process_files

# From a cached page (a few ms) to a slow PostgreSQL query, with room for the p99 alert's threshold (1 s).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "renfort_http_requests", "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "renfort_http_request_duration_seconds", "Time from a request's arrival to the end of its answer.",
    ["route", "method"], buckets=DURATION_BUCKETS,
)
CACHE_READS = Counter(
    "renfort_cache_reads", "Visits served by the Redis caches (app/cache): hit = a copy of the current version, "
    "miss = built, or a previous copy served while it is rebuilt.", ["cache", "result"],
)
INSTRUMENTS: tuple[MetricWrapperBase, ...] = (HTTP_REQUESTS, HTTP_DURATION, CACHE_READS)


def start_counting(base: str) -> None:
    """Counts from now on go to this server run's files (idempotent). Counts made before, in this process, under
    the in-memory values (a module used before the app was built) are dropped, so every series is in the files."""
    switched = not getattr(process_files.values.ValueClass, "_multiprocess", False)
    process_files.prepare(base)
    if switched:
        with warnings.catch_warnings():  # "not implemented in multi-process mode": these children are not in a file
            warnings.simplefilter("ignore", UserWarning)
            for instrument in INSTRUMENTS:
                instrument.clear()


_cache_counts: dict[tuple[str, str], int] = {}
CACHE_FLUSH_SECONDS = 0.5  # as the request counts (app/metrics/http.py): one write to the file per series and flush


def count_cache_reads(entry: str, hit: bool, visits: int) -> None:
    """`entry`: the cached key; its owner's namespace (`renfort:<owner>:…`: missions, pages, coordination) names the
    cache, a bounded label. Added up in memory and written every CACHE_FLUSH_SECONDS: it runs on every cached read."""
    parts = entry.split(":", 2)
    key = (parts[1] if len(parts) == 3 else "other", "hit" if hit else "miss")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a job or a script: at once
        CACHE_READS.labels(*key).inc(visits)
        return
    if not _cache_counts:
        loop.call_later(CACHE_FLUSH_SECONDS, _flush_cache_counts)
    _cache_counts[key] = _cache_counts.get(key, 0) + visits


def _flush_cache_counts() -> None:
    counts = dict(_cache_counts)
    _cache_counts.clear()
    for key, visits in counts.items():
        CACHE_READS.labels(*key).inc(visits)
