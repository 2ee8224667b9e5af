"""A request id per request, on a real platform: the client's when it is sane, else a new one; returned in
`X-Request-Id`, in the request's access line, carried into the jobs the request enqueued (meta) and into those
jobs' log lines in the worker."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer

from app.observability import REQUEST_ID, JsonFormatter, job_context
from queues.connection import QUEUE_NAME
from tests.conftest import REDIS_URL, run_worker
from tests.factories import signup
from tests.test_metrics import running

GIVEN = "req-7f3a9c2e-4b1d-4e8a-9f60-2c5d8b1a0e47"
GENERATED = re.compile(r"[0-9a-f]{16}")


def json_lines(text: str) -> list[dict[str, object]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
    return lines


def test_a_sane_request_id_follows_the_signup_into_its_drain_job_and_the_jobs_log_lines(tmp_path: Path) -> None:
    with running(tmp_path) as web:
        accepted = httpx.post(web.url + "/api/v1/volunteers", json=signup(), headers={"X-Request-Id": GIVEN})
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["x-request-id"] == GIVEN
        log = web.log_once_written(f'"request_id": "{GIVEN}", "method": "POST"')
    access = [line for line in json_lines(log) if line.get("logger") == "renfort.access"]
    assert {"method": "POST", "route": "/api/v1/volunteers", "status": 202, "request_id": GIVEN}.items() <= \
        next(line for line in access if line.get("request_id") == GIVEN).items()

    connection = Redis.from_url(REDIS_URL)
    try:
        ids = [raw.decode() for raw in connection.lrange(f"rq:queue:{QUEUE_NAME}", 0, -1)]
        jobs = [Job.fetch(job_id, connection=connection, serializer=JSONSerializer) for job_id in ids]
    finally:
        connection.close()
    drains = [job for job in jobs if job.func_name == "queues.signups.drain_signups"]
    assert [job.meta.get("request_id") for job in drains] == [GIVEN]

    worker = run_worker({"LOG_LEVEL": "INFO"})
    lines = json_lines(worker.stderr)
    of_the_job = [line for line in lines if line.get("job_id") == drains[0].id]
    assert of_the_job and all(line["request_id"] == GIVEN for line in of_the_job)
    # The worker's own jobs (the drain a starting worker asks for, a drain's welcome e-mail, written for whoever it
    # drained) do not claim the request's id.
    others = [line for line in lines if line.get("job_id") not in (None, drains[0].id)]
    assert others and all(line.get("request_id") != GIVEN for line in others)


def test_an_insane_or_missing_request_id_is_replaced_by_a_new_one(tmp_path: Path) -> None:
    with running(tmp_path) as web:
        answers = [httpx.get(web.url + "/health", headers=headers) for headers in (
            {"X-Request-Id": "a b<script>"}, {"X-Request-Id": "court"}, {"X-Request-Id": "x" * 65}, {},
        )]
        for answer in answers:  # each access line, whatever order the buffered lines reach the file in
            log = web.log_once_written(answer.headers["x-request-id"])
    given = [answer.headers["x-request-id"] for answer in answers]
    assert all(GENERATED.fullmatch(value) for value in given), given
    assert len(set(given)) == 4
    logged = {line["request_id"] for line in json_lines(log) if line.get("route") == "/health"}
    assert set(given) <= logged
    assert "script" not in log


def test_every_log_line_of_a_request_or_a_job_names_it() -> None:
    record = logging.LogRecord("renfort.web", logging.WARNING, __file__, 1, "could not enqueue a drain", (), None)
    token = REQUEST_ID.set("abcdef0123456789")
    try:
        during_request = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    with job_context("job-1", "abcdef0123456789"):
        during_job = json.loads(JsonFormatter().format(record))
    outside = json.loads(JsonFormatter().format(record))
    assert during_request["request_id"] == "abcdef0123456789" and "job_id" not in during_request
    assert during_job["request_id"] == "abcdef0123456789" and during_job["job_id"] == "job-1"
    assert "request_id" not in outside and "job_id" not in outside


def test_the_access_line_made_without_logging_is_the_formatters_line() -> None:
    from app.metrics.http import access_line
    from app.observability import ACCESS_LOGGER, REQUEST_ID, JsonFormatter

    token = REQUEST_ID.set("0123456789abcdef")
    try:
        record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, "POST /missions/{reference} 303", None,
                                   None)
        record.access = {"method": "POST", "route": "/missions/{reference}", "status": 303, "duration_ms": 12.35}
        expected = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    line = access_line("POST", "/missions/{reference}", 303, 0.0123456, "0123456789abcdef")
    assert line.endswith("}\n") and line.count("\n") == 1
    assert json.loads(line) == expected
