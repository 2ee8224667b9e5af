"""Designs side by side: what the queued sign-up path costs and buys against the plain INSERT-per-request design.

    python -m loadtests.bench_designs [--duration 20] [--outage-duration 30] [--connections 64] [--keep]

On one throwaway PostgreSQL and Valkey (ops.services, the platform's own settings), with the Procfile's `web` server
line for every design (same server, same workers) and the same wrk load (unique, valid sign-ups):
1. Ceiling: loadtests.bare_app, a POST that validates the body and does nothing else.
2. Naive: loadtests.naive_app, the same validation then one INSERT … ON CONFLICT DO NOTHING per request (asyncpg,
   a pool of 10 per process) into a copy of the `volunteers` table.
3. Renfort: the `web` process with its `worker` draining during the wave and welcome e-mails going to a local mail
   sink; `drain_lag_s` runs from the wave's end until every accepted sign-up is a row and its e-mail is in the sink.
4. Outage: each of naive and Renfort takes a second wave during which PostgreSQL is stopped for the middle third;
   `*_refused` counts every answer that was not 2xx, time-outs and socket errors included. Renfort's accepted
   sign-ups of that wave must reach PostgreSQL once PostgreSQL is back, like the first wave's.

CPU per sign-up adds up the processes' CPU times (user + system, children reaped included) over the window: web and
worker process groups, the PostgreSQL server and its backends, Valkey; for Renfort the window runs until the drain
is done. Prints ONE JSON line on stdout (bare_per_s, naive_per_s, naive_p99_ms, renfort_per_s, renfort_p99_ms,
vs_naive, ceiling_ratio, cpu_ms_per_signup, lost, duplicates, drain_lag_s, naive_refused, renfort_refused,
targets_met and informative keys); progress on stderr. Exits 1 when a target is missed, 2 when wrk is missing.
Every process and server it starts is stopped on the way out; traffic goes to 127.0.0.1 only; ≤ 10 minutes.
"""

from __future__ import annotations

import argparse
import math
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from redis import Redis

from loadtests.bench_signups import (
    Platform,
    Postgres,
    measure_ceiling,
    serve,
    start_platform,
    tally,
    warm_up,
    wave,
)
from loadtests.harness import (
    Process,
    WrkResult,
    log,
    loopback,
    require_wrk,
    run_benchmark,
    run_wrk,
    tree_cpu_seconds,
)
from loadtests.naive_app import create_table
from ops.processes import read_pid

NAIVE_APP = "loadtests.naive_app:app"
TARGETS = {"vs_naive": 2.0, "ceiling_ratio": 0.5, "p99_ms": 50.0, "drain_lag_s": 10.0}


@dataclass
class Meter:
    """CPU seconds of named sets of process trees between start() and stop()."""

    roots: Callable[[], dict[str, list[int | None]]]
    _start: dict[str, float] = field(default_factory=dict)
    parts: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {name: sum(tree_cpu_seconds(pid) for pid in pids) for name, pids in self.roots().items()}

    def start(self) -> Meter:
        self._start = self._now()
        return self

    def stop(self) -> float:
        self.parts = {name: seconds - self._start.get(name, 0.0) for name, seconds in self._now().items()}
        return sum(self.parts.values())

    def per_signup_ms(self, count: int) -> dict[str, float | None]:
        return {name: round(1000 * seconds / count, 3) if count else None for name, seconds in self.parts.items()}


def service_pids(platform: Platform) -> dict[str, list[int | None]]:
    """PostgreSQL's postmaster (its backends are its children) and Valkey, read from their pid files now: both may
    have been restarted since the benchmark began."""
    return {"postgres": [read_pid(platform.postgres.data_dir / "postmaster.pid")],
            "redis": [read_pid(platform.redis_server.pid_file)]}


def refused(result: WrkResult) -> int:
    """Answers that were not 2xx, plus time-outs and socket errors."""
    accepted = sum(count for status, count in result.statuses.items() if 200 <= status < 300)
    return result.requests - accepted + result.socket_errors


def outage_wave(platform: Platform, base: str, run: str, args: argparse.Namespace, receipts: Path | None) -> WrkResult:
    """A wave of `--outage-duration` seconds with PostgreSQL stopped during its middle third."""
    third = args.outage_duration / 3
    env = {"RENFORT_RUN": run}
    if receipts is not None:
        env["RENFORT_RECEIPTS"] = str(receipts)
    outcome: dict[str, WrkResult | BaseException] = {}

    def load() -> None:
        try:
            outcome["result"] = run_wrk(base + "/api/v1/volunteers", "signup.lua", duration=args.outage_duration,
                                        connections=args.connections, threads=args.threads, env=env)
        except BaseException as error:  # handed to the main thread below
            outcome["result"] = error

    traffic = threading.Thread(target=load, daemon=True)
    traffic.start()
    time.sleep(third)
    log(f"outage: stopping PostgreSQL for {third:.0f} s")
    platform.postgres.stop("fast")
    time.sleep(third)
    platform.postgres.start()
    log("outage: PostgreSQL is back")
    traffic.join(args.outage_duration + 90)
    result = outcome.get("result")
    if not isinstance(result, WrkResult):
        raise RuntimeError(f"the outage wave failed: {result!r}")
    return result


def mails(platform: Platform) -> int:
    return len(list(platform.mail_dir.glob("*.eml"))) if platform.mail_dir else 0


def wait_until_drained(db: Postgres, platform: Platform, run: str, rows: int, letters: int,
                       timeout: float) -> float:
    """Seconds until `rows` of the run are in PostgreSQL and the sink holds `letters` messages; past the timeout,
    infinity (the JSON line then says null: not drained)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            saved = int(db.scalar("SELECT count(*) FROM volunteers WHERE email_normalized LIKE $1", run + ".%"))
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            db.reconnect()
            saved = -1
        if saved >= rows and mails(platform) >= letters:
            return time.monotonic() - started
        time.sleep(0.1)
    log(f"drain: not done after {timeout:.0f} s ({mails(platform)}/{letters} e-mails)")
    return math.inf


def naive_phase(stack: ExitStack, platform: Platform, args: argparse.Namespace,
                db: Postgres) -> dict[str, Any]:
    db.run(create_table)
    line = loopback(platform.kinds["web"]).replace("app.asgi:app", NAIVE_APP)
    env = {**platform.env, "NAIVE_DATABASE_URL": platform.database_url.replace("+asyncpg", "")}
    with ExitStack() as naive_stack:
        base, server = serve(naive_stack, "naive", line, env, platform.logs)
        log(f"naive: {NAIVE_APP} under `{line}`")
        warm_up(base, "naive-warm", args)
        run = f"nv-{secrets.token_hex(4)}"
        meter = Meter(lambda: {"web": [server.pid], **service_pids(platform)}).start()
        result = wave(base, run, args)
        cpu = meter.stop()
        accepted = result.count(202)
        rows = int(db.scalar("SELECT count(*) FROM naive_signups WHERE email_normalized LIKE $1", run + ".%"))
        log(f"naive: {accepted / result.duration_s:.0f}/s, p99 {result.p99_ms} ms, {cpu:.1f} CPU s")
        outage = outage_wave(platform, base, f"nv-out-{secrets.token_hex(4)}", args, None)
        db.reconnect()
        log(f"naive outage: {refused(outage)} refused of {outage.requests + outage.socket_errors}")
    return {
        "per_s": accepted / result.duration_s, "p99_ms": result.p99_ms,
        "cpu_ms": 1000 * cpu / accepted if accepted else None, "cpu_parts": meter.per_signup_ms(accepted),
        "lost": max(0, accepted - rows),
        "refused": refused(outage), "outage_requests": outage.requests, "statuses": result.statuses,
    }


def renfort_phase(stack: ExitStack, tmp: Path, platform: Platform, args: argparse.Namespace,
                  db: Postgres) -> dict[str, Any]:
    base, web = serve(stack, "web", loopback(platform.kinds["web"]), platform.env, platform.logs)
    workers = []
    for number in range(1, args.workers + 1):
        worker = Process(f"worker-{number}", platform.kinds["worker"], platform.env,
                         platform.logs / f"worker-{number}.log")
        stack.callback(worker.stop)
        workers.append(worker)
    warm_run = f"rf-warm-{secrets.token_hex(4)}"
    warm = warm_up(base, warm_run, args)
    wait_until_drained(db, platform, warm_run, warm, mails(platform) + warm, args.drain_timeout)
    letters = mails(platform)

    def roots() -> dict[str, list[int | None]]:
        return {"web": [web.pid], "worker": [worker.pid for worker in workers], **service_pids(platform)}

    run = f"rf-{secrets.token_hex(4)}"
    meter = Meter(roots).start()
    result = wave(base, run, args, receipts=tmp / "receipts.txt")
    accepted = result.count(202)
    lag = wait_until_drained(db, platform, run, accepted, letters + accepted, args.drain_timeout)
    cpu = meter.stop()
    counts = tally(db, run, accepted, tmp / "receipts.txt")
    log(f"renfort: {accepted / result.duration_s:.0f}/s, p99 {result.p99_ms} ms, drained {lag:.1f} s after the "
        f"wave, {cpu:.1f} CPU s ({meter.per_signup_ms(accepted)} ms per sign-up)")

    out_run = f"rf-out-{secrets.token_hex(4)}"
    outage = outage_wave(platform, base, out_run, args, tmp / "receipts-outage.txt")
    db.reconnect()
    out_accepted = outage.count(202)
    wait_until_drained(db, platform, out_run, out_accepted, 0, args.drain_timeout)
    out_counts = tally(db, out_run, out_accepted, tmp / "receipts-outage.txt")
    log(f"renfort outage: {refused(outage)} refused of {outage.requests + outage.socket_errors}, "
        f"{out_counts['lost']} lost")
    return {
        "per_s": accepted / result.duration_s, "p99_ms": result.p99_ms,
        "cpu_ms": 1000 * cpu / accepted if accepted else None, "cpu_parts": meter.per_signup_ms(accepted),
        "drain_lag_s": lag,
        "lost": counts["lost"] + out_counts["lost"],
        "duplicates": max(counts["duplicates"], out_counts["duplicates"]),
        "refused": refused(outage), "outage_requests": outage.requests, "statuses": result.statuses,
        "mails": mails(platform) - letters,
    }


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    args.mail_sink = True
    platform = start_platform(stack, tmp, args)
    db = Postgres(platform.database_url)
    stack.callback(db.close)
    redis = Redis.from_url(platform.redis_url)
    stack.callback(redis.close)

    ceiling, _ = measure_ceiling(platform, args)
    bare_per_s = ceiling.req_per_s
    naive = naive_phase(stack, platform, args, db)
    renfort = renfort_phase(stack, tmp, platform, args, db)

    def ratio(value: float | None, base: float | None) -> float | None:
        return round(value / base, 3) if value is not None and base else None

    result: dict[str, Any] = {
        "bare_per_s": round(bare_per_s, 1),
        "naive_per_s": round(naive["per_s"], 1),
        "naive_p99_ms": naive["p99_ms"],
        "renfort_per_s": round(renfort["per_s"], 1),
        "renfort_p99_ms": renfort["p99_ms"],
        "vs_naive": ratio(renfort["per_s"], naive["per_s"]),
        "ceiling_ratio": ratio(renfort["per_s"], bare_per_s),
        "cpu_ms_per_signup": {
            "naive": round(naive["cpu_ms"], 3) if naive["cpu_ms"] else None,
            "renfort": round(renfort["cpu_ms"], 3) if renfort["cpu_ms"] else None,
        },
        # Where the CPU went, per sign-up: each design's processes (informative).
        "cpu_ms_per_signup_parts": {"naive": naive["cpu_parts"], "renfort": renfort["cpu_parts"]},
        "lost": renfort["lost"],
        "duplicates": renfort["duplicates"],
        "drain_lag_s": round(renfort["drain_lag_s"], 2) if math.isfinite(renfort["drain_lag_s"]) else None,
        "naive_refused": naive["refused"],
        "renfort_refused": renfort["refused"],
        "naive_outage_requests": naive["outage_requests"],
        "renfort_outage_requests": renfort["outage_requests"],
        "naive_lost": naive["lost"],
        "welcome_mails": renfort["mails"],
        "connections": args.connections,
        "duration_s": args.duration,
        "outage_duration_s": args.outage_duration,
        "web_workers": args.web_workers,
        "workers": args.workers,
        "server": platform.kinds["web"].split()[0],
    }
    result["targets_met"] = all([
        (result["vs_naive"] or 0) >= TARGETS["vs_naive"],
        (result["ceiling_ratio"] or 0) >= TARGETS["ceiling_ratio"],
        result["renfort_p99_ms"] <= TARGETS["p99_ms"],
        result["drain_lag_s"] is not None and result["drain_lag_s"] <= TARGETS["drain_lag_s"],
        result["lost"] == 0,
        result["duplicates"] == 0,
        result["renfort_refused"] == 0,
        result["naive_refused"] > 0,
    ])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured wave")
    parser.add_argument("--outage-duration", type=int, default=30, help="seconds of each outage wave")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY of every design's server")
    parser.add_argument("--workers", type=int, default=1, help="Renfort `worker` processes draining the wave")
    parser.add_argument("--drain-timeout", type=float, default=120.0, help="give up waiting for a drain after this")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs, mail)")
    args = parser.parse_args()
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-designs-", failures=(asyncpg.PostgresError,))


if __name__ == "__main__":
    main()
