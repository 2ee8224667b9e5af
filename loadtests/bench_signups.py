"""The sign-up wave benchmark: how fast the web tier accepts, how fast workers drain, and that nothing is lost.

    python -m loadtests.bench_signups [--duration 20] [--connections 64] [--web-workers 2] [--keep]

1. Starts a throwaway PostgreSQL and Redis (ops.services) in a temporary folder, on free loopback ports, and runs
   the Procfile's `release` command against them.
2. Ceiling: serves loadtests.bare_app with the Procfile's `web` line (same server, same workers) and POSTs
   sign-ups at it with wrk for the same duration.
3. Accept: starts the `web` process (SIGNUP_IP_LIMIT_PER_MINUTE=0) and POSTs unique, valid sign-ups with wrk.
   No worker runs, so the figure is the web tier's alone and the backlog piles up in Redis.
4. Drain: starts `worker` processes and waits until the queue is empty and PostgreSQL stops growing.
5. Counts in PostgreSQL: rows of the run (e-mail prefix), duplicated e-mails, and accepted receipts not saved.

Prints ONE JSON line on stdout (accepted_per_s, p50_ms, p99_ms, drain_rows_per_s, lost, duplicates,
ceiling_ratio, and informative keys); progress goes to stderr. Exits 2 when wrk is missing. Every process and
server it starts is stopped on the way out, Ctrl-C included. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from redis import Redis

from loadtests.harness import (
    CpuWindow,
    Process,
    WrkResult,
    base_env,
    get_json,
    log,
    loopback,
    procfile,
    require_wrk,
    run_benchmark,
    run_wrk,
    wait_http,
)
from ops.services import LocalPostgres, LocalRedis, free_port

PENDING_KEY = "renfort:signups:pending"
SIGNUP_PATH = "/api/v1/volunteers"
BARE_APP = "loadtests.bare_app:app"
TARGETS = {"accepted_per_s": 3000, "p99_ms": 100, "drain_rows_per_s": 10000}


class Postgres:
    """One asyncpg connection driven from synchronous code: the benchmark reads PostgreSQL as a black box."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        self._conn: asyncpg.Connection = self._loop.run_until_complete(asyncpg.connect(self._dsn))

    def scalar(self, sql: str, *args: Any) -> Any:
        return self._loop.run_until_complete(self._conn.fetchval(sql, *args))

    def run(self, function: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        return self._loop.run_until_complete(function(self._conn))

    def reconnect(self) -> None:
        """A new connection after the server restarted (the old one is gone with it); quiet while it is down."""
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._loop.run_until_complete(self._conn.close(timeout=2))
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._conn = self._loop.run_until_complete(asyncpg.connect(self._dsn, timeout=5))

    def close(self) -> None:
        self._loop.run_until_complete(self._conn.close())
        self._loop.close()


@dataclass
class Drain:
    rows: int
    seconds: float  # first rows seen → last growth: the workers' steady pace
    wall_seconds: float  # workers started → last growth: includes their start-up
    rows_per_s: float


def pending(base: str, redis: Redis) -> int | None:
    """Sign-ups waiting in Redis (queued or in a consumer's hands): /ready's figures, else the pending list."""
    try:
        queue = get_json(f"{base}/ready")["queue"]
        return int(queue["signups_pending"]) + int(queue.get("signups_in_flight", 0))
    except (KeyError, TypeError, ValueError, OSError):
        try:
            return int(redis.llen(PENDING_KEY))
        except Exception:
            return None


def watch_drain(
    db: Postgres, base: str, redis: Redis, workers: list[Process], expected: int, settle: float, timeout: float
) -> Drain:
    """Poll until the queue is empty and the row count has stopped growing; time the growth."""
    started = time.monotonic()
    rows = 0
    first: tuple[float, int] | None = None
    last = (started, 0)
    while True:
        now = time.monotonic()
        count = int(db.scalar("SELECT count(*) FROM volunteers"))
        if count > rows:
            rows = count
            first = first or (now, count)
            last = (now, count)
        depth = pending(base, redis)
        idle = now - last[0]
        if depth in (0, None) and ((rows >= expected and idle >= 1.0) or idle >= settle):
            break
        if now - started > timeout:
            log(f"drain: gave up after {timeout:.0f} s with {depth} pending and {rows}/{expected} rows")
            break
        if not any(worker.alive() for worker in workers):
            log(f"drain: every worker exited; last log lines:\n{workers[0].tail()}")
            break
        time.sleep(0.1)
    wall = last[0] - started
    if first is not None and last[0] > first[0]:
        seconds, rate = last[0] - first[0], (last[1] - first[1]) / (last[0] - first[0])
    else:  # everything landed between two polls: fall back to the wall-clock pace
        seconds, rate = wall, rows / wall if wall > 0 else 0.0
    return Drain(rows=rows, seconds=seconds, wall_seconds=wall, rows_per_s=rate)


def run_release(command: str, env: dict[str, str], logs: Path) -> None:
    log(f"release: {command}")
    with (logs / "release.log").open("wb") as out:
        completed = subprocess.run(
            ["/bin/sh", "-c", "exec " + command], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900
        )
    if completed.returncode != 0:
        tail = "\n".join((logs / "release.log").read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"release failed ({completed.returncode}):\n{tail}")


def serve(stack: ExitStack, name: str, command: str, env: dict[str, str], logs: Path) -> tuple[str, Process]:
    port = free_port()
    process = Process(name, command, {**env, "PORT": str(port)}, logs / f"{name}.log")
    stack.callback(process.stop)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", process)
    return base, process


def wave(base: str, run: str, args: argparse.Namespace, receipts: Path | None = None,
         mail_domain: str = "example.org") -> WrkResult:
    env = {"RENFORT_RUN": run, "RENFORT_MAIL_DOMAIN": mail_domain}
    if receipts is not None:
        env["RENFORT_RECEIPTS"] = str(receipts)
    return run_wrk(
        base + SIGNUP_PATH,
        "signup.lua",
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        env=env,
    )


def warm_up(base: str, run: str, args: argparse.Namespace) -> int:
    """Two seconds of the same load first, so start-up costs (pools, imports) stay out of the measured run."""
    result = run_wrk(
        base + SIGNUP_PATH,
        "signup.lua",
        duration=2,
        connections=args.connections,
        threads=args.threads,
        env={"RENFORT_RUN": run},
    )
    return result.count(202)


def saved_receipts(db: Postgres, path: Path) -> tuple[int, int] | None:
    """(accepted receipts, how many of them are in PostgreSQL), or None when receipts cannot be matched."""
    receipts = list(dict.fromkeys(path.read_text().split())) if path.exists() else []
    if not receipts:
        return None
    try:
        found = int(db.scalar("SELECT count(*) FROM volunteers WHERE receipt = ANY($1::text[])", receipts))
    except asyncpg.PostgresError:
        return None
    return len(receipts), found


@dataclass
class Platform:
    """The throwaway platform: the processes' environment, the Procfile commands, where its data lives."""

    env: dict[str, str]
    kinds: dict[str, str]
    database_url: str
    redis_url: str
    logs: Path
    postgres: LocalPostgres
    redis_server: LocalRedis
    mail_dir: Path | None = None  # where the mail sink stores each message it receives, one .eml file each


def start_platform(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> Platform:
    logs = tmp / "logs"
    logs.mkdir()
    postgres = LocalPostgres(tmp / "postgres", free_port())
    postgres.start()
    stack.callback(postgres.stop)
    postgres.create_database("renfort")
    redis_server = LocalRedis(tmp / "redis", free_port())
    redis_server.start()
    stack.callback(redis_server.stop)
    env = base_env(
        DATABASE_URL=postgres.url("renfort"),
        REDIS_URL=redis_server.url(0),
        SECRET_KEY=secrets.token_urlsafe(48),
        SIGNUP_IP_LIMIT_PER_MINUTE="0",
        WEB_CONCURRENCY=str(args.web_workers),
        ENVIRONMENT="loadtest",
        LOG_LEVEL="WARNING",
        # Welcome e-mails go to a closed loopback port unless --mail-sink: their jobs fail fast and retry later.
        SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
    )
    platform = Platform(env, procfile(), postgres.url("renfort"), redis_server.url(0), logs, postgres, redis_server)
    if args.mail_sink:
        platform.mail_dir = tmp / "mail"
        port = free_port()
        sink = Process("mailsink", f"python -m ops.mailsink --port {port} --dir {tmp / 'mail'}", env, logs / "mail.log")
        stack.callback(sink.stop)
        env["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    run_release(platform.kinds["release"], env, logs)
    return platform


def measure_ceiling(platform: Platform, args: argparse.Namespace) -> tuple[WrkResult, CpuWindow]:
    web_line = loopback(platform.kinds["web"])
    with ExitStack() as stack:
        bare_line = web_line.replace("app.asgi:app", BARE_APP)
        base, server = serve(stack, "ceiling", bare_line, platform.env, platform.logs)
        log(f"ceiling: {BARE_APP} under `{web_line}`")
        warm_up(base, "ceiling-warm", args)
        cpu = CpuWindow(server.pid)
        ceiling = wave(base, "ceiling", args)
        cpu.stop()
    log(f"ceiling: {ceiling.req_per_s:.0f} req/s, p99 {ceiling.p99_ms} ms, {cpu.server_cores:.2f} cores")
    return ceiling, cpu


def tally(db: Postgres, run: str, accepted: int, receipts: Path) -> dict[str, Any]:
    """Rows of the run, duplicated e-mails, and accepted sign-ups that never reached PostgreSQL."""
    rows = int(db.scalar("SELECT count(*) FROM volunteers WHERE email_normalized LIKE $1", run + ".%"))
    duplicates = int(
        db.scalar("SELECT count(*) FROM (SELECT email_normalized FROM volunteers GROUP BY 1 HAVING count(*) > 1) d")
    )
    matched = saved_receipts(db, receipts)
    if matched is not None and matched[0] == accepted and (matched[1] > 0 or rows == 0):
        lost, lost_by = matched[0] - matched[1], "receipts"  # exact: each 202's receipt looked up
    else:
        lost, lost_by = max(0, accepted - rows), "count"
    # `extra`: rows beyond the counted 202s. wrk stops with requests in flight that the server accepted but whose
    # answer it never read: at most one per connection; neither a loss nor a duplicate.
    return {
        "lost": lost,
        "duplicates": duplicates,
        "rows_saved": rows,
        "extra": max(0, rows - accepted),
        "lost_checked_by": lost_by,
    }


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    platform = start_platform(stack, tmp, args)
    ceiling, ceiling_cpu = measure_ceiling(platform, args)

    run = f"lt-{secrets.token_hex(4)}"
    base, web = serve(stack, "web", loopback(platform.kinds["web"]), platform.env, platform.logs)
    warm_accepted = warm_up(base, f"{run}-warmup", args)
    log(f"accept: {args.duration} s of sign-ups over {args.connections} connections, no worker running")
    cpu = CpuWindow(web.pid)
    signups = wave(base, run, args, receipts=tmp / "receipts.txt")
    cpu.stop()
    accepted = signups.count(202)
    accepted_per_s = accepted / signups.duration_s
    log(f"accept: {accepted} accepted ({accepted_per_s:.0f}/s), p99 {signups.p99_ms} ms, {cpu.server_cores:.2f} cores")

    db = Postgres(platform.database_url)
    stack.callback(db.close)
    redis = Redis.from_url(platform.redis_url)
    stack.callback(redis.close)
    rows_before = int(db.scalar("SELECT count(*) FROM volunteers"))
    backlog = pending(base, redis)
    log(f"drain: {backlog} pending, {rows_before} rows before workers; starting {args.drain_workers} workers")
    workers = []
    for number in range(1, args.drain_workers + 1):
        worker = Process(
            f"worker-{number}", platform.kinds["worker"], platform.env, platform.logs / f"worker-{number}.log"
        )
        stack.callback(worker.stop)
        workers.append(worker)
    drain = watch_drain(db, base, redis, workers, warm_accepted + accepted, args.settle, args.drain_timeout)
    log(f"drain: {drain.rows} rows, {drain.wall_seconds:.1f} s after workers started ({drain.rows_per_s:.0f} rows/s)")
    counts = tally(db, run, accepted, tmp / "receipts.txt")

    result = {
        "accepted_per_s": round(accepted_per_s, 1),
        "p50_ms": signups.p50_ms,
        "p99_ms": signups.p99_ms,
        "drain_rows_per_s": round(drain.rows_per_s, 1),
        "lost": counts.pop("lost"),
        "duplicates": counts.pop("duplicates"),
        "ceiling_ratio": round(accepted_per_s / ceiling.req_per_s, 3),
        "ceiling_req_per_s": round(ceiling.req_per_s, 1),
        "ceiling_p99_ms": ceiling.p99_ms,
        "accepted": accepted,
        # The machine may be shared: cores the web tier really got, what it did per CPU-second, idle left over.
        "web_cpu_cores": round(cpu.server_cores, 2),
        "accepted_per_cpu_s": round(accepted_per_s / cpu.server_cores, 1) if cpu.server_cores else None,
        "ceiling_per_cpu_s": round(ceiling.req_per_s / ceiling_cpu.server_cores, 1)
        if ceiling_cpu.server_cores
        else None,
        "machine_idle_cores": round(cpu.idle_cores, 2),
        "non_2xx": signups.requests - accepted,
        "statuses": {str(status): count for status, count in sorted(signups.statuses.items())},
        "socket_errors": signups.socket_errors,
        **counts,
        "rows_before_workers": rows_before,
        "backlog": backlog,
        "drain_s": round(drain.seconds, 2),
        "drain_wall_s": round(drain.wall_seconds, 2),
        "server": platform.kinds["web"].split()[0],
        "web_workers": args.web_workers,
        "drain_workers": args.drain_workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "mail": "sink" if args.mail_sink else "refused",
        "run": run,
    }
    result["targets_met"] = all(
        [
            result["accepted_per_s"] >= TARGETS["accepted_per_s"],
            result["p99_ms"] <= TARGETS["p99_ms"],
            result["drain_rows_per_s"] >= TARGETS["drain_rows_per_s"],
            result["lost"] == 0,
            result["duplicates"] == 0,
        ]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of load, for the ceiling and the wave")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY for the web and ceiling servers")
    parser.add_argument("--drain-workers", type=int, default=2, help="`worker` processes started for the drain")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds without growth that end a short drain")
    parser.add_argument("--drain-timeout", type=float, default=600.0, help="give up draining after this many s")
    parser.add_argument("--mail-sink", action="store_true", help="run ops.mailsink so welcome e-mails are sent")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs, receipts)")
    args = parser.parse_args()
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-bench-", failures=(asyncpg.PostgresError,))


if __name__ == "__main__":
    main()
