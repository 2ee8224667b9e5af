"""Run the Procfile's processes side by side, the way a PaaS would: their output, made readable by `ops.console`,
goes to the terminal with their name in front, and in full to `<log_dir>/<name>.log` when a folder is given."""

from __future__ import annotations

import contextlib
import json
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

from ops.console import render


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


def run_once(name: str, command: str, env: dict[str, str], cwd: Path, log_dir: Path | None = None) -> int:
    """Run a one-off command (release, demo data) through bash, so `${VAR:-default}` expands as on a PaaS."""
    print(f"{name}: {command}", flush=True)
    process = subprocess.Popen(
        ["bash", "-c", command], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        _relay(process.stdout, name, _log_file(log_dir, name))
        return process.wait()
    except BaseException:  # Ctrl-C reached it too; never leave it running behind us
        process.kill()
        process.wait()
        raise


RESTARTS_PER_MINUTE = 3  # more, and the process cannot start: stop everything, as a crash loop would


@dataclass
class Supervisor:
    """Long-running processes that live and die together: when one exits, the others are stopped, unless its name is
    in `restart` (then it is started again, RESTARTS_PER_MINUTE times a minute at most). `state_file` says which pid
    runs which process and what is restarted, for tools that act on the running platform (`bench_faults --host`)."""

    env: dict[str, str]
    cwd: Path
    log_dir: Path | None = None
    stop_timeout: float = 10.0
    restart: frozenset[str] = frozenset()
    state_file: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    restarted_at: dict[str, list[float]] = field(default_factory=dict)
    relays: list[threading.Thread] = field(default_factory=list)

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
        self.processes[name], self.commands[name] = process, command
        assert process.stdout is not None
        relay = threading.Thread(target=_relay, args=(process.stdout, name, _log_file(self.log_dir, name)), daemon=True)
        relay.start()
        self.relays.append(relay)
        self._write_state()

    def wait(self, on_tick: Callable[[], None] = lambda: None) -> tuple[str, int]:
        """Block until a process exits or SIGINT/SIGTERM arrives; returns (who, exit code) or ("signal", 0)."""
        stopping = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stopping.set())
        while not stopping.is_set():
            for name, process in list(self.processes.items()):
                code = process.poll()
                if code is not None:
                    if not self._may_restart(name):
                        return name, code
                    print(f"{name} exited with code {code}; starting it again", flush=True)
                    self.start(name, self.commands[name])
            on_tick()
            stopping.wait(0.2)
        return "signal", 0

    def _may_restart(self, name: str) -> bool:
        now = time.monotonic()
        recent = [at for at in self.restarted_at.get(name, []) if now - at < 60]
        self.restarted_at[name] = [*recent, now]
        return name in self.restart and len(recent) < RESTARTS_PER_MINUTE

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {"restarts": sorted(self.restart), "processes": {name: p.pid for name, p in self.processes.items()}}
        temporary = self.state_file.with_name(self.state_file.name + ".tmp")
        temporary.write_text(json.dumps(state) + "\n")
        temporary.replace(self.state_file)  # readers never see half a file

    def stop_all(self) -> None:
        """SIGTERM every group (RQ does a warm shutdown on it), then SIGKILL what is left after stop_timeout."""
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        for relay in self.relays:  # a crashed process's last lines (its traceback) still reach the terminal
            relay.join(timeout=2)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


_terminal = threading.Lock()  # one relay thread per child: whole lines, never two interleaved


def _log_file(log_dir: Path | None, name: str) -> IO[bytes] | None:
    """The child's full output, from this run only (the previous run's is replaced)."""
    if log_dir is None:
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    return (log_dir / f"{name}.log").open("wb")


def _relay(stream: IO[bytes], name: str, log_file: IO[bytes] | None) -> None:
    try:
        for raw_line in iter(stream.readline, b""):
            if log_file is not None:
                log_file.write(raw_line)
                log_file.flush()
            shown = render(name, raw_line.decode(errors="replace"), arrived=time.time())
            if shown is not None:
                with _terminal:
                    sys.stdout.write(shown + "\n")
                    sys.stdout.flush()
    finally:
        if log_file is not None:
            log_file.close()
