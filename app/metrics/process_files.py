"""Where the web processes of one server run keep their counters, so that a scrape, which reaches one process,
reports the sum over all of them (prometheus_client's multiprocess mode: one file per process, summed at scrape).

granian's master starts (and restarts) the worker processes but never runs application code, so each worker
finds its run's folder by its parent: `<base>/<boot>-<master pid>-<master start time>/`. The workers of a run
share it; a worker that dies leaves its file there, so its counts stay in the sums until the run ends; a new run
(a new master) gets a new folder, and the first worker to start removes the folders of runs whose master is gone,
so nothing from a previous run is ever summed in. A process started on its own (tests, one uvicorn) is its own
run. No gauge is kept in these files: what a scrape reports as a level (queue depths, memory) is read live from
Redis and PostgreSQL by the process that answers it (app/metrics/figures.py).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from prometheus_client import values

log = logging.getLogger("renfort.metrics")
_prepared: dict[int, Path] = {}  # by pid: a forked child prepares its own
# A run folder's name (run_name): only such folders are ever removed, whatever else PROMETHEUS_MULTIPROC_DIR holds.
RUN_FOLDER = re.compile(r"(?:[0-9a-f]{8}|boot)-\d+-\d+")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "boot"


def _start_time(pid: int) -> str | None:
    """The process's start (clock ticks since boot), which a reused pid does not share; None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "0"
    return stat.rpartition(")")[2].split()[19]  # field 22, counted after the command name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_name(pid: int) -> str | None:
    if not Path("/proc").is_dir():  # not Linux: the pid alone, checked with a signal
        return f"{_boot_id()}-{pid}-0" if _alive(pid) else None
    started = _start_time(pid)
    return None if started is None else f"{_boot_id()}-{pid}-{started}"


def _server_pid() -> int:
    # A worker started by multiprocessing (granian, uvicorn --workers) belongs to its parent's run.
    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()


def _remove_finished_runs(base: Path, current: str) -> None:
    for folder in base.iterdir():
        if folder.name == current or not RUN_FOLDER.fullmatch(folder.name) or not folder.is_dir():
            continue
        boot, _, rest = folder.name.partition("-")
        pid = rest.partition("-")[0]
        if boot == current.partition("-")[0] and run_name(int(pid)) == folder.name:
            continue  # another server's run, still going
        shutil.rmtree(folder, ignore_errors=True)


def private_root(root: Path) -> Path:
    """The default root, in the shared temporary folder: this user's own, mode 700. Refused when someone else made it
    or it is a link: another local user could then read or change the counts, or point the clean-up elsewhere."""
    with contextlib.suppress(FileExistsError):
        root.mkdir(mode=0o700)
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(f"{root} is not a folder of this user's own: remove it, or set PROMETHEUS_MULTIPROC_DIR")
    if stat.S_IMODE(info.st_mode) != 0o700:
        root.chmod(0o700)
    return root


def prepare(base: str) -> Path:
    """This process's run folder, created, with finished runs' folders removed; switches prometheus_client to
    multiprocess values. Idempotent per process."""
    pid = os.getpid()
    if pid in _prepared:
        return _prepared[pid]
    root = Path(base) if base else private_root(Path(tempfile.gettempdir()) / f"renfort-metrics-{os.getuid()}")
    server = _server_pid()
    name = run_name(server) or f"{_boot_id()}-{server}-0"
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        _remove_finished_runs(root, name)
    # Read by prometheus_client when it opens this process's file, at the first count.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    _prepared[pid] = folder
    return folder
