"""What the benchmarks share: Procfile commands as process groups, waiting on HTTP, and running wrk.

Servers are started from the Procfile's own command lines so a benchmark measures what production runs; each
is its own process group (a server's workers included) and is stopped by that group's id, never by name.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
WRK_DIR = Path(__file__).resolve().parent / "wrk"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def procfile(path: Path = ROOT / "Procfile") -> dict[str, str]:
    """The Procfile's process types, e.g. {"web": "granian ...", "worker": "python -m queues.worker"}."""
    kinds: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line.strip())
        if match:
            kinds[match.group(1)] = match.group(2)
    return kinds


def loopback(command: str) -> str:
    """The same server line, bound to loopback only: a benchmark must not open a port to the network."""
    return command.replace("${WEB_HOST:-0.0.0.0}", "127.0.0.1").replace("0.0.0.0", "127.0.0.1")  # noqa: S104 - this replaces it


def base_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: this interpreter's bin first on PATH (granian, python of the venv)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("SENTRY_DSN", None)  # a benchmark never reports to a real Sentry
    env.update(overrides)
    return env


class Process:
    """A shell command run as its own process group, output to a log file."""

    def __init__(self, name: str, command: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        # `exec` so the shell expands ${PORT:-8000} like a PaaS does, then gives its pid to the server.
        self._popen = subprocess.Popen(
            ["/bin/sh", "-c", "exec " + command],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self._popen.pid

    def alive(self) -> bool:
        return self._popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        children = descendants(self._popen.pid) if self.alive() else []
        if self.alive():
            self._signal(signal.SIGTERM)
            try:
                self._popen.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {grace:.0f} s, killing its process group")
        self._kill(children)  # whatever the group or its children left behind (server workers, work horses)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the group and every descendant at once (a crash, the OOM killer): no warm shutdown. Descendants
        too, since some leave the group (an RQ work horse calls setsid); stop() still closes the log."""
        self._kill(descendants(self._popen.pid))

    def _kill(self, children: list[tuple[int, str]]) -> None:
        self._signal(signal.SIGKILL)
        for pid, started in children:
            with contextlib.suppress(OSError, IndexError):
                if _stat_fields(pid)[19] == started:  # the same process, not a later one given its pid
                    os.kill(pid, signal.SIGKILL)
        self._popen.wait()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signum)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the name: state, ppid, pgrp, ..., utime (11), stime (12), start time (19)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def parent_of(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def descendants(pid: int) -> list[tuple[int, str]]:
    """Every live process below `pid`, wherever its process group or session, as (pid, start time)."""
    children: dict[int, list[tuple[int, str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat.parent.name)
            children.setdefault(int(fields[1]), []).append((int(stat.parent.name), fields[19]))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child[0], []))
    return found


def group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by the live processes of a process group (a server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat.parent.name)
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU time of a process and every live descendant, with the children each of them reaped (a forked job's, a
    closed connection's backend): user + system."""
    if pid is None:
        return 0.0
    total = 0
    for member in [pid, *(child for child, _ in descendants(pid))]:
        try:
            fields = _stat_fields(member)
        except (OSError, IndexError):
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def machine_idle_seconds() -> float:
    """Idle CPU time of the whole machine so far, all cores added up."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / TICKS


class CpuWindow:
    """How many cores a process group used over a window, and how many the machine left idle.

    Other sessions may share the machine: a rate divided by the cores the server really got is comparable
    between noisy runs where the raw rate is not.
    """

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self._start = (time.monotonic(), group_cpu_seconds(pgid), machine_idle_seconds())
        self.server_cores = self.idle_cores = 0.0

    def stop(self) -> CpuWindow:
        wall = time.monotonic() - self._start[0]
        self.server_cores = (group_cpu_seconds(self.pgid) - self._start[1]) / wall
        self.idle_cores = (machine_idle_seconds() - self._start[2]) / wall
        return self


def wait_http(url: str, process: Process, timeout: float = 60.0) -> None:
    """Wait until `url` answers 200, failing early (with the log) if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited during start-up:\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback URL we built
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {timeout:.0f} s:\n{process.tail()}")


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback URL we built
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # /ready answers 503 with the same body when not ready
        return json.loads(error.read() or b"null")


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        print(
            "wrk is not installed: install Debian's package (`apt-get install -y wrk`) and run again.", file=sys.stderr
        )
        raise SystemExit(2)
    return path


@dataclass(frozen=True)
class WrkResult:
    duration_s: float
    requests: int
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def req_per_s(self) -> float:
        return self.requests / self.duration_s

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)


def run_wrk(
    url: str,
    script: str,
    *,
    duration: int,
    connections: int,
    threads: int = 2,
    env: dict[str, str] | None = None,
) -> WrkResult:
    """Run wrk with one of the scripts in loadtests/wrk/ and parse the WRK_JSON line its done() prints."""
    command = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s"]
    command += ["-s", str(WRK_DIR / script), url]
    completed = subprocess.run(
        command, env=base_env(**(env or {})), capture_output=True, text=True, timeout=duration + 60, check=False
    )
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({completed.returncode}):\n{completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        duration_s=float(data["duration_s"]),
        requests=int(data["requests"]),
        statuses={int(status): int(count) for status, count in data["statuses"].items()},
        socket_errors=sum(int(count) for kind, count in data["errors"].items() if kind != "status"),
        p50_ms=float(data["latency_ms"]["p50"]),
        p99_ms=float(data["latency_ms"]["p99"]),
    )


Bench = Callable[[ExitStack, Path, argparse.Namespace], dict[str, Any]]


def missed_targets(result: dict[str, Any]) -> int:
    return 1 if result.get("targets_met") is False else 0


def run_benchmark(bench: Bench, args: argparse.Namespace, *, prefix: str,
                  failures: tuple[type[BaseException], ...] = (),
                  exit_code: Callable[[dict[str, Any]], int] | None = None) -> None:
    """Runs `bench` in a temporary folder and prints its ONE JSON line. Whatever happens (an error, Ctrl-C, SIGTERM)
    the ExitStack unwinds, so every server and process the benchmark started is stopped; the folder is removed
    unless `--keep`. `failures` are the errors that end the run with a one-line message and exit status 1;
    `exit_code` turns the printed result into the exit status (a benchmark that measured a failure): by default 1
    when the result says `"targets_met": false`, so a missed target fails the command that measured it."""
    # Both unwind the ExitStack (SIGINT too when started from a script that ignores it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    exit_code = exit_code or missed_targets
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    expected: tuple[type[BaseException], ...] = (RuntimeError, OSError, *failures)
    try:
        with ExitStack() as stack:
            result = bench(stack, tmp, args)
        print(json.dumps(result), flush=True)
        if exit_code(result):
            log("benchmark done: a target was missed")
            raise SystemExit(exit_code(result))
    except expected as error:
        log(f"benchmark failed: {type(error).__name__}: {error}")
        raise SystemExit(1) from error
    except KeyboardInterrupt:
        log("interrupted; every process this benchmark started is stopped")
        raise SystemExit(130) from None
    finally:
        if getattr(args, "keep", False):
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
