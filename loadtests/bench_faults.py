"""The fault benchmark: sign-ups and applications keep coming while workers, PostgreSQL and Redis fail under them;
at the end, every accepted write is looked for in PostgreSQL.

    python -m loadtests.bench_faults [--signup-rate 20] [--apply-rate 8] [--lease 5] [--keep]

1. Starts a throwaway PostgreSQL and Valkey (ops.services; AOF on, `maxmemory` small, `noeviction`), a mail sink,
   runs the Procfile's `release`, seeds published missions in SQL, starts `web` and two `worker` processes, and signs
   volunteers in through their e-mailed links (the applicants, and the people of the last phase).
2. Traffic for the whole run (loadtests.fault_traffic): unique sign-ups with an Idempotency-Key, and applications to
   missions with few places; every 202 receipt, 303 outcome, 503 (with Retry-After: allowed) and error is recorded
   under the phase it happened in.
3. The phases of PHASES, one after the other: a worker SIGKILLed mid-drain, PostgreSQL stopped, PostgreSQL slowed
   past the drain lease, Redis restarted (cleanly, then SIGKILLed), Redis full, accounts deleted while a repeat
   of their sign-up is queued.
4. The traffic stops; the queues drain (bounded); PostgreSQL and Redis are read for the tally (loadtests.fault_tally).

Prints ONE JSON line on stdout; progress on stderr. Exits 1 when lost, duplicates, oversold, resurrected, stuck or
errors is not 0. Every process it starts is stopped on the way out; traffic goes to 127.0.0.1 only; ≤ 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import random
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from redis import Redis
from redis.exceptions import OutOfMemoryError, RedisError

from loadtests.bench_missions import (
    APPLIED,
    Postgres,
    Volunteer,
    ask_links,
    confirm_links,
    seed,
    sign_up,
    view_missions,
    wait_for_links,
    wait_rows,
)
from loadtests.bench_missions import drain as drain_applications
from loadtests.bench_signups import Platform, serve, start_platform, watch_drain
from loadtests.fault_tally import (
    APPLICATIONS,
    SIGNUPS,
    dead_letter_counts,
    failed,
    summary,
    tally_applications,
    tally_signups,
    text,
)
from loadtests.fault_traffic import Applicant, ApplyLoad, Background, Erasures, Ledger, SignupLoad
from loadtests.harness import Process, log, loopback, parent_of, run_benchmark
from ops.postgres import LocalPostgres
from ops.valkey import LocalRedis

FILLER = "bench:filler:"  # the benchmark's own keys, never the platform's
FILLER_BYTES = 256 * 1024


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


@dataclass
class Run:
    """Everything the phases act on."""

    args: argparse.Namespace
    tmp: Path
    platform: Platform
    postgres: LocalPostgres
    redis_server: LocalRedis
    base: str
    web: Process
    workers: Workers
    traffic: Background
    ledger: Ledger
    name: str  # the run's e-mail prefix
    missions: list[int]
    deletable: list[tuple[str, Applicant]] = field(default_factory=list)  # (e-mail, signed in) for the last phase
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def redis(self) -> Redis:
        return Redis.from_url(self.platform.redis_url, socket_timeout=5)

    def volunteer_rows(self) -> int | None:
        """Rows in `volunteers` now, or None while PostgreSQL does not answer."""
        try:
            db = Postgres(self.platform.database_url)
        except (OSError, asyncpg.PostgresError):
            return None
        try:
            return int(db.scalar("SELECT count(*) FROM volunteers"))
        finally:
            db.close()


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
    victim, mid_drain = 0, False
    deadline = time.monotonic() + 15
    with run.redis() as redis:
        while time.monotonic() < deadline and not mid_drain:
            for parent in consumer_parents(redis):
                index = run.workers.index_of(parent)
                if index is not None:
                    victim, mid_drain = index, True
                    break
            time.sleep(0.01)
    run.workers.kill(victim)
    time.sleep(3)
    run.workers.restart(victim)
    time.sleep(run.args.lease + 2)
    return {"worker": victim + 1, "mid_drain": mid_drain}


def stop_postgres(run: Run) -> dict[str, Any]:
    run.postgres.stop("fast")
    time.sleep(run.args.outage)
    run.postgres.start()
    time.sleep(5)
    return {"down_s": run.args.outage}


def slow_postgres(run: Run) -> dict[str, Any]:
    """A side connection holds ACCESS EXCLUSIVE on `volunteers` for three leases: every drain write waits past its
    lease, so another consumer may take the batch over while the first still holds it."""
    hold = 3 * run.args.lease
    lock = Postgres(run.platform.database_url)
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

    def restart(stop: Callable[[], None]) -> float:
        started = time.monotonic()
        stop()
        run.redis_server.start()
        tune_redis(run.platform.redis_url, run.args.redis_maxmemory)
        time.sleep(5)
        return round(time.monotonic() - started - 5, 2)

    clean_s = restart(run.redis_server.stop)
    with run.redis() as redis:
        redis.config_set("appendfsync", "always")
    time.sleep(3)
    return {"clean_restart_s": clean_s, "kill_restart_s": restart(run.redis_server.kill)}


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
    erasures = Erasures(run.deletable, run.ledger, mission=run.missions[0], seed=run.args.seed + 3)
    try:
        outcomes = run.traffic.run(erasures(4, per_person=60), timeout=120)
    except RuntimeError as error:  # counted, so the run still ends with its tally
        run.ledger.error(run.ledger.phase, "erasure", str(error))
        outcomes = {}
    time.sleep(3)
    return {"people": outcomes}


# name → what it does; each phase's recovery is part of it, so its answers include the way back.
PHASES: list[tuple[str, Callable[[Run], dict[str, Any]]]] = [
    ("steady", steady),
    ("worker_killed", kill_worker),
    ("postgres_stopped", stop_postgres),
    ("postgres_slow", slow_postgres),
    ("redis_restarted", restart_redis),
    ("redis_full", fill_redis),
    ("accounts_deleted", delete_accounts),
]


# Set-up ----------------------------------------------------------------------------------------------------------


def port_of(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise RuntimeError(f"no port in {url}")
    return port


def sign_in(run: Run, db: Postgres, prefix: str, count: int) -> list[tuple[str, Applicant]]:
    """Volunteers sign up over the API, the workers save them, each signs in through its e-mailed link."""
    rng = random.Random(run.args.seed + 1)
    volunteers = [Volunteer(f"{run.name}.{prefix}{number}@example.org",
                            httpx.AsyncClient(base_url=run.base, timeout=10, trust_env=False))
                  for number in range(count)]
    run.traffic.run(sign_up(volunteers, rng, 16), timeout=120)
    sql = f"SELECT count(*) FROM volunteers WHERE email_normalized LIKE '{run.name}.{prefix}%'"  # noqa: S608 - ours
    if wait_rows(db, sql, count, run.workers.processes, 120) < count:
        raise RuntimeError(f"not every sign-up of {count} volunteers reached PostgreSQL")
    run.traffic.run(ask_links(volunteers, 16), timeout=120)
    wait_for_links(run.tmp / "mail", volunteers, timeout=120)
    run.traffic.run(confirm_links(volunteers, 16), timeout=120)
    ids = {row["email_normalized"]: int(row["id"]) for row in db.fetch(
        "SELECT id, email_normalized FROM volunteers WHERE email_normalized LIKE $1", f"{run.name}.{prefix}%")}
    return [(volunteer.email, Applicant(ids[volunteer.email], volunteer.client)) for volunteer in volunteers]


def start_run(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> tuple[Run, list[Applicant]]:
    platform = start_platform(stack, tmp, args)
    platform.env.update(DRAIN_LEASE_SECONDS=str(args.lease), SIGNIN_IP_LIMIT_PER_MINUTE="0", LOG_LEVEL="INFO")
    # Handles on the servers start_platform started (same folder, same port), to stop, kill and start them.
    postgres = LocalPostgres(tmp / "postgres", port_of(platform.database_url))
    redis_server = LocalRedis(tmp / "redis", port_of(platform.redis_url))
    tune_redis(platform.redis_url, args.redis_maxmemory)
    db = Postgres(platform.database_url)
    stack.callback(db.close)
    seed(db, argparse.Namespace(seed=args.seed, missions=args.missions, rush_missions=0))
    missions = [int(row["id"]) for row in db.fetch(
        "SELECT id FROM missions WHERE places <= 15 ORDER BY id LIMIT $1", args.apply_missions)]
    base, web = serve(stack, "web", loopback(platform.kinds["web"]), {**platform.env, "LOG_LEVEL": "WARNING"},
                      platform.logs)
    traffic = Background()
    stack.callback(traffic.close)
    run = Run(args, tmp, platform, postgres, redis_server, base, web, Workers(stack, platform, 2), traffic,
              Ledger(), f"bf-{random.Random(args.seed).getrandbits(32):08x}", missions)
    applicants = [applicant for _, applicant in sign_in(run, db, "a", args.applicants)]
    # Signed in now, while mail is quick: under the traffic, a sign-in e-mail waits behind every welcome e-mail.
    run.deletable = sign_in(run, db, "d", args.deletions)
    view_missions(base, missions)
    log(f"set-up: {len(missions)} missions with few places, {len(applicants)} applicants and "
        f"{len(run.deletable)} people to delete signed in")
    return run, applicants


# Tally -----------------------------------------------------------------------------------------------------------


def tally(run: Run, seconds: float) -> dict[str, Any]:
    db = Postgres(run.platform.database_url)
    try:
        with run.redis() as redis:
            signups = tally_signups(run.ledger, run.name, db, redis)
            applications = tally_applications(run.ledger, db, redis)
            dead = dead_letter_counts(run.base, redis)
    finally:
        db.close()
    result = summary(run.ledger, signups, applications, dead, run.figures)
    result.update(seconds=round(seconds, 1), worker_exits=run.workers.exits, phases=run.figures)
    return result


# The benchmark ---------------------------------------------------------------------------------------------------


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    args.mail_sink = True  # sign-in links are read from it
    run, applicants = start_run(stack, tmp, args)
    stop = asyncio.Event()
    signups = SignupLoad(run.base, run.name, run.ledger, rate=args.signup_rate, clients=8, seed=args.seed + 2)
    applying = ApplyLoad(applicants, run.missions, run.ledger, rate=args.apply_rate, clients=4, seed=args.seed)
    loads = [run.traffic.start(signups(stop)), run.traffic.start(applying(stop))]

    def stop_traffic() -> None:
        run.traffic.loop.call_soon_threadsafe(stop.set)
        concurrent.futures.wait(loads, timeout=20)

    stack.callback(stop_traffic)
    for name, phase in PHASES:
        run.ledger.phase = name
        log(f"phase {name}")
        began = time.monotonic()
        figures = phase(run)
        figures["seconds"] = round(time.monotonic() - began, 1)
        figures["worker_exits"] = run.workers.revive()
        if not run.web.alive():
            raise RuntimeError(f"the web process exited:\n{run.web.tail()}")
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
    db = Postgres(run.platform.database_url)
    try:
        with run.redis() as redis:
            watch_drain(db, run.base, redis, run.workers.processes, 0, 10, budget / 2)
            applied = sum(1 for outcome, _ in run.ledger.pairs.values() if outcome in APPLIED)
            drain_applications(db, redis, run.workers.processes, applied, budget / 2)
    finally:
        db.close()
    return tally(run, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signup-rate", type=float, default=20, help="sign-ups sent per second")
    parser.add_argument("--apply-rate", type=float, default=8, help="applications sent per second")
    parser.add_argument("--applicants", type=int, default=80, help="volunteers signed in to apply")
    parser.add_argument("--missions", type=int, default=100, help="published missions seeded")
    parser.add_argument("--apply-missions", type=int, default=30, help="missions with ≤ 15 places applied to")
    parser.add_argument("--deletions", type=int, default=16, help="accounts deleted in the last phase")
    parser.add_argument("--lease", type=int, default=5, help="DRAIN_LEASE_SECONDS of the platform")
    parser.add_argument("--outage", type=float, default=15, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--full-seconds", type=float, default=12, help="seconds Redis stays at its memory limit")
    parser.add_argument("--redis-maxmemory", default="96mb", help="Redis maxmemory (filled in the redis_full phase)")
    parser.add_argument("--steady", type=float, default=10, help="seconds of traffic before the first fault")
    parser.add_argument("--budget", type=float, default=570, help="seconds the whole run may take, drain included")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY of the web process")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the missions and people")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data and every log)")
    args = parser.parse_args()
    run_benchmark(bench, args, prefix="renfort-bench-faults-", exit_code=failed,
                  failures=(asyncpg.PostgresError, httpx.HTTPError, RedisError))


if __name__ == "__main__":
    main()
