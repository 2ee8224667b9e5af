"""Real servers for black-box tests: the web process under granian, as the Procfile runs it, and a Sentry stand-in.

Both run on a free loopback port for the duration of a test or module and are always stopped afterwards.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from ops.services import free_port

try:  # sentry-sdk compresses with brotli when the module is installed, with gzip otherwise
    import brotli
except ImportError:
    brotli = None

ROOT = Path(__file__).resolve().parent.parent


class WebServer:
    """`granian … app.asgi:app` in its own process group, with the test environment (os.environ, set by conftest)."""

    def __init__(self, log_file: Path, env: dict[str, str] | None = None, workers: int = 1) -> None:
        self.port = free_port()
        self.workers = workers
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_file = log_file
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        command = [
            sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers), "app.asgi:app",
        ]
        with open(self.log_file, "wb") as log:
            # Own session: stop() signals granian and its worker processes together, and nothing else.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"granian exited with {self.process.returncode}:\n{self.log_tail()}")
            if self._healthy():
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"granian did not answer /health within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.base_url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@contextlib.contextmanager
def running_web_server(log_file: Path, env: dict[str, str] | None = None) -> Iterator[WebServer]:
    server = WebServer(log_file, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _decoded(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "br" and brotli is not None:
        return bytes(brotli.decompress(body))
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class SentrySink:
    """Accepts what a Sentry SDK sends (`POST /api/<project>/envelope/`) and keeps the decoded bodies."""

    def __init__(self) -> None:
        self.port = free_port()
        self.envelopes: list[bytes] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = _decoded(body, (self.headers.get("Content-Encoding") or "").strip().lower())
                with sink._lock:
                    sink.envelopes.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.envelopes)

    def events(self) -> list[bytes]:
        """Envelopes that carry an error or message event (not sessions or client reports)."""
        return [body for body in self.received() if b'"type":"event"' in body.replace(b" ", b"")]
