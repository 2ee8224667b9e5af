"""A switch flipped from the command reaches every process of a running web server within seconds: granian with two
workers, as the Procfile runs it, each with its own copy of the switches."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import httpx

from tests.servers import WebServer
from tests.test_switches import switches_command

ROUNDS = 24  # fresh connections: the kernel spreads them over both workers


def statuses(server: WebServer, path: str) -> set[int]:
    """One fresh connection per request (no keep-alive), so that each may land on either worker."""
    return {httpx.get(server.base_url + path, headers={"Connection": "close"}, timeout=10).status_code
            for _ in range(ROUNDS)}


def until(condition: object, timeout: float) -> float:
    """Seconds until `condition()` held."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)
    return time.monotonic() - started


async def test_maintenance_from_the_command_reaches_both_workers_within_seconds(
    tmp_path: Path, db: asyncpg.Connection
) -> None:
    server = WebServer(tmp_path / "granian.log", {"LOG_LEVEL": "WARNING"}, workers=2)
    server.start()
    try:
        assert statuses(server, "/missions") == {200}
        assert switches_command("on", "maintenance", "--reason", "essai").returncode == 0
        assert until(lambda: statuses(server, "/missions") == {503}, timeout=10) < 10
        assert statuses(server, "/inscription") == {200}
        log = server.log_file.read_text(errors="replace")
        assert log.count("switches now on: maintenance") == 2, server.log_tail()  # one line per worker process

        assert switches_command("off", "maintenance").returncode == 0
        until(lambda: statuses(server, "/missions") == {200}, timeout=10)
        assert server.log_file.read_text(errors="replace").count("switches now on: none") == 2
    finally:
        server.stop()
    assert await db.fetchval("SELECT count(*) FROM switch_changes WHERE actor = 'commande'") == 2
