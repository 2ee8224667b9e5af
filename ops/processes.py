"""Small process, port and permission helpers shared by the local service classes."""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import signal
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

logger = logging.getLogger("ops")

LOOPBACK = "127.0.0.1"
HAS_PROC = Path("/proc/self/stat").exists()


class ServiceError(RuntimeError):
    """A local service could not be started or stopped; the message says what to look at."""


def package_folder(package: str) -> Path:
    """Where an installed package lives, found without importing it (the wrappers' imports have side effects)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError(f"the {package} package is missing: run `pip install -e '.[dev]'` (./ops/run does it)")
    return Path(next(iter(spec.submodule_search_locations)))


def scratch_folder(prefix: str = "renfort-scratch-") -> Path:
    """A new empty folder for a throwaway server, which the caller removes (shutil.rmtree) when done.

    Prefer it to pytest's tmp_path when running as root: the server then runs as `nobody`, and every pytest session
    that starts resets /tmp/pytest-of-root to 0700, cutting a concurrent run's `nobody` off from its data folder.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it), for throwaway test instances."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.25) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def process_name(pid: int) -> str | None:
    """The command name of a live process, None when it is gone or only a zombie is left.

    Zombies count as gone: daemons are re-parented to PID 1, which in some containers reaps late or never.
    """
    if not HAS_PROC:
        return _name_without_proc(pid)
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = stat_line[stat_line.index("(") + 1 : stat_line.rindex(")")]
    return None if _all_threads_exited(pid) else name


def _all_threads_exited(pid: int) -> bool:
    # A killed process keeps its sockets until its last thread is gone, even once its main thread is a zombie.
    for task_stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = task_stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def _name_without_proc(pid: int) -> str | None:
    # Without /proc (macOS), a signal-0 probe still tells alive from dead, though not what runs.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def is_alive(pid: int, expected_name: str) -> bool:
    """True when pid runs `expected_name`, so a stale pid file whose pid was reused does not fool us."""
    name = process_name(pid)
    return name is not None and (name == "" or name.startswith(expected_name[:15]))


def processes_in(folder: Path) -> list[int]:
    """Live processes whose working directory is `folder`: a server and all its children, even orphaned ones."""
    folder = folder.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if entry.readlink() == folder and process_name(int(entry.parent.name)) is not None:
                found.append(int(entry.parent.name))
        except OSError:
            continue
    return found


def kill_and_wait(pids: list[int], timeout: float = 10.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if not wait_until(lambda: all(process_name(pid) is None for pid in pids), timeout):
        raise ServiceError(f"processes {pids} survived SIGKILL for {timeout}s")


def is_zombie(pid: int) -> bool:
    return HAS_PROC and Path(f"/proc/{pid}").exists() and process_name(pid) is None


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {log_file})"


def unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) to run a server as when we are root, None otherwise.

    PostgreSQL refuses to run as root, and CI runs everything as root: drop to `nobody` for the server only.
    """
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam("nobody")
    try:
        gid = grp.getgrnam("nogroup").gr_gid
    except KeyError:
        gid = user.pw_gid
    return user.pw_uid, gid


def ensure_traversable(path: Path) -> None:
    """Let the unprivileged user walk down to `path` by adding o+x to ancestors that lack it.

    Only traversal is granted (no listing), and only when running as root; pytest's tmp folders and a clone
    under /root are 0700, which would otherwise hide the data folder or the server binaries from `nobody`.
    """
    for folder in reversed(path.absolute().parents):
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.info("granting o+x on %s so the unprivileged server user can reach %s", folder, path)
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
