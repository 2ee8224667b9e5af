"""The fault benchmark: sign-ups and applications keep coming while web processes, workers, PostgreSQL and Redis
fail under them; at the end, every accepted write is looked for in PostgreSQL.

    python -m loadtests.bench_faults [--signup-rate 20] [--apply-rate 8] [--lease 5] [--phases a,b] [--keep]
    OPS_TOKEN=… python -m loadtests.bench_faults --host URL --database-url URL --redis-url URL
        (--state FILE | --web-pid PID --worker-pids PID,PID) [--apply-to ID,ID]
        [--allow-service-faults --postgres-dir DIR --redis-dir DIR]

Self-contained (the default):
1. Starts a throwaway PostgreSQL and Valkey (ops.services; AOF on, `maxmemory` small, `noeviction`), a mail sink,
   runs the Procfile's `release`, seeds published missions in SQL, starts `web` and two `worker` processes, and signs
   volunteers in through their e-mailed links (the applicants, and the people of the last phase).
2. Traffic for the whole run (loadtests.fault_traffic): unique sign-ups with an Idempotency-Key, and applications to
   missions with few places; every 202 receipt, 303 outcome, 503 (with Retry-After: allowed) and error is recorded
   under the phase it happened in.
3. The phases of PHASES, one after the other: a worker SIGKILLed mid-drain, a granian worker then the whole web
   server SIGKILLed under a burst of requests, PostgreSQL stopped, PostgreSQL slowed past the drain lease, Redis
   restarted (cleanly, then SIGKILLed), Redis full, accounts deleted while a repeat of their sign-up is queued.
4. The traffic stops; the queues drain (bounded); PostgreSQL and Redis are read for the tally (loadtests.fault_tally).

With --host, the same traffic and tally against a platform that is already running (what `./ops/run` serves, say).
Its e-mail addresses are `@rehearsal.invalid` under a prefix of the run's own (the platform mails none of them).
With the platform's ops token in OPS_TOKEN (the environment, never the command line, which every user can read) it
applies to missions it seeds for itself (or to --apply-to), signs its people in through the platform's rehearsal
endpoints, and purges the run at the end (unless --keep); without it, it only signs up. It injects only the faults
that need no ownership of the servers: a granian worker SIGKILLed (when granian respawns its workers, or the manager
restarts the web), the whole web server and a worker SIGKILLed (when the manager restarts them: its state file lists
them under `restarts`), and, with --allow-service-faults and local throwaway servers named by their data folders,
PostgreSQL and Redis stopped, slowed or filled. Whatever cannot run is listed under `skipped` with the reason.

Prints ONE JSON line on stdout; progress on stderr. Exits 1 when lost, duplicates, oversold, resurrected, stuck or
errors is not 0. Every process it starts is stopped on the way out; ≤ 10 minutes by default.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import re
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis import Redis
from redis.exceptions import OutOfMemoryError, RedisError

from loadtests.bench_missions import (
    Postgres,
    Volunteer,
    ask_links,
    confirm_links,
    seed,
    sign_up,
    view_missions,
    wait_for_links,
)
from loadtests.bench_signups import Platform, start_platform
from loadtests.fault_tally import (
    APPLICATIONS,
    SIGNUPS,
    dead_letter_counts,
    failed,
    queued,
    summary,
    tally_applications,
    tally_signups,
    text,
)
from loadtests.fault_traffic import Applicant, ApplyLoad, Background, Erasures, Ledger, SignupLoad
from loadtests.harness import Process, descendants, free_port, log, loopback, parent_of, run_benchmark, wait_http
from ops.postgres import LocalPostgres
from ops.processes import process_name
from ops.valkey import LocalRedis

FILLER = "bench:filler:"  # the benchmark's own keys, never the platform's
FILLER_BYTES = 256 * 1024
REHEARSAL_DOMAIN = "rehearsal.invalid"  # what a running platform knows as rehearsal traffic
FILLABLE_BYTES = 256 * 2**20  # a running platform's Redis is filled only when its maxmemory is at most this
# A burst: unpaced requests from this many clients for this long, the kill coming BURST_LEAD_S into it.
# At most BURST_PAIRS applications per burst, so that the later phases still have pairs left to apply with.
BURST_SIGNUP_CLIENTS, BURST_APPLY_CLIENTS, BURST_PAIRS, BURST_S, BURST_LEAD_S = 16, 4, 30, 2.0, 0.5
CRASH_LOOP_S = 6  # granian exits when a worker it respawned dies again within 5.5 s
HOSTED_PLACES = 10  # places of each mission a run seeds on a running platform: few, so that the rush oversubscribes


def healthy(base: str, timeout: float) -> bool:
    """Waits until `base`/health answers 200; False when it did not within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(httpx.HTTPError):
            if httpx.get(base + "/health", timeout=2, trust_env=False).status_code == 200:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def alive(pid: int | None) -> bool:
    return pid is not None and process_name(pid) is not None  # a zombie counts as gone


def granian_workers(pid: int) -> list[int]:
    """The worker processes of a granian server: its direct children."""
    children = []
    for child, _ in descendants(pid):
        with suppress(OSError, IndexError, ValueError):
            if parent_of(child) == pid:
                children.append(child)
    return children


def granian_respawns(pid: int) -> bool:
    """Whether this granian server starts a worker that died again (else it exits, and needs a manager)."""
    with suppress(OSError):
        return b"--respawn-failed-workers" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    return False


def settled(pid: int, workers: int, timeout: float = 10) -> bool:
    """After one of its workers was killed: True once the granian server has all its workers again (it respawned
    it), False once it exited (or is still shutting down after `timeout`)."""
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        if len(granian_workers(pid)) >= workers:
            return True
        time.sleep(0.1)
    return False


def kill_tree(pid: int) -> None:
    """SIGKILL a process the benchmark did not start and everything below it (an RQ work horse leaves the group)."""
    for target in [pid, *(child for child, _ in descendants(pid))]:
        with suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)


class Workers:
    """The `worker` processes; one that exits is started again, as a platform's process manager would."""

    def __init__(self, stack: ExitStack, platform: Platform, count: int) -> None:
        self.stack, self.platform = stack, platform
        self.starts = [0] * count
        self.processes: list[Process] = [self._spawn(index) for index in range(count)]
        self.exits = 0

    def _spawn(self, index: int) -> Process:
        self.starts[index] += 1
        name = f"worker-{index + 1}.{self.starts[index]}"
        process = Process(name, self.platform.kinds["worker"], self.platform.env, self.platform.logs / f"{name}.log")
        self.stack.callback(process.stop)
        return process

    def kill(self, index: int) -> None:
        self.processes[index].kill()

    def restart(self, index: int) -> None:
        self.processes[index] = self._spawn(index)

    def revive(self) -> int:
        """Starts again the workers that exited on their own; returns how many."""
        dead = [index for index, process in enumerate(self.processes) if not process.alive()]
        for index in dead:
            log(f"{self.processes[index].name} exited:\n{self.processes[index].tail(10)}")
            self.restart(index)
        self.exits += len(dead)
        return len(dead)

    def index_of(self, pid: int) -> int | None:
        return next((index for index, process in enumerate(self.processes) if process.pid == pid), None)


class OwnedPlatform:
    """The benchmark's own web and workers: it kills them and, as a process manager would, starts them again."""

    web_restarts = worker_restarts = True

    def __init__(self, stack: ExitStack, platform: Platform, workers: int) -> None:
        self.stack, self.platform = stack, platform
        self.base = f"http://127.0.0.1:{free_port()}"
        self.starts = 0
        self.web = self._start_web()
        self.workers = Workers(stack, platform, workers)

    def _start_web(self) -> Process:
        self.starts += 1
        env = {**self.platform.env, "LOG_LEVEL": "WARNING", "PORT": str(urlsplit(self.base).port)}
        process = Process(f"web.{self.starts}", loopback(self.platform.kinds["web"]), env,
                          self.platform.logs / f"web.{self.starts}.log")
        self.stack.callback(process.stop)
        wait_http(f"{self.base}/health", process)
        return process

    @property
    def web_starts(self) -> int:
        return self.starts - 1

    @property
    def exits(self) -> int:
        return self.workers.exits

    def web_pid(self) -> int | None:
        return self.web.pid if self.web.alive() else None

    def kill_web(self) -> None:
        self.web.kill()

    def web_back(self, old: int, timeout: float) -> bool:
        """Once the old server is gone, starts it again; True once it answers."""
        deadline = time.monotonic() + 15
        while self.web.alive() and time.monotonic() < deadline:  # granian stops its other workers first
            time.sleep(0.1)
        if self.web.alive():
            self.web.kill()  # still shutting down: a manager would not wait longer either
        log(f"{self.web.name} exited; starting it again:\n{self.web.tail(5)}")
        self.web = self._start_web()
        return healthy(self.base, timeout)

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self.workers.processes if process.alive()]

    def kill_worker(self, pid: int) -> None:
        self.workers.kill(self._index(pid))

    def worker_back(self, pid: int, timeout: float) -> bool:
        time.sleep(3)
        self.workers.restart(self._index(pid))
        return True

    def _index(self, pid: int) -> int:
        index = self.workers.index_of(pid)
        if index is None:
            raise RuntimeError(f"pid {pid} is none of the benchmark's workers")
        return index

    def revive(self) -> int:
        return self.workers.revive()

    def check(self) -> None:
        if not self.web.alive():
            raise RuntimeError(f"the web process exited:\n{self.web.tail()}")


class HostedPlatform:
    """A running platform's web and workers, found through its manager's state file (read again each time: a manager
    gives a process it restarts a new pid) or given on the command line (then nothing restarts them).

    The state file is JSON: {"restarts": ["web", "worker"], "processes": {"web": 2345, "worker": 3456}}: the Procfile
    name of each process (a suffix tells several apart: "worker.2"), the pid the manager started, and the names the
    manager starts again when they exit.
    """

    def __init__(self, base: str, state: Path | None, web_pid: int | None, worker_pids: list[int]) -> None:
        self.base, self.state = base, state
        self.given = {"web": web_pid, **{f"worker.{number}": pid for number, pid in enumerate(worker_pids, 1)}}
        self.killed: set[int] = set()
        self.before_kill: set[int] = set()
        self.seen = self._processes()
        self.exits = self.web_starts = 0

    def _read(self) -> dict[str, Any]:
        if self.state is None:
            return {"restarts": [], "processes": {name: pid for name, pid in self.given.items() if pid}}
        for _ in range(10):  # a manager may be rewriting it
            with suppress(ValueError, OSError):
                state = json.loads(self.state.read_text())
                if isinstance(state, dict):
                    return state
            time.sleep(0.1)
        raise RuntimeError(f"{self.state}: not a platform state file (JSON with `processes`)")

    def _processes(self) -> dict[str, int]:
        return {str(name): int(pid) for name, pid in (self._read().get("processes") or {}).items()}

    def _restarts(self, kind: str) -> bool:
        return kind in {kind_of(name) for name in self._read().get("restarts") or []}

    @property
    def web_restarts(self) -> bool:
        return self._restarts("web")

    @property
    def worker_restarts(self) -> bool:
        return self._restarts("worker")

    def _live(self, kind: str) -> list[int]:
        return [pid for name, pid in sorted(self._processes().items()) if kind_of(name) == kind and alive(pid)]

    def web_pid(self) -> int | None:
        return next(iter(self._live("web")), None)

    def kill_web(self) -> None:
        pid = self.web_pid()
        if pid is not None:
            self.killed.add(pid)
            kill_tree(pid)

    def web_back(self, old: int, timeout: float) -> bool:
        """Waits for the manager to start the web again in place of `old`; True once it answers."""
        deadline = time.monotonic() + timeout
        while self.web_pid() in (None, old) and time.monotonic() < deadline:
            time.sleep(0.2)
        return healthy(self.base, max(1.0, deadline - time.monotonic()))

    def worker_pids(self) -> list[int]:
        return self._live("worker")

    def kill_worker(self, pid: int) -> None:
        self.killed.add(pid)
        self.before_kill = set(self.worker_pids())
        kill_tree(pid)

    def worker_back(self, pid: int, timeout: float) -> bool:
        """Waits for the manager to start a worker in place of `pid`: a live worker pid it did not list before."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.worker_pids()) - self.before_kill:
                return True
            time.sleep(0.2)
        return False

    def revive(self) -> int:
        """The workers that exited on their own (the manager started them again) since the last look."""
        now = self._processes()
        changed = [name for name, pid in now.items() if self.seen.get(name, pid) != pid]
        exits = sum(1 for name in changed if kind_of(name) == "worker" and self.seen[name] not in self.killed)
        self.exits += exits
        self.web_starts += sum(1 for name in changed if kind_of(name) == "web")
        self.seen = now
        return exits

    def check(self) -> None:
        if not healthy(self.base, 30):
            raise RuntimeError(f"{self.base}/health does not answer 200 any more")


def kind_of(name: str) -> str:
    """"worker.2" → "worker": the Procfile name a process runs."""
    match = re.match(r"[a-z]+", name)
    return match[0] if match else name


@dataclass
class Loads:
    signups: SignupLoad
    applying: ApplyLoad | None
    stop: asyncio.Event


@dataclass
class Run:
    """Everything the phases act on."""

    args: argparse.Namespace
    tmp: Path
    control: OwnedPlatform | HostedPlatform
    database_url: str
    redis_url: str
    traffic: Background
    ledger: Ledger
    name: str  # the run's e-mail prefix
    domain: str
    mail_dir: Path | None  # where sign-in e-mails land (the benchmark's own mail sink)
    postgres: LocalPostgres | None = None  # set when the benchmark may stop and start it
    redis_server: LocalRedis | None = None
    redis_limit: str | None = None  # the maxmemory set again after each Redis restart (the benchmark's own Redis)
    missions: list[int] = field(default_factory=list)
    deletable: list[tuple[str, Applicant]] = field(default_factory=list)  # (e-mail, signed in) for the last phase
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    loads: Loads | None = None
    ops: RehearsalOps | None = None  # a running platform's rehearsal endpoints, when OPS_TOKEN is given

    @property
    def base(self) -> str:
        return self.control.base

    def redis(self) -> Redis:
        return Redis.from_url(self.redis_url, socket_timeout=5)

    def volunteer_rows(self) -> int | None:
        """Rows in `volunteers` now, or None while PostgreSQL does not answer."""
        try:
            db = Postgres(self.database_url)
        except (OSError, asyncpg.PostgresError):
            return None
        try:
            return int(db.scalar("SELECT count(*) FROM volunteers"))
        finally:
            db.close()

    @contextmanager
    def burst(self) -> Iterator[dict[str, Any]]:
        """Unpaced sign-ups and applications for a moment, the body of the `with` running BURST_LEAD_S into it (a
        kill); the burst's figures (requests sent) are filled in once every request of it is answered."""
        assert self.loads is not None
        loads, figures = self.loads, dict[str, Any]()
        futures = {"signups": self.traffic.start(loads.signups.burst(loads.stop, clients=BURST_SIGNUP_CLIENTS,
                                                                     seconds=BURST_S))}
        if loads.applying is not None:
            futures["applications"] = self.traffic.start(loads.applying.burst(
                loads.stop, clients=BURST_APPLY_CLIENTS, seconds=BURST_S, pairs=BURST_PAIRS))
        time.sleep(BURST_LEAD_S)
        yield figures
        for key, future in futures.items():
            try:
                figures[key] = future.result(timeout=90)
            except concurrent.futures.TimeoutError:
                future.cancel()
                self.ledger.error(self.ledger.phase, f"{key} burst", "not answered within 90 s")


def tune_redis(url: str, maxmemory: str) -> None:
    """The limits of a small managed Redis; set again after each restart (the server starts from its command line)."""
    with Redis.from_url(url, socket_timeout=5) as redis:
        redis.config_set("maxmemory", maxmemory)
        redis.config_set("maxmemory-policy", "noeviction")
        redis.config_set("appendonly", "yes")


def consumer_parents(redis: Redis) -> list[int]:
    """The parent pids of the drain consumers holding a batch now: a consumer's name carries its pid, that of an RQ
    work horse, whose parent is the `worker` process."""
    parents = []
    for prefix in (SIGNUPS, APPLICATIONS):
        for member in redis.smembers(prefix + "consumers"):
            with suppress(IndexError, ValueError, OSError):
                parents.append(parent_of(int(text(member).rsplit("-", 2)[1])))
    return parents


# Phases ----------------------------------------------------------------------------------------------------------


def steady(run: Run) -> dict[str, Any]:
    time.sleep(run.args.steady)
    return {}


def kill_worker(run: Run) -> dict[str, Any]:
    """SIGKILL one worker (its work horse included) while it holds a drain batch, then start it again."""
    control, victim, mid_drain = run.control, None, False
    deadline = time.monotonic() + 15
    with run.redis() as redis:
        while time.monotonic() < deadline and not mid_drain:
            workers = control.worker_pids()
            victim = next((parent for parent in consumer_parents(redis) if parent in workers), None)
            mid_drain = victim is not None
            time.sleep(0.01)
    workers = control.worker_pids()
    if not workers:
        raise RuntimeError("no worker process left to kill")
    victim = victim if victim in workers else workers[0]
    control.kill_worker(victim)
    restarted = control.worker_back(victim, timeout=60)
    time.sleep(run.args.lease + 2)
    return {"worker": workers.index(victim) + 1, "mid_drain": mid_drain, "restarted": restarted}


def kill_web(run: Run) -> dict[str, Any]:
    """SIGKILL one granian worker, then the whole web server, each while a burst of requests is in flight. Granian
    starts its worker again or exits; whatever exits is started again (by the benchmark, or the platform's manager),
    and every request the dead process never answered is sent again."""
    control = run.control
    pid = control.web_pid()
    if pid is None:
        raise RuntimeError("the web process is not running")
    workers = granian_workers(pid)
    if not workers:
        raise RuntimeError(f"the web process {pid} has no worker processes: is it granian?")
    figures: dict[str, Any] = {"granian_workers": len(workers), "granian_respawns": granian_respawns(pid)}
    with run.burst() as burst:
        with suppress(ProcessLookupError):
            os.kill(workers[0], signal.SIGKILL)
        down = time.monotonic()
        figures["granian_respawned"] = settled(pid, len(workers))
        if not figures["granian_respawned"]:  # granian exits when one of its workers dies, unless told to respawn
            figures["web_back"] = control.web_back(pid, timeout=60)
            figures["web_down_s"] = round(time.monotonic() - down, 2)
    figures["granian_worker_burst"] = burst
    time.sleep(CRASH_LOOP_S)
    pid = control.web_pid()
    if not control.web_restarts or pid is None:
        figures["server_killed"] = "skipped: nothing restarts the web server"
        return figures
    with run.burst() as burst:
        control.kill_web()
        down = time.monotonic()
        figures["server_back"] = control.web_back(pid, timeout=60)
        figures["server_down_s"] = round(time.monotonic() - down, 2)
    figures["server_burst"] = burst
    time.sleep(5)
    return figures


def stop_postgres(run: Run) -> dict[str, Any]:
    assert run.postgres is not None
    run.postgres.stop("fast")
    time.sleep(run.args.outage)
    run.postgres.start()
    time.sleep(5)
    return {"down_s": run.args.outage}


def slow_postgres(run: Run) -> dict[str, Any]:
    """A side connection holds ACCESS EXCLUSIVE on `volunteers` for three leases: every drain write waits past its
    lease, so another consumer may take the batch over while the first still holds it."""
    hold = 3 * run.args.lease
    lock = Postgres(run.database_url)
    consumers = 0
    try:
        lock.execute("SET lock_timeout = '10s'")
        lock.execute("BEGIN")
        lock.execute("LOCK TABLE volunteers IN ACCESS EXCLUSIVE MODE")
        deadline = time.monotonic() + hold
        with run.redis() as redis:
            while time.monotonic() < deadline:
                consumers = max(consumers, int(redis.scard(SIGNUPS + "consumers")))
                time.sleep(0.5)
        lock.execute("COMMIT")
    finally:
        lock.close()
    time.sleep(5)
    return {"locked_s": hold, "lease_s": run.args.lease, "signup_consumers_max": consumers}


def restart_redis(run: Run) -> dict[str, Any]:
    """SHUTDOWN and start; then, with `appendfsync always`, SIGKILL and start (it comes back from its AOF)."""
    server = run.redis_server
    assert server is not None

    def restart(stop: Callable[[], None]) -> float:
        started = time.monotonic()
        stop()
        server.start()
        if run.redis_limit is not None:
            tune_redis(run.redis_url, run.redis_limit)
        time.sleep(5)
        return round(time.monotonic() - started - 5, 2)

    clean_s = restart(server.stop)
    with run.redis() as redis:
        redis.config_set("appendfsync", "always")
    time.sleep(3)
    return {"clean_restart_s": clean_s, "kill_restart_s": restart(server.kill)}


def fill_redis(run: Run) -> dict[str, Any]:
    """A side client writes filler keys until Redis refuses them (OOM), keeps it full for a while, then deletes them.
    Sign-ups must get 503 + Retry-After meanwhile, and the queue keep draining."""
    value = b"\0" * FILLER_BYTES
    written, full = 0, False

    def top_up(redis: Redis) -> bool:
        nonlocal written
        try:
            redis.set(f"{FILLER}{written}", value)
        except OutOfMemoryError:
            return False
        written += 1
        return True

    with run.redis() as redis:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not full:
            full = not top_up(redis)
        rows_before, depth_before = run.volunteer_rows(), redis.llen(SIGNUPS + "pending")
        deadline = time.monotonic() + run.args.full_seconds
        while time.monotonic() < deadline:  # whatever a drain frees is taken again: Redis stays at its limit
            top_up(redis)
            time.sleep(0.2)
        rows_after, depth_after = run.volunteer_rows(), redis.llen(SIGNUPS + "pending")
        used_mb = int(redis.info("memory")["used_memory"]) / 2**20
        for start in range(0, written, 100):
            redis.delete(*(f"{FILLER}{number}" for number in range(start, min(written, start + 100))))
    time.sleep(5)
    saved = rows_after - rows_before if rows_after is not None and rows_before is not None else None
    return {"reached_limit": full, "filler_mb": round(written * FILLER_BYTES / 2**20, 1),
            "used_mb_while_full": round(used_mb, 1), "full_s": run.args.full_seconds,
            "rows_saved_while_full": saved, "pending_before": depth_before, "pending_after": depth_after}


def delete_accounts(run: Run) -> dict[str, Any]:
    """Signed-in people apply, sign up again (a queued repeat), then delete their account at once."""
    erasures = Erasures(run.deletable, run.ledger, mission=next(iter(run.missions), None), seed=run.args.seed + 3)
    try:
        outcomes = run.traffic.run(erasures(4, per_person=60), timeout=120)
    except RuntimeError as error:  # counted, so the run still ends with its tally
        run.ledger.error(run.ledger.phase, "erasure", str(error))
        outcomes = {}
    time.sleep(3)
    return {"people": outcomes}


# name → what it does; each phase's recovery is part of it, so its answers include the way back.
PHASES: dict[str, Callable[[Run], dict[str, Any]]] = {
    "steady": steady,
    "worker_killed": kill_worker,
    "web_killed": kill_web,
    "postgres_stopped": stop_postgres,
    "postgres_slow": slow_postgres,
    "redis_restarted": restart_redis,
    "redis_full": fill_redis,
    "accounts_deleted": delete_accounts,
}
UNANSWERED_PHASES = {"web_killed"}  # a request the killed process never answered is allowed there, and sent again


@dataclass(frozen=True)
class Abilities:
    """What the benchmark may do to the platform it runs against."""

    workers: bool = True  # a worker pid is known
    worker_restarts: bool = True
    granian_respawns: bool = True
    web_restarts: bool = True
    service_faults: bool = True  # --allow-service-faults (always, on the benchmark's own servers)
    postgres_server: bool = True  # a PostgreSQL it can stop and start
    redis_server: bool = True
    redis_fillable: bool = True  # a maxmemory small enough to fill
    signed_in: bool = True  # volunteers could sign in (through their e-mailed links)


def plan(wanted: list[str], can: Abilities) -> tuple[list[str], dict[str, str]]:
    """The phases that run, in PHASES order, and why each other wanted one does not."""
    reasons: dict[str, str] = {}
    if not can.workers:
        reasons["worker_killed"] = "no worker pid known (--state or --worker-pids)"
    elif not can.worker_restarts:
        reasons["worker_killed"] = "nothing restarts a killed worker (the state lists no `worker` under `restarts`)"
    if not (can.granian_respawns or can.web_restarts):
        reasons["web_killed"] = ("granian runs without --respawn-failed-workers and nothing restarts the web: "
                                 "killing any of its processes would stop the platform")
    if not can.service_faults:
        for name in ("postgres_stopped", "postgres_slow", "redis_restarted", "redis_full"):
            reasons[name] = "needs --allow-service-faults (local throwaway servers only)"
    else:
        if not can.postgres_server:
            reasons["postgres_stopped"] = "needs --postgres-dir, the data folder of the PostgreSQL of --database-url"
        if not can.redis_server:
            reasons["redis_restarted"] = "needs --redis-dir, the data folder of the local Redis of --redis-url"
        if not can.redis_fillable:
            reasons["redis_full"] = f"Redis has no maxmemory of at most {FILLABLE_BYTES // 2**20} MB to fill"
    if not can.signed_in:
        reasons["accounts_deleted"] = "no volunteer could sign in (set OPS_TOKEN: rehearsal addresses get no e-mail)"
    chosen = [name for name in PHASES if name in wanted and name not in reasons]
    return chosen, {name: reasons[name] for name in PHASES if name in wanted and name in reasons}


# Set-up ----------------------------------------------------------------------------------------------------------


def port_of(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise RuntimeError(f"no port in {url}")
    return port


class RehearsalOps:
    """A running platform's rehearsal endpoints (app/rehearsal, behind OPS_TOKEN): missions of the run's own, the
    sign-in links of its `@rehearsal.invalid` people (who get no e-mail), and the purge of everything the run left."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(base_url=base + "/ops/rehearsal/", timeout=60, trust_env=False,
                                 headers={"Authorization": f"Bearer {token}"})
        self.purged: dict[str, int] | None = None

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"/ops/rehearsal/{path} answered {response.status_code}: {response.text[:300]}")
        answer = response.json()
        assert isinstance(answer, dict)
        return answer

    def seed(self, run: str, missions: int, places: int) -> list[int]:
        seeded = self._post("seed", {"run": run, "missions": missions, "places": places})
        return sorted(int(mission) for mission in seeded["mission_ids"])

    def links(self, volunteers: list[Volunteer]) -> None:
        for start in range(0, len(volunteers), 200):
            chunk = volunteers[start:start + 200]
            links = self._post("links", {"emails": [volunteer.email for volunteer in chunk]})["links"]
            for volunteer in chunk:
                if not links.get(volunteer.email):
                    raise RuntimeError("no sign-in link for a volunteer whose sign-up is saved")
                volunteer.token = str(links[volunteer.email])

    def purge(self, run: str) -> dict[str, int]:
        """Every trace of the run (its people, missions, organisation), in rounds until none is left; once."""
        if self.purged is None:
            total: dict[str, int] = {}
            for _ in range(100):
                outcome = self._post("purge", {"run": run})
                for key, value in outcome.items():
                    total[key] = int(value) if key == "remaining" else total.get(key, 0) + int(value)
                if not outcome.get("remaining"):
                    break
            self.purged = total
            log(f"purge of {run}: {total}")
        return self.purged

    def purge_quietly(self, run: str) -> None:
        """On the way out of a run that failed: purge, and say so if even that fails."""
        try:
            self.purge(run)
        except (RuntimeError, httpx.HTTPError) as error:
            log(f"purge of {run} failed ({error}): run `python -m app.rehearsal purge --run {run}` on the platform")
        finally:
            self.http.close()


def sign_in(run: Run, db: Postgres, prefix: str, count: int) -> list[tuple[str, Applicant]]:
    """Volunteers sign up over the API, the workers save them, each signs in through its link: e-mailed (the
    benchmark's own platform) or given by the rehearsal endpoint (a running platform)."""
    rng = random.Random(run.args.seed + 1)
    volunteers = [Volunteer(f"{run.name}.{prefix}{number}@{run.domain}",
                            httpx.AsyncClient(base_url=run.base, timeout=10, trust_env=False))
                  for number in range(count)]
    run.traffic.run(sign_up(volunteers, rng, 16), timeout=120)
    sql = f"SELECT count(*) FROM volunteers WHERE email_normalized LIKE '{run.name}.{prefix}%'"  # noqa: S608 - ours
    deadline = time.monotonic() + 120
    while int(db.scalar(sql)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not every sign-up of {count} volunteers reached PostgreSQL within 120 s")
        time.sleep(0.2)
    if run.ops is not None:
        run.ops.links(volunteers)
    elif run.mail_dir is not None:
        run.traffic.run(ask_links(volunteers, 16), timeout=120)
        wait_for_links(run.mail_dir, volunteers, timeout=120)
    else:
        raise RuntimeError("no way to sign volunteers in: set OPS_TOKEN (the platform's rehearsal endpoints)")
    run.traffic.run(confirm_links(volunteers, 16), timeout=120)
    ids = {row["email_normalized"]: int(row["id"]) for row in db.fetch(
        "SELECT id, email_normalized FROM volunteers WHERE email_normalized LIKE $1", f"{run.name}.{prefix}%")}
    return [(volunteer.email, Applicant(ids[volunteer.email], volunteer.client)) for volunteer in volunteers]


def start_owned(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> tuple[Run, list[Applicant], Abilities]:
    args.mail_sink = True  # sign-in links are read from it
    platform = start_platform(stack, tmp, args)
    platform.env.update(DRAIN_LEASE_SECONDS=str(args.lease), SIGNIN_IP_LIMIT_PER_MINUTE="0", LOG_LEVEL="INFO")
    tune_redis(platform.redis_url, args.redis_maxmemory)
    db = Postgres(platform.database_url)
    stack.callback(db.close)
    seed(db, argparse.Namespace(seed=args.seed, missions=args.missions, rush_missions=0))
    missions = [int(row["id"]) for row in db.fetch(
        "SELECT id FROM missions WHERE places <= 15 ORDER BY id LIMIT $1", args.apply_missions)]
    control = OwnedPlatform(stack, platform, 2)
    traffic = Background()
    stack.callback(traffic.close)
    run = Run(args, tmp, control, platform.database_url, platform.redis_url, traffic, Ledger(), run_name(),
              "example.org", tmp / "mail", missions=missions, redis_limit=args.redis_maxmemory,
              # Handles on the servers start_platform started (same folder, same port), to stop, kill and start them.
              postgres=LocalPostgres(tmp / "postgres", port_of(platform.database_url)),
              redis_server=LocalRedis(tmp / "redis", port_of(platform.redis_url)))
    applicants = [applicant for _, applicant in sign_in(run, db, "a", args.applicants)]
    # Signed in now, while mail is quick: under the traffic, a sign-in e-mail waits behind every welcome e-mail.
    run.deletable = sign_in(run, db, "d", args.deletions)
    view_missions(run.base, missions)
    log(f"set-up: {len(missions)} missions with few places, {len(applicants)} applicants and "
        f"{len(run.deletable)} people to delete signed in")
    return run, applicants, Abilities()


def run_name() -> str:
    """The run's e-mail prefix: its rows are told apart from any other's by it, on a platform that outlives the run."""
    return f"bf-{secrets.token_hex(4)}"


def local_server(url: str, folder: Path | None, pid_file: str) -> bool:
    """A server the benchmark may stop and start: on loopback, its data folder given and its pid file there."""
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1") and folder is not None and (
        folder / pid_file).exists()


def redis_fillable(url: str) -> bool:
    with Redis.from_url(url, socket_timeout=5) as redis:
        limit = int(redis.config_get("maxmemory").get("maxmemory", 0))
    return 0 < limit <= FILLABLE_BYTES


def start_hosted(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> tuple[Run, list[Applicant], Abilities]:
    base = args.host.rstrip("/")
    if not healthy(base, 10):
        raise RuntimeError(f"{base}/health does not answer 200: is the platform running?")
    if not (args.database_url and args.redis_url):
        raise RuntimeError("--host needs --database-url and --redis-url (or DATABASE_URL and REDIS_URL) for the tally")
    control = HostedPlatform(base, args.state, args.web_pid, args.worker_pids)
    web = control.web_pid()
    if web is None:
        raise RuntimeError("no live web process: give --state (the manager's state file) or --web-pid")
    traffic = Background()
    stack.callback(traffic.close)
    service_faults = bool(args.allow_service_faults)
    run = Run(args, tmp, control, args.database_url, args.redis_url, traffic, Ledger(), run_name(), REHEARSAL_DOMAIN,
              None)
    token = os.environ.get("OPS_TOKEN")
    if token:
        run.ops = RehearsalOps(base, token)
        if not args.keep:  # a rehearsal leaves nothing behind, even when it fails half-way
            stack.callback(run.ops.purge_quietly, run.name)
    else:
        log("OPS_TOKEN is not set: sign-ups only (rehearsal people sign in through the platform's ops endpoints)")
    if service_faults and local_server(args.database_url, args.postgres_dir, "postmaster.pid"):
        run.postgres = LocalPostgres(args.postgres_dir, port_of(args.database_url))
    if service_faults and local_server(args.redis_url, args.redis_dir, "valkey.pid"):
        run.redis_server = LocalRedis(args.redis_dir, port_of(args.redis_url))
    db = Postgres(args.database_url)
    stack.callback(db.close)
    if args.apply_to:
        wanted = sorted(set(args.apply_to))
        found = db.fetch("SELECT id FROM missions WHERE id = ANY($1) AND status = 'published'", wanted)
        if len(found) != len(wanted):
            raise RuntimeError(f"--apply-to: {len(found)} of the {len(wanted)} missions are published")
        run.missions = wanted
    elif run.ops is not None:  # missions of the run's own, so that no real mission's places are taken
        run.missions = run.ops.seed(run.name, min(args.apply_missions, 50), HOSTED_PLACES)
    applicants: list[Applicant] = []
    try:
        if run.missions:
            applicants = [applicant for _, applicant in sign_in(run, db, "a", args.applicants)]
    except (RuntimeError, httpx.HTTPError) as error:
        log(f"set-up: applicants could not sign in ({error}); no applications")
    try:
        run.deletable = sign_in(run, db, "d", args.deletions)
    except (RuntimeError, httpx.HTTPError) as error:
        log(f"set-up: the people to delete could not sign in ({error}); no account deletion")
    if applicants:
        view_missions(base, run.missions)
    can = Abilities(workers=bool(control.worker_pids()), worker_restarts=control.worker_restarts,
                    granian_respawns=granian_respawns(web), web_restarts=control.web_restarts,
                    service_faults=service_faults, postgres_server=run.postgres is not None,
                    redis_server=run.redis_server is not None,
                    redis_fillable=service_faults and redis_fillable(args.redis_url),
                    signed_in=bool(run.deletable))
    log(f"set-up: {base}, {len(run.missions)} missions, {len(applicants)} applicants and {len(run.deletable)} people "
        f"to delete signed in; {can}")
    return run, applicants, can


# Drain and tally -------------------------------------------------------------------------------------------------


def wait_drained(run: Run, budget: float) -> None:
    """Until both queues and their consumers are empty and the run's rows stopped changing for 2 s (at most
    `budget`); a worker that exits meanwhile is started again (or counted, on a running platform)."""
    deadline = time.monotonic() + budget
    last: tuple[int, int] | None = None
    since = time.monotonic()
    db = Postgres(run.database_url)
    try:
        with run.redis() as redis:
            while True:
                run.control.revive()
                now = time.monotonic()
                counts = (int(db.scalar("SELECT count(*) FROM volunteers WHERE email_normalized LIKE $1",
                                        run.name + ".%")),
                          int(db.scalar("SELECT count(*) FROM applications WHERE mission_id = ANY($1)",
                                        run.missions)))
                depth = queued(redis)
                if counts != last:
                    last, since = counts, now
                if depth == 0 and now - since >= 2:
                    return
                if now > deadline:
                    log(f"drain: gave up after {budget:.0f} s with {depth} records or consumers still queued")
                    return
                time.sleep(0.5)
    finally:
        db.close()


def tally(run: Run, seconds: float, skipped: dict[str, str]) -> dict[str, Any]:
    db = Postgres(run.database_url)
    try:
        with run.redis() as redis:
            signups = tally_signups(run.ledger, run.name, db, redis)
            applications = tally_applications(run.ledger, db, redis, run.missions)
            dead = dead_letter_counts(run.base, redis)
    finally:
        db.close()
    result = summary(run.ledger, signups, applications, dead, run.figures)
    result.update(seconds=round(seconds, 1), worker_exits=run.control.exits, web_restarts=run.control.web_starts,
                  phases=run.figures, skipped=skipped, mode="host" if run.args.host else "self-contained",
                  host=run.base if run.args.host else None, run=run.name)
    return result


# The benchmark ---------------------------------------------------------------------------------------------------


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    run, applicants, can = (start_hosted if args.host else start_owned)(stack, tmp, args)
    phases, skipped = plan(args.phases, can)
    for name, reason in skipped.items():
        log(f"phase {name} skipped: {reason}")
    run.ledger.unanswered_phases = UNANSWERED_PHASES
    stop = asyncio.Event()
    signups = SignupLoad(run.base, run.name, run.ledger, rate=args.signup_rate, clients=8, seed=args.seed + 2,
                         domain=run.domain)
    applying = ApplyLoad(applicants, run.missions, run.ledger, rate=args.apply_rate, clients=4,
                         seed=args.seed) if applicants else None
    run.loads = Loads(signups, applying, stop)
    loads = [run.traffic.start(signups(stop))]
    if applying is not None:
        loads.append(run.traffic.start(applying(stop)))

    def stop_traffic() -> None:
        run.traffic.loop.call_soon_threadsafe(stop.set)
        concurrent.futures.wait(loads, timeout=20)

    stack.callback(stop_traffic)
    run.control.revive()  # from here on, what a manager restarts is counted
    for name in phases:
        run.ledger.phase = name
        log(f"phase {name}")
        began = time.monotonic()
        figures = PHASES[name](run)
        figures["seconds"] = round(time.monotonic() - began, 1)
        figures["worker_exits"] = run.control.revive()
        run.control.check()
        run.figures[name] = figures
        # dict.copy runs in C, so it is safe while the traffic thread counts.
        answers, errors = dict.copy(run.ledger.answers[name]), dict.copy(run.ledger.errors[name])
        log(f"phase {name}: {figures}; answers {answers}; errors {errors}")
    run.ledger.phase = "drain"
    stop_traffic()
    for load in loads:
        load.result(timeout=1)  # a load that crashed is a benchmark bug: say so
    budget = max(10.0, args.budget - (time.monotonic() - started) - 20)
    log(f"drain: waiting at most {budget:.0f} s for the queues")
    wait_drained(run, budget)
    result = tally(run, time.monotonic() - started, skipped)
    if run.ops is not None and not args.keep:
        result["purged"] = run.ops.purge(run.name)
    return result


def ids(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part.strip()]


def phase_names(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [name for name in names if name not in PHASES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phases {unknown}; known: {', '.join(PHASES)}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signup-rate", type=float, default=20, help="sign-ups sent per second")
    parser.add_argument("--apply-rate", type=float, default=8, help="applications sent per second")
    parser.add_argument("--applicants", type=int, default=80, help="volunteers signed in to apply")
    parser.add_argument("--missions", type=int, default=100, help="published missions seeded")
    parser.add_argument("--apply-missions", type=int, default=30, help="missions with ≤ 15 places applied to")
    parser.add_argument("--deletions", type=int, default=16, help="accounts deleted in the last phase")
    parser.add_argument("--lease", type=int, help="DRAIN_LEASE_SECONDS of the platform: set to 5 on the benchmark's "
                        "own, the platform's default (30) with --host unless told")
    parser.add_argument("--outage", type=float, default=15, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--full-seconds", type=float, default=12, help="seconds Redis stays at its memory limit")
    parser.add_argument("--redis-maxmemory", default="96mb", help="Redis maxmemory (filled in the redis_full phase)")
    parser.add_argument("--steady", type=float, default=10, help="seconds of traffic before the first fault")
    parser.add_argument("--budget", type=float, default=570, help="seconds the whole run may take, drain included")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY of the web process")
    parser.add_argument("--phases", type=phase_names, default=list(PHASES), help="comma-separated subset of phases")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the missions and people")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data and every log)")
    hosted = parser.add_argument_group("a running platform (--host)")
    hosted.add_argument("--host", help="base URL of a running platform, e.g. http://127.0.0.1:8000")
    hosted.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="its PostgreSQL (tally)")
    hosted.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="its Redis (queues, tally)")
    hosted.add_argument("--state", type=Path, help="its manager's state file (pids, what it restarts)")
    hosted.add_argument("--web-pid", type=int, help="without --state: the granian server's pid")
    hosted.add_argument("--worker-pids", type=ids, default=[], help="without --state: the workers' pids")
    hosted.add_argument("--apply-to", type=ids, default=[],
                        help="published missions to apply to (default, with OPS_TOKEN: --apply-missions of its own)")
    hosted.add_argument("--allow-service-faults", action="store_true",
                        help="stop, slow and fill its PostgreSQL and Redis (local throwaway servers only)")
    hosted.add_argument("--postgres-dir", type=Path, help="data folder of its local PostgreSQL")
    hosted.add_argument("--redis-dir", type=Path, help="data folder of its local Redis")
    args = parser.parse_args()
    if args.lease is None:
        args.lease = 30 if args.host else 5
    run_benchmark(bench, args, prefix="renfort-bench-faults-", exit_code=failed,
                  failures=(asyncpg.PostgresError, httpx.HTTPError, RedisError))


if __name__ == "__main__":
    main()
