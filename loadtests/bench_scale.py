"""Scaling out on one machine: do 2 web processes + 2 workers get more sign-ups and applications through, end to end,
than 1 + 1?

    python -m loadtests.bench_scale [--duration 20] [--connections 64] [--volunteers 300] [--window-missions 500]
                                    [--target 1.3] [--only signups|apply] [--seed 2020] [--keep]

Four windows: sign-ups then applications, each under 1 + 1 then 2 + 2. Each window has a platform of its own
(bench_signups.start_platform: a throwaway PostgreSQL and Redis, `release`), so none inherits another's rows, caches
or retried e-mail jobs. In each, the Procfile's `web` line with WEB_CONCURRENCY=N and N `worker` processes run
*together* while wrk drives the load: a 2 s warm-up, whose backlog is left to drain, then the measured window of
`--duration` seconds; the moment wrk stops, PostgreSQL is asked how much of the window's work it holds. Then the
backlog drains and is tallied (nothing lost, doubled or oversold).

Throughput is per second of the window and end to end: accepted by the web AND written to PostgreSQL by a worker
within the window, so a web tier that outruns its workers gains nothing by it.
- sign-ups (bench_signups' wrk script, unique valid sign-ups): rows in `volunteers` with the window's e-mail prefix
  when wrk stops (only an accepted sign-up is ever queued), ÷ the time from wrk's start to that count;
- applications (bench_missions: 2,000 published missions, `--volunteers` signed in through their e-mailed links,
  each (volunteer, mission) pair once): rows in `applications` for the window's missions, answered `pending` or
  `waitlisted`, counted the same way.

Prints ONE JSON line on stdout: `signups_1x1`, `signups_2x2`, `apply_1x1`, `apply_2x2`, `signups_ratio`,
`apply_ratio`, `targets_met` and each window's details, among them `cores`: where the machine's cores went during
the window (web, workers, postgres, redis, `load` for wrk and this benchmark, `other`, idle). Progress goes to
stderr. Exits 1 when a target is missed (each ratio at least `--target`, nothing lost, doubled, oversold or left
queued), 2 when wrk is missing. Every process and server it starts is stopped on the way out, Ctrl-C included.
Traffic goes to 127.0.0.1 only.

What a second web process and worker can add is the cores 1 + 1 leaves idle (`*_idle_cores_1x1`): one web process
uses at most about one core, and wrk, Redis, PostgreSQL and the drains share the rest of the machine with it. A
machine shared with other work gives N processes N shares of the CPU against it (`cores.other`): the ratios then
overstate what a quiet machine gives.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis import Redis

from loadtests import bench_missions, bench_signups
from loadtests.bench_missions import (
    APPLICATIONS_CONSUMERS,
    APPLICATIONS_PENDING,
    Postgres,
    read_pairs,
    rush,
    view_missions,
)
from loadtests.bench_signups import Platform, pending, serve, start_platform, wave
from loadtests.harness import (
    TICKS,
    CpuWindow,
    Process,
    free_port,
    log,
    loopback,
    procfile,
    require_wrk,
    run_benchmark,
    run_wrk,
)
from ops.processes import read_pid

CONFIGURATIONS = ((1, 1), (2, 2))  # (web processes, workers)
APPLIED = ("pending", "waitlisted")
WARM_UP_SECONDS = 2
VIEWERS = 8
# The welcome e-mails of the sign-up windows go nowhere: the platform never e-mails this reserved domain, so the
# workers spend the window draining, not retrying e-mails to a closed port, in both configurations alike.
REHEARSAL_DOMAIN = "rehearsal.invalid"


def label(web: int, workers: int) -> str:
    return f"{web}x{workers}"


def wait_drained(count: Callable[[], int], queued: Callable[[], int | None], workers: list[Process],
                 timeout: float) -> tuple[int, int]:
    """Until nothing is queued and `count` has not grown for a second; returns (count, still queued)."""
    started = last_growth = time.monotonic()
    rows = count()
    while True:
        time.sleep(0.2)
        now, current, waiting = time.monotonic(), count(), queued()
        if current > rows:
            rows, last_growth = current, now
        if waiting == 0 and now - last_growth >= 1.0:
            return rows, 0
        if now - started > timeout:
            log(f"drain: gave up after {timeout:.0f} s with {waiting} still queued")
            return rows, waiting or 0
        if not any(worker.alive() for worker in workers):
            raise RuntimeError(f"every worker exited:\n{workers[0].tail()}")


def cpu_table() -> dict[tuple[int, str], tuple[int, float]]:
    """Every live process: (pid, start time) → (parent pid, CPU seconds so far, its own and its reaped children's:
    wrk once it returned, a drain's work horse, a PostgreSQL backend gone with its job's connection)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            seconds = sum(int(fields[index]) for index in (11, 12, 13, 14)) / TICKS
            table[(int(stat.parent.name), fields[19])] = (int(fields[1]), seconds)
        except (OSError, IndexError, ValueError):
            continue
    return table


class Window:
    """wrk's run, and PostgreSQL's count taken the moment wrk returns: what landed end to end, per second. Also
    where the machine's cores went meanwhile, by process tree (web, workers with their work horses, PostgreSQL,
    Redis, `load` for wrk and this benchmark, `other` for the rest of the machine's busy time). A process that ended
    within the window counts through its parent, whole (its time before the window too): a rough split."""

    def __init__(self, web: Process, workers: list[Process], folder: Path) -> None:
        self.cpu = CpuWindow(web.pid)
        # The nearest root up a process's ancestry names it: the web and workers are this benchmark's children too.
        self.roots: dict[int, str] = {os.getpid(): "load", web.pid: "web", **{w.pid: "workers" for w in workers}}
        for name, pid_file in (("postgres", folder / "postgres" / "postmaster.pid"),
                               ("redis", folder / "redis" / "valkey.pid")):
            pid = read_pid(pid_file)
            if pid is not None:
                self.roots[pid] = name
        self.before = cpu_table()
        self.started = time.monotonic()
        self.seconds = 0.0
        self.cores: dict[str, float] = {}

    def close(self, count: Callable[[], int]) -> int:
        landed = count()
        self.seconds = time.monotonic() - self.started
        self.cpu.stop()
        after = cpu_table()
        parents = {pid: parent for (pid, _), (parent, _) in after.items()}
        used: dict[str, float] = {}
        for key, (_, seconds) in after.items():
            kind = self._kind(key[0], parents)
            if kind is not None:
                used[kind] = used.get(kind, 0.0) + seconds - self.before.get(key, (0, 0.0))[1]
        self.cores = {kind: round(seconds / self.seconds, 2) for kind, seconds in sorted(used.items())}
        # The rest of the busy time is other work's (counted from the machine's idle time, not from its processes:
        # a long-lived process reaped meanwhile would bring in its whole life).
        busy = (os.cpu_count() or 1) - self.cpu.idle_cores
        self.cores["other"] = round(max(0.0, busy - sum(used.values()) / self.seconds), 2)
        self.cores["idle"] = round(self.cpu.idle_cores, 2)
        return landed

    def _kind(self, pid: int, parents: dict[int, int]) -> str | None:
        seen = 0
        while pid > 1 and seen < 64:
            if pid in self.roots:
                return self.roots[pid]
            pid, seen = parents.get(pid, 0), seen + 1
        return None


def figures(landed: int, window: Window, answered: int, p99_ms: float) -> dict[str, Any]:
    return {
        "per_s": round(landed / window.seconds, 1),
        "landed": landed,
        "answered_per_s": round(answered / window.seconds, 1),
        "p99_ms": p99_ms,
        "window_s": round(window.seconds, 2),
        "web_cpu_cores": round(window.cpu.server_cores, 2),
        "machine_idle_cores": round(window.cpu.idle_cores, 2),
        "cores": window.cores,
    }


# Sign-ups ------------------------------------------------------------------------------------------------------


def signups_window(stack: ExitStack, platform: Platform, db: Postgres, redis: Redis, tmp: Path,
                   args: argparse.Namespace, web_count: int, worker_count: int) -> dict[str, Any]:
    name = label(web_count, worker_count)
    run = f"sc{name}-{random.Random(args.seed).getrandbits(24):06x}"
    base, web, workers = start_window_processes(stack, platform, web_count, worker_count)
    warm = run_wrk(base + bench_signups.SIGNUP_PATH, "signup.lua", duration=WARM_UP_SECONDS,
                   connections=args.connections, threads=args.threads,
                   env={"RENFORT_RUN": f"{run}w", "RENFORT_MAIL_DOMAIN": REHEARSAL_DOMAIN})
    wait_drained(lambda: rows_like(db, f"{run}w.%"), lambda: pending(base, redis), workers, args.drain_timeout)
    log(f"sign-ups {name}: warmed up ({warm.count(202)} accepted and saved); {args.duration} s window")

    receipts = tmp / "receipts.txt"
    window = Window(web, workers, tmp)
    answered = wave(base, run, args, receipts=receipts, mail_domain=REHEARSAL_DOMAIN)
    landed = window.close(lambda: rows_like(db, f"{run}.%"))
    backlog = pending(base, redis)
    accepted = answered.count(202)
    log(f"sign-ups {name}: {landed} saved in the window ({landed / window.seconds:.0f}/s), {accepted} accepted"
        f" ({accepted / window.seconds:.0f}/s), {backlog} still queued; web {window.cpu.server_cores:.2f} cores")
    _, undrained = wait_drained(lambda: rows_like(db, f"{run}.%"), lambda: pending(base, redis), workers,
                                args.drain_timeout)
    counts = bench_signups.tally(db, run, accepted, receipts)
    return {
        **figures(landed, window, accepted, answered.p99_ms),
        "backlog_at_window_end": backlog,
        "undrained": undrained,
        "lost": counts["lost"],
        "duplicates": counts["duplicates"],
        "non_2xx": answered.requests - accepted,
        "socket_errors": answered.socket_errors,
    }


def rows_like(db: Postgres, pattern: str) -> int:
    return int(db.scalar("SELECT count(*) FROM volunteers WHERE email_normalized LIKE $1", pattern))


# Applications --------------------------------------------------------------------------------------------------


def apply_window(stack: ExitStack, platform: Platform, db: Postgres, redis: Redis, tmp: Path,
                 args: argparse.Namespace, web_count: int, worker_count: int) -> dict[str, Any]:
    name = label(web_count, worker_count)
    sessions, missions, warm_missions = prepare_applicants(platform, db, tmp, args)

    def landed() -> int:
        return int(db.scalar("SELECT count(*) FROM applications WHERE mission_id = ANY($1::bigint[])"
                             " AND status = ANY($2::text[])", missions, list(APPLIED)))

    def queued() -> int:
        return int(redis.llen(APPLICATIONS_PENDING)) + int(redis.scard(APPLICATIONS_CONSUMERS))

    base, web, workers = start_window_processes(stack, platform, web_count, worker_count)
    warm_pairs, pairs_path = tmp / "pairs-warm.txt", tmp / "pairs.txt"
    rush(base, sessions, warm_missions, warm_pairs, tmp, args, duration=WARM_UP_SECONDS)
    wait_drained(lambda: 0, queued, workers, args.drain_timeout)
    log(f"applications {name}: warmed up; {args.duration} s window on {len(missions)} missions")

    window = Window(web, workers, tmp)
    answered = rush(base, sessions, missions, pairs_path, tmp, args, duration=args.duration)
    count = window.close(landed)
    backlog = queued()
    pairs = read_pairs(pairs_path)
    applied = sum(1 for _, _, outcome in pairs if outcome in APPLIED)
    log(f"applications {name}: {count} saved in the window ({count / window.seconds:.0f}/s), {applied} answered"
        f" ({applied / window.seconds:.0f}/s), {backlog} still queued; web {window.cpu.server_cores:.2f} cores")
    # apply.lua GETs /health once every pair is used: the window then measured the pairs, not the platform.
    exhausted = answered.count(200) > 0
    if exhausted:
        log(f"applications {name}: every (volunteer, mission) pair was used before the window ended;"
            " raise --volunteers or --window-missions")
    _, undrained = wait_drained(landed, queued, workers, args.drain_timeout)
    counts = bench_missions.tally(db, read_pairs(warm_pairs) + pairs)
    return {
        **figures(count, window, applied, answered.p99_ms),
        "backlog_at_window_end": backlog,
        "undrained": undrained,
        "lost": counts["lost"],
        "oversold": counts["oversold"],
        "status_mismatch": counts["status_mismatch"],
        "pairs_exhausted": exhausted,
        "statuses": {str(status): number for status, number in sorted(answered.statuses.items())},
        "socket_errors": answered.socket_errors,
    }


def prepare_applicants(platform: Platform, db: Postgres, tmp: Path,
                       args: argparse.Namespace) -> tuple[Path, list[int], list[int]]:
    """Missions, and volunteers signed in through their e-mailed links (a web and workers of the set-up's own, with
    the mail sink); every mission is viewed once, which gives Redis its places. Returns (sessions, the window's
    missions, the warm-up's)."""
    args.rush_missions = args.window_missions
    seeded = bench_missions.seed(db, args)
    log(f"seed: {seeded.missions} missions; the window applies to {len(seeded.rush)}")
    with ExitStack() as setup:
        base, _ = serve(setup, "web-setup", loopback(platform.kinds["web"]), platform.env, platform.logs)
        sessions = bench_missions.make_sessions(setup, platform, db, base, tmp, args)
        missions = seeded.rush + seeded.warm
        with ThreadPoolExecutor(VIEWERS) as viewers:  # one citizen after another would take a minute
            list(viewers.map(lambda start: view_missions(base, missions[start::VIEWERS]), range(VIEWERS)))
    return sessions.path, seeded.rush, seeded.warm


# The benchmark -------------------------------------------------------------------------------------------------


def start_window_processes(stack: ExitStack, platform: Platform, web_count: int,
                           worker_count: int) -> tuple[str, Process, list[Process]]:
    """The `web` line with WEB_CONCURRENCY=web_count and `worker_count` workers. Their e-mails go to a closed port,
    as in bench_signups: the jobs fail at once and wait for a retry, so mail costs little and the same whatever the
    configuration (a sink would be load on the same two cores)."""
    window = dataclasses.replace(platform, env={**platform.env, "SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})
    base, web = serve(stack, "web", loopback(window.kinds["web"]), {**window.env, "WEB_CONCURRENCY": str(web_count)},
                      window.logs)
    return base, web, bench_missions.start_workers(stack, window, worker_count, "worker")


def measure(tmp: Path, args: argparse.Namespace, path: str, web_count: int, worker_count: int) -> dict[str, Any]:
    """One window on a platform of its own (PostgreSQL, Redis, release): no window inherits another's rows, caches
    or retried e-mail jobs."""
    folder = tmp / f"{path}-{label(web_count, worker_count)}"
    folder.mkdir()
    args.mail_sink = path == "apply"  # the set-up's sign-in links are read from it
    with ExitStack() as stack:
        platform = start_platform(stack, folder, args)
        platform.env.update(SIGNIN_IP_LIMIT_PER_MINUTE="0", SIGNUP_IP_LIMIT_PER_MINUTE="0")
        db = Postgres(platform.database_url)
        stack.callback(db.close)
        redis = Redis.from_url(platform.redis_url)
        stack.callback(redis.close)
        window = apply_window if path == "apply" else signups_window
        return window(stack, platform, db, redis, folder, args, web_count, worker_count)


def ratio(scaled: dict[str, Any] | None, single: dict[str, Any] | None) -> float | None:
    if not scaled or not single or not single["per_s"]:
        return None
    return round(scaled["per_s"] / single["per_s"], 3)


def verdict(windows: dict[str, dict[str, Any]], paths: list[str], target: float) -> dict[str, Any]:
    """The headline figures and whether the targets hold: each measured path's 2x2 ÷ 1x1 ratio at least `target`,
    and in every window nothing lost, doubled, oversold or left queued, and load until its end (an apply window that
    ran out of pairs measured them, not the platform)."""
    result: dict[str, Any] = {}
    for path in ("signups", "apply"):
        single, scaled = windows.get(f"{path}_1x1"), windows.get(f"{path}_2x2")
        result[f"{path}_1x1"] = single["per_s"] if single else None
        result[f"{path}_2x2"] = scaled["per_s"] if scaled else None
        result[f"{path}_ratio"] = ratio(scaled, single)
        result[f"{path}_idle_cores_1x1"] = single.get("machine_idle_cores") if single else None
    ratios_met = [result[f"{path}_ratio"] is not None and result[f"{path}_ratio"] >= target for path in paths]
    nothing_wrong = [
        window["lost"] == 0 and window.get("duplicates", 0) == 0 and window.get("oversold", 0) == 0
        and window["undrained"] == 0 and not window.get("pairs_exhausted", False)
        for window in windows.values()
    ]
    result["target_ratio"] = target
    result["targets_met"] = bool(paths) and all(ratios_met + nothing_wrong)
    return result


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    paths = [path for path in ("signups", "apply") if args.only in (None, path)]
    windows = {f"{path}_{label(*configuration)}": measure(tmp, args, path, *configuration)
               for path in paths for configuration in CONFIGURATIONS}
    return {
        **verdict(windows, paths, args.target),
        "windows": windows,
        "duration_s": args.duration,
        "connections": args.connections,
        "server": procfile()["web"].split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured window (four of them)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--target", type=float, default=1.3, help="the least 2x2 ÷ 1x1 ratio that passes, per path")
    parser.add_argument("--missions", type=int, default=2000, help="published missions, across the departments")
    parser.add_argument("--window-missions", type=int, default=500, help="missions each apply window applies to")
    parser.add_argument("--volunteers", type=int, default=300, help="volunteers who sign in and apply")
    parser.add_argument("--signin-workers", type=int, default=4, help="`worker` processes of the set-up")
    parser.add_argument("--signin-concurrency", type=int, default=32, help="volunteers signing in at once")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="give up a drain after this many s")
    parser.add_argument("--only", choices=["signups", "apply"], help="measure one write path only")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the missions and volunteers")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs, pairs)")
    args = parser.parse_args()
    args.web_workers = 2  # the set-up's web (start_platform's WEB_CONCURRENCY); each window sets its own
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-bench-scale-", failures=(asyncpg.PostgresError, httpx.HTTPError))


if __name__ == "__main__":
    main()
