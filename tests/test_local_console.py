"""`./ops/run`'s console: real processes' output made readable (one line per request, RQ's chatter hidden, errors
kept, no personal data), the sign-in links the mail sink receives printed whole, and a local ops token kept."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from ops.console import render
from ops.processes import port_accepts
from ops.run import banner, demo_accounts
from ops.services import free_port, local_environment, ops_token_file, read_messages
from ops.supervisor import Supervisor
from queues.connection import job_queue
from tests.conftest import REDIS_URL, ROOT, TEST_ENV, run_worker
from tests.factories import signup
from tests.helpers import queue_signups, queued_signup
from tests.servers import running_web_server

ACCESS_LINE = re.compile(r"^web     \d\d:\d\d:\d\d (GET|POST) (\S+) (\d{3}) [\d.]+ ms$")
LINK_SUBJECT = "Votre lien de connexion à Renfort"
BASE_URL = "http://127.0.0.1:8123"  # what the platform writes in its links, and what the sink looks for


def shown(name: str, output: str) -> list[str]:
    return [line for raw in output.splitlines() if (line := render(name, raw)) is not None]


def csrf_token(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match[1]


def test_a_real_web_process_gets_one_short_line_per_request_and_no_personal_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = signup(email="camille.durand@example.org", first_name="Camille", last_name="Durand")
    monkeypatch.delenv("OPS_TOKEN")
    token = local_environment(tmp_path)["OPS_TOKEN"]  # generated into .local/ops_token, as ./ops/run passes it
    with running_web_server(tmp_path / "web.log", {"LOG_LEVEL": "INFO", "OPS_TOKEN": token}) as web, \
            httpx.Client(base_url=web.base_url, timeout=10) as client:
        assert client.get("/inscription").status_code == 200
        assert client.post("/api/v1/volunteers", json=person).status_code == 202
        assert client.post("/api/v1/volunteers", json={**person, "phone": "pas un numéro"}).status_code == 422
        assert client.get("/missions/999999-introuvable").status_code == 404
        assert client.get("/ops/dead-letters").status_code == 401
        assert client.get("/ops/dead-letters", auth=("ops", token)).status_code == 200
        assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/health").status_code == 200
        assert client.get("/static/renfort.css").status_code == 200
    raw = web.log_file.read_text()
    console = shown("web", raw)

    requests = [(m[1], m[2], m[3]) for line in console if (m := ACCESS_LINE.match(line))]
    assert requests == [
        ("GET", "/inscription", "200"),
        ("POST", "/api/v1/volunteers", "202"),
        ("POST", "/api/v1/volunteers", "422"),
        ("GET", "/missions/{reference}", "404"),  # the route template, never the path asked for
        ("GET", "/ops/dead-letters", "401"),
        ("GET", "/ops/dead-letters", "200"),
    ]  # probes, metrics and static files answered 2xx are left out; every other request is one line
    assert any("Listening at" in line for line in console)  # granian's own lines pass as they are
    assert raw.count('"logger": "renfort.access"') >= 9  # the file keeps everything the console leaves out
    everything = "\n".join(console)
    for personal in ("camille.durand", "Camille", "Durand", "06 12 34 56 78", "1990-04-12", token):
        assert personal not in everything


async def test_a_real_worker_shows_its_work_and_its_errors_but_not_rqs_chatter(redis: AsyncRedis) -> None:
    await queue_signups(redis, [queued_signup(number, prefix="console") for number in range(3)])
    connection = Redis.from_url(REDIS_URL)
    try:
        job_queue(connection).enqueue("queues.no_such_module.job")  # a job that cannot run: RQ logs an error
    finally:
        connection.close()
    raw = run_worker({"LOG_LEVEL": "INFO"}).stderr
    console = shown("worker", raw)
    everything = "\n".join(console)

    chatter = ("Job OK", "result is kept", "Listening on", "cleaning registries", "Successfully completed",
               "started with PID", "Scheduler")
    assert all(words in raw for words in chatter[:4])  # RQ said it all …
    assert not [line for line in console if any(words in line for words in chatter)]  # … and the console hid it
    assert any(re.search(r"^worker  \d\d:\d\d:\d\d drained 3 sign-ups", line) for line in console)
    [failed] = [json.loads(line) for line in raw.splitlines() if "(queues.no_such_module.job)" in line]
    cause = failed["message"].strip().splitlines()[-1]  # the traceback's last line: what went wrong
    [error] = [line for line in console if "(queues.no_such_module.job)" in line]
    assert re.match(r"^worker  \d\d:\d\d:\d\d ERROR rq\.worker: job [0-9a-f-]+: exception raised", error)
    assert error.endswith(f" — {cause}")
    assert "@example.org" not in everything and "Traceback" not in everything


@dataclass
class SinkProcess:
    port: int
    folder: Path
    output: Path

    def lines(self) -> list[str]:
        return self.output.read_text().splitlines()


@pytest.fixture
def sink_process(tmp_path: Path) -> Iterator[SinkProcess]:
    """`python -m ops.mailsink`, as ./ops/run starts it, its output in a file."""
    sink = SinkProcess(free_port(), tmp_path / "mail", tmp_path / "mail.log")
    with sink.output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.mailsink", "--port", str(sink.port), "--dir", str(sink.folder),
             "--base-url", BASE_URL],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not port_accepts(sink.port):
            assert process.poll() is None and time.monotonic() < deadline, sink.output.read_text()
            time.sleep(0.1)
        yield sink
    finally:
        process.terminate()
        process.wait(10)


async def test_the_mail_sink_prints_the_decoded_link_of_a_real_sign_in_email(
    tmp_path: Path, client: AsyncTestClient, db: asyncpg.Connection, sink_process: SinkProcess
) -> None:
    await db.execute("INSERT INTO users (email, email_normalized) VALUES ($1, $1)", "camille.durand@example.org")
    page = await client.get("/connexion")
    asked = await client.post(
        "/connexion", data={"email": "camille.durand@example.org", "_csrf_token": csrf_token(page.text)}
    )
    assert asked.status_code == 200
    # The sink writes its line before it answers 250: once the worker is done, the line is there.
    await asyncio.to_thread(run_worker, {"SMTP_URL": f"smtp://127.0.0.1:{sink_process.port}", "BASE_URL": BASE_URL})

    [message] = read_messages(sink_process.folder)  # still stored as an .eml file
    body = message.get_body()
    assert message["Subject"] == LINK_SUBJECT and body is not None
    link = re.search(rf"{re.escape(BASE_URL)}/connexion/lien\?jeton=\S+", body.get_content())
    assert link is not None
    raw_file = next(sink_process.folder.glob("*.eml")).read_text()
    assert link[0] not in raw_file  # quoted-printable on the wire: the sink decoded it to print it whole
    [line] = [line for line in sink_process.lines() if "→" in line]
    assert line.endswith(f"→ c***@example.org : {LINK_SUBJECT}  {link[0]}")
    shown_line = render("mail", line)
    assert shown_line is not None and shown_line.endswith(link[0])  # on the console too: whole, so clickable
    assert "camille" not in line


def test_the_local_ops_token_is_generated_once_mode_600_and_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal:5432/renfort")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.delenv("OPS_TOKEN", raising=False)

    first, second = local_environment(tmp_path), local_environment(tmp_path)

    path = ops_token_file(tmp_path)
    assert path == tmp_path / ".local" / "ops_token" and path.stat().st_mode & 0o777 == 0o600
    assert len(first["OPS_TOKEN"]) >= 32 and second["OPS_TOKEN"] == first["OPS_TOKEN"] == path.read_text().strip()
    assert first["OPS_TOKEN"] != first["SECRET_KEY"]
    monkeypatch.setenv("OPS_TOKEN", "given-by-the-operator")
    assert local_environment(tmp_path)["OPS_TOKEN"] == "given-by-the-operator"
    assert path.read_text().strip() == first["OPS_TOKEN"]  # a given token never overwrites the stored one

    monkeypatch.delenv("OPS_TOKEN")
    text = banner({"PORT": "8000", "WEB_HOST": "127.0.0.1", **first}, [], None, tmp_path / "logs")
    assert first["OPS_TOKEN"] not in text and ".local/ops_token" in text
    for url in ("/inscription", "/administration/roles", "/ops/dead-letters", "/metrics"):
        assert f"http://127.0.0.1:8000{url}" in text


def test_the_start_up_banner_lists_the_demo_accounts_from_the_demo_module() -> None:
    accounts = demo_accounts({**os.environ})  # `python -m app.demo --accounts`, as ./ops/run runs it
    emails = [account["email"] for account in accounts]
    assert emails[:4] == ["admin@demo.renfort.example", "referent@demo.renfort.example",
                          "coordination@demo.renfort.example", "gestion@demo.renfort.example"]
    assert emails[4] == "camille.bernard@demo.renfort.example"
    text = banner({"PORT": "8000", "WEB_HOST": "127.0.0.1", **TEST_ENV}, accounts, None, ROOT / ".local" / "logs")
    for account in accounts:
        assert re.search(rf"^    {re.escape(account['email'])} +{re.escape(account['role'])} +\S", text, re.M)


def test_an_address_in_any_line_reaches_the_terminal_masked() -> None:
    crash = "ValueError: no volunteer camille.durand@example.org in 69123"
    shown_line = render("worker", crash)
    assert shown_line is not None and shown_line.endswith("ValueError: no volunteer c***@example.org in 69123")
    entry = json.dumps({"time": "2026-12-01T14:02:11", "level": "WARNING", "logger": "renfort.mail",
                        "message": "refused for ana@example.org"})
    assert render("worker", entry) == "worker  14:02:11 WARNING renfort.mail: refused for a***@example.org"


def test_the_supervisor_shows_the_short_lines_and_keeps_each_processs_whole_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps({"time": "2026-12-01T14:02:11", "level": "INFO", "logger": "rq.worker", "message": "Job OK (1)"}),
        json.dumps({"time": "2026-12-01T14:02:12", "level": "INFO", "logger": "renfort.access", "message": "x",
                    "method": "POST", "route": "/inscription", "status": 303, "duration_ms": 12.4}),
        "[INFO] Listening at: http://127.0.0.1:8000",
    ]
    script = "import sys; sys.stdout.write(sys.argv[1])"
    command = f"{sys.executable} -c {shlex.quote(script)} {shlex.quote(chr(10).join(lines) + chr(10))}"
    supervisor = Supervisor(env={**os.environ}, cwd=ROOT, log_dir=tmp_path / "logs")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start("web", command)
        assert supervisor.wait() == ("web", 0)
    finally:
        supervisor.stop_all()
        for sig, handler in handlers.items():  # wait() takes Ctrl-C over, as ./ops/run needs; pytest gets it back
            signal.signal(sig, handler)

    shown_lines = capsys.readouterr().out.splitlines()
    assert shown_lines[0] == "web     14:02:12 POST /inscription 303 12 ms"
    assert re.fullmatch(r"web     \d\d:\d\d:\d\d Listening at: http://127\.0\.0\.1:8000", shown_lines[1])
    assert len(shown_lines) == 2
    assert (tmp_path / "logs" / "web.log").read_text().splitlines() == lines


def test_the_supervisor_restarts_what_it_is_told_to_a_few_times_then_stops_and_records_pids(tmp_path: Path) -> None:
    state = tmp_path / "run.json"
    supervisor = Supervisor(env=dict(os.environ), cwd=tmp_path, restart=frozenset({"flaky"}), state_file=state)
    supervisor.start("steady", "sleep 60")
    supervisor.start("flaky", "sh -c 'sleep 0.3; exit 3'")
    first = json.loads(state.read_text())
    assert first["restarts"] == ["flaky"]
    assert first["processes"]["steady"] == supervisor.processes["steady"].pid
    try:
        who, code = supervisor.wait()
        # Restarted RESTARTS_PER_MINUTE times within the minute, then given up on, like a crash loop on a PaaS.
        assert (who, code) == ("flaky", 3)
        assert len(supervisor.restarted_at["flaky"]) == 4
        assert json.loads(state.read_text())["processes"]["flaky"] == supervisor.processes["flaky"].pid
    finally:
        supervisor.stop_all()
    assert not state.exists()
    supervisor = Supervisor(env=dict(os.environ), cwd=tmp_path)
    supervisor.start("other", "sh -c 'exit 4'")
    try:
        assert supervisor.wait() == ("other", 4)  # not in `restart`: the first exit ends the run
    finally:
        supervisor.stop_all()
