"""Run the Procfile's processes side by side, the way a PaaS would, with their output prefixed by their name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def read_procfile(path: Path) -> dict[str, str]:
    """`name: command` lines, in order; blank lines and # comments are skipped."""
    commands: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, command = line.partition(":")
        if not separator or not command.strip():
            raise ValueError(f"{path}: expected `name: command`, got {line!r}")
        commands[name.strip()] = command.strip()
    return commands


def run_once(name: str, command: str, env: dict[str, str], cwd: Path) -> int:
    """Run a one-off command (release, demo data) through bash, so `${VAR:-default}` expands as on a PaaS."""
    print(f"{name}: {command}", flush=True)
    return subprocess.run(["bash", "-c", command], env=env, cwd=cwd, check=False).returncode


@dataclass
class Supervisor:
    """Long-running processes that live and die together: when one exits, the others are stopped."""

    env: dict[str, str]
    cwd: Path
    stop_timeout: float = 10.0
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, command: str) -> None:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own process group: Ctrl-C reaches only us, and we stop each group (granian's workers included) in order.
            start_new_session=True,
        )
        self.processes[name] = process
        assert process.stdout is not None
        threading.Thread(target=_relay, args=(process.stdout, f"{name:<6} | "), daemon=True).start()

    def wait(self, on_tick: Callable[[], None] = lambda: None) -> tuple[str, int]:
        """Block until a process exits or SIGINT/SIGTERM arrives; returns (who, exit code) or ("signal", 0)."""
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        while not stopping.is_set():
            for name, process in self.processes.items():
                code = process.poll()
                if code is not None:
                    return name, code
            on_tick()
            stopping.wait(0.2)
        return "signal", 0

    def stop_all(self) -> None:
        """SIGTERM every group (RQ does a warm shutdown on it), then SIGKILL what is left after stop_timeout."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _relay(stream: IO[bytes], prefix: str) -> None:
    for raw_line in iter(stream.readline, b""):
        sys.stdout.write(prefix + raw_line.decode(errors="replace"))
        sys.stdout.flush()
