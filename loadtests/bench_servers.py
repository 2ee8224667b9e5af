"""Which ASGI server: the bare app (loadtests.bare_app) under each candidate, same workers, same wrk load.

    python -m loadtests.bench_servers [--duration 10] [--connections 64] [--workers 2] [--rounds 3]
                                     [--servers granian,uvicorn]

Servers take turns for --rounds rounds (default 3). Prints one JSON line per server on stdout, medians over
the rounds: POST (sign-up body, msgspec validation) and GET (a fixed page) requests per second and latency
percentiles. `granian` is the Procfile's `web` line; the other names are variants worth a look (`--servers all`
runs every one). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from loadtests.harness import (
    CpuWindow,
    Process,
    base_env,
    free_port,
    log,
    loopback,
    procfile,
    require_wrk,
    run_wrk,
    wait_http,
)

BARE = "loadtests.bare_app:app"
GRANIAN = "granian --interface asgi --host 0.0.0.0 --port ${PORT:-8000} --workers ${WEB_CONCURRENCY:-2} --loop uvloop"


def granian_line() -> str:
    """The Procfile's web line pointed at the bare app (the brief's line if there is no Procfile yet)."""
    try:
        web = procfile()["web"]
    except (FileNotFoundError, KeyError):
        web = f"{GRANIAN} app.asgi:app"
    return loopback(web.replace("app.asgi:app", BARE))


def server_lines() -> dict[str, str]:
    granian = granian_line()
    return {
        "granian": granian,
        "uvicorn": "uvicorn --host 127.0.0.1 --port ${PORT} --workers ${WEB_CONCURRENCY} --loop uvloop "
        f"--http httptools --no-access-log --log-level warning {BARE}",
        "granian-http1": granian.replace(BARE, "--http 1 " + BARE),
        "granian-rust-tasks": granian.replace(BARE, "--task-impl rust " + BARE),
        "granian-st": granian.replace(BARE, "--runtime-mode st " + BARE),
        "granian-backpressure": granian.replace(BARE, "--backpressure 32 " + BARE),
    }


def measure(name: str, command: str, *, workers: int, duration: int, connections: int, logs: Path) -> dict:
    port = free_port()
    env = base_env(PORT=str(port), WEB_CONCURRENCY=str(workers))
    base = f"http://127.0.0.1:{port}"
    log(f"{name}: {command}")
    server = Process(name, command, env, logs / f"{name}.log")
    try:
        wait_http(f"{base}/health", server)
        run_wrk(f"{base}/api/v1/volunteers", "signup.lua", duration=2, connections=connections)  # warm-up
        post_cpu = CpuWindow(server.pid)
        post = run_wrk(f"{base}/api/v1/volunteers", "signup.lua", duration=duration, connections=connections)
        post_cpu.stop()
        get_cpu = CpuWindow(server.pid)
        get = run_wrk(f"{base}/page", "get.lua", duration=duration, connections=connections)
        get_cpu.stop()
    finally:
        server.stop()
    return {
        "server": name,
        "workers": workers,
        "connections": connections,
        "post_req_per_s": round(post.req_per_s),
        "post_p50_ms": post.p50_ms,
        "post_p99_ms": post.p99_ms,
        "post_non_2xx": post.requests - post.count(202),
        "get_req_per_s": round(get.req_per_s),
        "get_p50_ms": get.p50_ms,
        "get_p99_ms": get.p99_ms,
        "get_non_2xx": get.requests - get.count(200),
        "socket_errors": post.socket_errors + get.socket_errors,
        # Per CPU-second the server really got: comparable across runs on a machine other sessions share.
        "post_cpu_cores": round(post_cpu.server_cores, 2),
        "post_req_per_cpu_s": round(post.req_per_s / post_cpu.server_cores) if post_cpu.server_cores else 0,
        "get_cpu_cores": round(get_cpu.server_cores, 2),
        "get_req_per_cpu_s": round(get.req_per_s / get_cpu.server_cores) if get_cpu.server_cores else 0,
        "machine_idle_cores": round(min(post_cpu.idle_cores, get_cpu.idle_cores), 2),
    }


def median_of(samples: list[dict]) -> dict:
    """Per key, the median over rounds (a shared 2-core machine is noisy); the spread of POST req/s as well."""
    out = dict(samples[0])
    for key, value in samples[0].items():
        if isinstance(value, int | float) and key not in ("workers", "connections"):
            out[key] = statistics.median(sample[key] for sample in samples)
    posts = [sample["post_req_per_s"] for sample in samples]
    out.update(rounds=len(samples), post_req_per_s_min=min(posts), post_req_per_s_max=max(posts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server and method")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--rounds", type=int, default=3, help="servers are measured in turn, this many times")
    parser.add_argument("--servers", default="granian,uvicorn", help="comma-separated names, or 'all'")
    args = parser.parse_args()
    require_wrk()
    lines = server_lines()
    names = list(lines) if args.servers == "all" else args.servers.split(",")
    samples: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="renfort-servers-") as tmp:
        for round_number in range(1, args.rounds + 1):
            for name in names:  # interleaved, so a burst of noise from elsewhere does not land on one server only
                log(f"round {round_number}/{args.rounds}, load average {os.getloadavg()[0]:.2f}")
                sample = measure(
                    name,
                    lines[name],
                    workers=args.workers,
                    duration=args.duration,
                    connections=args.connections,
                    logs=Path(tmp),
                )
                log(json.dumps(sample))
                samples[name].append(sample)
    for name in names:
        print(json.dumps(median_of(samples[name])), flush=True)


if __name__ == "__main__":
    main()
