"""A campaign rehearsal with a verdict: a named scenario run headless with Locust against a running platform, its
SLOs checked, what it wrote checked against PostgreSQL, and every trace of it purged.

    python -m loadtests.rehearse SCENARIO [--host http://127.0.0.1:8000] [--duration 60s] [--users N] [--keep]

SCENARIO is a name (loadtests/scenarios/<name>.toml) or a path to such a file. The platform must run with the
rehearse command's OPS_TOKEN (seeding, sign-in links, integrity, purge go through /ops/rehearsal/…) and, when the
load comes from one address, with SIGNUP_IP_LIMIT_PER_MINUTE=0:

    OPS_TOKEN=… SIGNUP_IP_LIMIT_PER_MINUTE=0 ./ops/run          # then, elsewhere:
    OPS_TOKEN=… python -m loadtests.rehearse covid-evening

Writes Locust's HTML report and CSV stats to loadtests/runs/<scenario>-<timestamp>/ (with the records of what the
platform accepted and Locust's log), appends a row to loadtests/runs/history.csv, prints ONE JSON line on stdout
(progress on stderr) and exits 0 when every SLO is met, the integrity holds and the purge left nothing, 1 otherwise,
2 when the rehearsal could not run (platform unreachable, token missing, scenario invalid).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtests.harness import ROOT, base_env, group_cpu_seconds, log, machine_idle_seconds

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
RUNS = Path(__file__).resolve().parent / "runs"
MAX_DEFAULT_SECONDS = 600
DRAIN_TIMEOUT = 180.0  # seconds to wait for the queues to drain before judging the integrity
PURGE_TIMEOUT = 900.0  # a soak erases tens of thousands of people, one account deletion each
CHUNK = 10_000  # receipts or applications per integrity request (the endpoint's limit)
HIGHER_IS_BETTER = {"rps", "requests", "successes"}
METRICS = {"rps", "requests", "successes", "p50_ms", "p95_ms", "p99_ms", "error_rate", "failures"}
COORDINATOR = "coordination@demo.renfort.example"  # the demo's national coordinator (app/demo.py)
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class RehearsalError(Exception):
    """The rehearsal cannot run; the message says what to do."""


# Scenarios ---------------------------------------------------------------------------------------------------------


def seconds(raw: object) -> float:
    """`90`, `30s`, `5m`, `1h` → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(raw))
    if match is None:
        raise RehearsalError(f"unreadable duration {raw!r} (e.g. 30s, 5m, 90)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


@dataclass
class Slo:
    name: str
    metric: str
    target: float
    request: str = "*"  # a Locust request name, or "*" for every HTTP request

    @property
    def at_least(self) -> bool:
        return self.metric in HIGHER_IS_BETTER


@dataclass
class Scenario:
    name: str
    description: str
    duration_s: float
    users: dict[str, dict[str, Any]]  # class → count / weight / rate / wait
    total_users: int
    spawn_rate: float
    processes: int
    emergency: str
    seed: dict[str, Any] | None
    slos: list[Slo] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return list(self.users)

    @property
    def user_count(self) -> int:
        counted = sum(int(settings.get("count") or 0) for settings in self.users.values())
        weighted = any(not settings.get("count") for settings in self.users.values())
        return counted + (self.total_users if weighted else 0)


def _file_of(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" or os.sep in name:
        return path
    return SCENARIOS / f"{name}.toml"


def load_scenario(name: str, base: str | None = None) -> Scenario:
    """A scenario file; a `base` (in the file or given) supplies whatever the file does not say (soak)."""
    path = _file_of(name)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.toml")))
        raise RehearsalError(f"no scenario {name!r} ({path}); known scenarios: {known}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise RehearsalError(f"{path}: {error}") from error
    parent = base or data.get("base")
    if parent:
        inherited = load_scenario(str(parent))
        merged = {**_as_data(inherited), **{k: v for k, v in data.items() if k != "base"}}
        return _scenario(path.stem, merged)
    return _scenario(path.stem, data)


def _as_data(scenario: Scenario) -> dict[str, Any]:
    return {"description": scenario.description, "duration": scenario.duration_s, "users": scenario.users,
            "total_users": scenario.total_users, "spawn_rate": scenario.spawn_rate, "processes": scenario.processes,
            "emergency": scenario.emergency, "seed": scenario.seed,
            "slo": [{"name": s.name, "metric": s.metric, "target": s.target, "request": s.request}
                    for s in scenario.slos]}


def _scenario(name: str, data: dict[str, Any]) -> Scenario:
    users = data.get("users") or {}
    if not isinstance(users, dict) or not users:
        raise RehearsalError(f"{name}: no [users.<Class>] table (classes of loadtests/rehearsal_users.py)")
    slos = []
    for raw in data.get("slo") or []:
        metric = str(raw.get("metric", ""))
        if metric not in METRICS:
            raise RehearsalError(f"{name}: SLO {raw.get('name')!r}: unknown metric {metric!r} ({sorted(METRICS)})")
        slos.append(Slo(str(raw["name"]), metric, float(raw["target"]), str(raw.get("request") or "*")))
    return Scenario(
        name=name, description=str(data.get("description") or ""), duration_s=seconds(data.get("duration", 60)),
        users={str(k): dict(v) for k, v in users.items()}, total_users=int(data.get("total_users") or 0),
        spawn_rate=float(data.get("spawn_rate") or 50), processes=int(data.get("processes") or 0),
        emergency=str(data.get("emergency") or "covid-19"), seed=data.get("seed") or None, slos=slos,
    )


# The platform, over HTTP ---------------------------------------------------------------------------------------------


class Platform:
    def __init__(self, host: str, token: str | None) -> None:
        if urlsplit(host).scheme not in ("http", "https"):
            raise RehearsalError(f"--host must be an http:// or https:// URL, not {host!r}")
        self.host, self.token = host.rstrip("/"), token

    def call(self, method: str, path: str, body: Any = None, *, ops: bool = False, timeout: float = 60) -> Any:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if ops:
            headers["Authorization"] = f"Bearer {self.token or ''}"
        # http(s) only: the scheme was checked when the host was given.
        request = urllib.request.Request(self.host + path, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
                return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode(errors="replace")
        except urllib.error.HTTPError as error:
            raise PlatformError(error.code, error.read().decode(errors="replace")[:300]) from None

    def ops(self, path: str, body: Any) -> Any:
        return self.call("POST", "/ops/rehearsal/" + path, body, ops=True)


class PlatformError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status


def preflight(platform: Platform, scenario: Scenario, args: argparse.Namespace) -> None:
    try:
        platform.call("GET", "/health", timeout=5)
    except (OSError, PlatformError) as error:
        raise RehearsalError(f"the platform does not answer at {platform.host} ({error}): start it (./ops/run)"
                             ) from None
    if platform.token is None:
        raise RehearsalError("OPS_TOKEN is not set: run the platform with OPS_TOKEN=… and give this command the same "
                             "token (seeding, sign-in links, integrity and purge go through /ops/rehearsal)")
    try:
        platform.ops("integrity", {})
    except PlatformError as error:
        why = {404: "the platform has no OPS_TOKEN", 401: "this is not the platform's OPS_TOKEN"}
        raise RehearsalError(f"/ops/rehearsal refused: {why.get(error.status, error)}") from None
    if "EmergencyReader" in scenario.users:
        try:
            platform.call("GET", f"/urgence/{scenario.emergency}", timeout=10)
        except PlatformError as error:
            raise RehearsalError(f"no public emergency page /urgence/{scenario.emergency} ({error.status}): the demo "
                                 "data (./ops/run) has one, covid-19; set `emergency` in the scenario") from None
    if "Coordinator" in scenario.users and not args.coordinator_session:
        if urlsplit(platform.host).hostname not in LOCAL_HOSTS:
            raise RehearsalError("this scenario's coordinator must be signed in: against a remote host, give "
                                 "--coordinator-session FILE (\"<user id> <renfort_session> <csrftoken> <form token>\""
                                 ": a national coordinator's session signed in on that platform); locally, the "
                                 "sign-in link is read from the mail sink's folder")
        if not Path(args.mail_dir).is_dir():
            raise RehearsalError(f"no mail folder {args.mail_dir}: the coordinator reads its sign-in link from the "
                                 "mail sink ./ops/run starts (or give --mail-dir)")


# Running Locust ------------------------------------------------------------------------------------------------------


@dataclass
class LocustRun:
    exit_code: int
    wall_s: float
    cpu_s: float
    machine_busy_cores: float


def run_locust(scenario: Scenario, folder: Path, config: Path, args: argparse.Namespace) -> LocustRun:
    users = scenario.user_count
    command = [sys.executable, "-m", "locust", "-f", str(Path(__file__).parent / "rehearsal_users.py"), "--headless",
               "-u", str(users), "-r", str(scenario.spawn_rate), "-t", f"{int(scenario.duration_s)}s",
               "--host", args.host, "--csv", str(folder / "stats"), "--html", str(folder / "report.html"),
               "--only-summary", "--exit-code-on-error", "0", "--stop-timeout", "10", "--loglevel", "WARNING"]
    if scenario.processes:
        command += ["--processes", str(scenario.processes)]
    command += scenario.classes
    env = base_env(RENFORT_REHEARSAL=str(config), PYTHONPATH=str(ROOT), RENFORT_MAIL_DIR=str(args.mail_dir))
    if args.coordinator_session:
        env["RENFORT_COORDINATOR_SESSION"] = str(Path(args.coordinator_session).resolve())
    log(f"locust: {users} users of {', '.join(scenario.classes)} for {int(scenario.duration_s)} s"
        f" ({scenario.processes or 1} process{'es' if scenario.processes > 1 else ''}) against {args.host}")
    before, cores = resource.getrusage(resource.RUSAGE_CHILDREN), os.cpu_count() or 1
    idle, start = machine_idle_seconds(), time.monotonic()
    sampled = 0.0
    with open(folder / "locust.log", "wb") as output:
        # Its own process group: its CPU is sampled as a group (Locust's master does not always reap its forked
        # workers, so their time may never reach this process's children's usage), and it is stopped as one.
        locust = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            deadline = start + scenario.duration_s + 120
            while locust.poll() is None:
                sampled = max(sampled, group_cpu_seconds(locust.pid))
                if time.monotonic() > deadline:
                    raise RehearsalError("locust ran two minutes past its duration; stopped")
                time.sleep(0.5)
        finally:
            if locust.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(locust.pid, signal.SIGKILL)
                locust.wait()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = cores - (machine_idle_seconds() - idle) / wall
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return LocustRun(locust.returncode, wall, max(sampled, reaped), busy)


def read_stats(folder: Path) -> dict[str, dict[str, float]]:
    """Locust's `stats_stats.csv`: request name → count, failures, rps, p50/p95/p99 (ms); "*" = every HTTP
    request (Locust's Aggregated row, its counts without the non-HTTP lines)."""
    rows: dict[str, dict[str, float]] = {}
    path = folder / "stats_stats.csv"
    if not path.is_file():
        return rows

    def number(value: str) -> float:
        try:
            return float(value)
        except ValueError:
            return float("nan")

    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            name = "*" if row["Name"] == "Aggregated" else row["Name"]
            figures = {"requests": number(row["Request Count"]), "failures": number(row["Failure Count"]),
                       "rps": number(row["Requests/s"]), "p50_ms": number(row["50%"]),
                       "p95_ms": number(row["95%"]), "p99_ms": number(row["99%"]), "http": 1.0}
            if name != "*" and row["Type"] not in ("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH"):
                figures["http"] = 0.0
            rows[name] = figures
    if "*" in rows:
        extra = [f for n, f in rows.items() if n != "*" and not f["http"]]
        rows["*"]["requests"] -= sum(f["requests"] for f in extra)
        rows["*"]["failures"] -= sum(f["failures"] for f in extra)
    for figures in rows.values():
        figures["error_rate"] = figures["failures"] / figures["requests"] if figures["requests"] else 0.0
        figures["successes"] = figures["requests"] - figures["failures"]
    return rows


def judge(slos: list[Slo], stats: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    verdicts = []
    for slo in slos:
        measured = stats.get(slo.request, {}).get(slo.metric)
        if measured is None and slo.metric in ("requests", "successes", "failures", "error_rate", "rps"):
            measured = 0.0  # no such request at all: nothing was served
        usable = measured is not None and measured == measured  # NaN: no percentile without requests
        met = usable and (measured >= slo.target if slo.at_least else measured <= slo.target)  # type: ignore[operator]
        verdicts.append({"name": slo.name, "request": slo.request, "metric": slo.metric, "target": slo.target,
                         "measured": round(measured, 4) if usable else None, "met": bool(met)})  # type: ignore[arg-type]
    return verdicts


# Integrity and purge ----------------------------------------------------------------------------------------------


def read_records(folder: Path) -> tuple[list[str], list[tuple[int, str]]]:
    receipts: set[str] = set()
    applications: set[tuple[int, str]] = set()
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "S":
                receipts.add(parts[1])
            elif len(parts) >= 3 and parts[0] == "A":
                applications.add((int(parts[1]), parts[2]))
    return sorted(receipts), sorted(applications)


SUMS = ("signups_accepted", "signups_saved", "signups_missing", "signups_doubled", "applications_accepted",
        "applications_saved", "applications_missing", "applications_doubled")


def _through_endpoint(platform: Platform, receipts: list[str], applications: list[tuple[int, str]],
                      missions: list[int]) -> dict[str, Any]:
    total: dict[str, Any] = {name: 0 for name in SUMS}
    chunks = max(1, -(-len(receipts) // CHUNK), -(-len(applications) // CHUNK))
    for index in range(chunks):
        part = platform.ops("integrity", {
            "receipts": receipts[index * CHUNK:(index + 1) * CHUNK],
            "applications": [list(pair) for pair in applications[index * CHUNK:(index + 1) * CHUNK]],
            "missions": missions if index == 0 else []})
        for name in SUMS:
            total[name] += int(part[name])
        if index == 0:
            total["missions_checked"], total["oversold"] = int(part["missions_checked"]), int(part["oversold"])
            total["queues_empty"] = bool(part["queues_empty"])
    return total


async def _through_database(url: str, receipts: list[str], applications: list[tuple[int, str]],
                            missions: list[int]) -> dict[str, Any]:
    """The same questions as /ops/rehearsal/integrity, in read-only SQL."""
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"),
                                       server_settings={"default_transaction_read_only": "on"})
    try:
        saved = {r: n for r, n in await connection.fetch(
            "SELECT receipt, count(*) FROM volunteers WHERE receipt = ANY($1::text[]) GROUP BY receipt", receipts)}
        found = {(m, e): n for m, e, n in await connection.fetch(
            "SELECT w.m, w.e, count(a.id) FROM unnest($1::bigint[], $2::text[]) AS w(m, e)"
            " JOIN volunteers v ON v.email_normalized = w.e"
            " JOIN applications a ON a.volunteer_id = v.id AND a.mission_id = w.m GROUP BY w.m, w.e",
            [m for m, _ in applications], [e for _, e in applications])}
        checked = sorted(set(missions) | {m for m, _ in applications})
        excess, count = await connection.fetchrow(
            "SELECT coalesce(sum(greatest(held - places, 0)), 0), count(*) FROM (SELECT m.places, count(a.id)"
            " FILTER (WHERE a.status IN ('pending', 'accepted', 'done', 'proposed')) AS held FROM missions m"
            " LEFT JOIN applications a ON a.mission_id = m.id WHERE m.id = ANY($1::bigint[]) GROUP BY m.id) AS x",
            checked)
    finally:
        await connection.close()
    return {"signups_accepted": len(receipts), "signups_saved": len(saved),
            "signups_missing": len(receipts) - len(saved), "signups_doubled": sum(n - 1 for n in saved.values()),
            "applications_accepted": len(applications), "applications_saved": len(found),
            "applications_missing": len(applications) - len(found),
            "applications_doubled": sum(n - 1 for n in found.values()), "missions_checked": int(count),
            "oversold": int(excess)}


def queues_empty(platform: Platform) -> bool:
    queue = (platform.call("GET", "/ready", timeout=10) or {}).get("queue") or {}
    return not any(queue.get(name) for name in ("signups_pending", "signups_in_flight", "applications_pending",
                                                "applications_in_flight"))


def check_integrity(platform: Platform, folder: Path, missions: list[int], database_url: str | None,
                    timeout: float) -> dict[str, Any]:
    """Waits (bounded) for the queues to drain and every accepted write to be found, then reports."""
    receipts, applications = read_records(folder)
    log(f"integrity: {len(receipts)} sign-ups and {len(applications)} applications accepted; waiting for the drain")
    start = time.monotonic()
    while True:
        if database_url:
            found = asyncio.run(_through_database(database_url, receipts, applications, missions))
            found["queues_empty"] = queues_empty(platform)
        else:
            found = _through_endpoint(platform, receipts, applications, missions)
        complete = not (found["signups_missing"] or found["applications_missing"])
        if (found["queues_empty"] and complete) or time.monotonic() - start > timeout:
            break
        time.sleep(2)
    found["drained"] = bool(found.pop("queues_empty"))
    found["waited_s"] = round(time.monotonic() - start, 1)
    found["through"] = "database" if database_url else "ops endpoint"
    found["ok"] = not any(found[name] for name in ("signups_missing", "signups_doubled", "applications_missing",
                                                   "applications_doubled", "oversold"))
    return found


def purge(platform: Platform, run: str, timeout: float) -> dict[str, Any]:
    total: dict[str, Any] = {}
    start = time.monotonic()
    while True:
        round_ = platform.ops("purge", {"run": run})
        for name, value in round_.items():
            total[name] = value if name == "remaining" else total.get(name, 0) + value
        if not round_["remaining"] or not round_["people"] or time.monotonic() - start > timeout:
            break
        log(f"purge: {round_['remaining']} rehearsal people left")
    total["ok"] = not total["remaining"] and not total["refused"]
    total["seconds"] = round(time.monotonic() - start, 1)
    return total


# History ----------------------------------------------------------------------------------------------------------


def append_history(path: Path, row: dict[str, Any]) -> None:
    """One row per run; a column per SLO figure, the header growing when a scenario brings new ones."""
    rows: list[dict[str, Any]] = []
    header: list[str] = []
    if path.is_file():
        with path.open(newline="") as file:
            reader = csv.DictReader(file)
            header, rows = list(reader.fieldnames or []), list(reader)
    header += [name for name in row if name not in header]
    rows.append(row)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


# The command -----------------------------------------------------------------------------------------------------


def apply_arguments(scenario: Scenario, args: argparse.Namespace) -> None:
    if args.duration:
        scenario.duration_s = seconds(args.duration)
    elif scenario.duration_s > MAX_DEFAULT_SECONDS:
        scenario.duration_s = MAX_DEFAULT_SECONDS
    if args.processes is not None:
        scenario.processes = args.processes
    if args.users:  # scales every class, keeping their proportions
        factor = args.users / max(1, scenario.user_count)
        for settings in scenario.users.values():
            if settings.get("count"):
                settings["count"] = max(1, round(settings["count"] * factor))
        scenario.total_users = max(1, round(scenario.total_users * factor)) if scenario.total_users else 0


def rehearse(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    scenario = load_scenario(args.scenario, args.base)
    apply_arguments(scenario, args)
    platform = Platform(args.host, os.environ.get("OPS_TOKEN") or None)
    preflight(platform, scenario, args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = f"r{stamp[2:].replace('-', '')}{secrets.token_hex(2)}"  # in addresses, a slug and a URL: plain
    folder = Path(args.runs) / f"{scenario.name}-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    log(f"run {run}: {scenario.name} — {scenario.description}; folder {folder}")
    load = os.getloadavg()[0]
    seeded: dict[str, Any] = {}
    try:
        if scenario.seed:
            seeded = platform.ops("seed", {"run": run, "missions": int(scenario.seed.get("missions", 3)),
                                           "places": int(scenario.seed.get("places", 5)),
                                           "commune_code": str(scenario.seed.get("commune", "69123")),
                                           "emergency": bool(scenario.seed.get("emergency", False))})
            log(f"seeded {len(seeded['mission_ids'])} missions of {seeded['places']} places"
                + (f", emergency {seeded['emergency']}" if seeded.get("emergency") else ""))
        config = folder / "config.json"
        config.write_text(json.dumps({
            "run": run, "records": str(folder / "records"), "emergency": scenario.emergency,
            "missions": seeded.get("mission_ids", []), "classes": scenario.users,
            "dispatch": {"emergency": seeded.get("emergency"), "missions": seeded.get("mission_ids", []),
                         "coordinator": args.coordinator},
        }, indent=1))
        locust = run_locust(scenario, folder, config, args)
        if locust.exit_code != 0:
            tail = (folder / "locust.log").read_text(errors="replace")[-2000:]
            log(f"locust exited with {locust.exit_code}:\n{tail}")
        stats = read_stats(folder)
        if stats.get("POST /api/v1/volunteers", {}).get("failures"):
            failures = (folder / "stats_failures.csv").read_text(errors="replace") if (
                folder / "stats_failures.csv").is_file() else ""
            if "429" in failures:
                log("sign-ups answered 429: the platform limits sign-ups per address; run it with "
                    "SIGNUP_IP_LIMIT_PER_MINUTE=0 for a rehearsal from one machine")
        slos = judge(scenario.slos, stats)
        integrity = check_integrity(platform, folder / "records", seeded.get("mission_ids", []), args.database_url,
                                    args.drain_timeout)
        purged = None if args.keep else purge(platform, run, PURGE_TIMEOUT)
        if purged is not None:
            log(f"purge: {purged['people']} people, {purged['missions']} missions, {purged['organisations']} "
                f"organisations, {purged['emergencies']} emergencies; {purged['remaining']} left")
        passed = (locust.exit_code == 0 and all(slo["met"] for slo in slos) and integrity["ok"]
                  and (purged is None or purged["ok"]))
    except BaseException:
        if not args.keep:  # whatever stopped it, what it wrote goes
            log("the rehearsal stopped early; purging what it wrote")
            with contextlib.suppress(Exception):
                purge(platform, run, PURGE_TIMEOUT)
        raise
    everything = stats.get("*", {})
    result = {
        "scenario": scenario.name, "host": args.host, "run": run, "duration_s": scenario.duration_s,
        "users": scenario.user_count, "passed": passed, "slos": slos, "integrity": integrity, "purge": purged,
        "report": str(folder / "report.html"), "folder": str(folder), "missions": seeded.get("mission_ids", []),
        "requests": int(everything.get("requests", 0)), "failures": int(everything.get("failures", 0)),
        "locust": {"processes": scenario.processes or 1, "exit_code": locust.exit_code,
                   "cpu_s": round(locust.cpu_s, 1), "cores": round(locust.cpu_s / locust.wall_s, 2),
                   "wall_s": round(locust.wall_s, 1)},
        "machine": {"cpus": os.cpu_count(), "busy_cores": round(locust.machine_busy_cores, 2),
                    "loadavg_1m_before": round(load, 2)},
    }
    row = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenario": scenario.name, "host": args.host,
           "duration_s": scenario.duration_s, "users": scenario.user_count, "passed": passed,
           "integrity_ok": integrity["ok"], **{slo["name"]: slo["measured"] for slo in slos},
           "locust_cores": result["locust"]["cores"], "machine_busy_cores": result["machine"]["busy_cores"],
           "run": run, "report": result["report"]}
    append_history(Path(args.runs) / "history.csv", row)
    return result, 0 if passed else 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help="a name in loadtests/scenarios/ or a path to a .toml file")
    parser.add_argument("--host", default="http://127.0.0.1:8000", help="the running platform")
    parser.add_argument("--duration", help="instead of the scenario's (30s, 5m, seconds)")
    parser.add_argument("--users", type=int, help="total users, every class scaled in proportion")
    parser.add_argument("--processes", type=int, help="Locust worker processes instead of the scenario's (0: one)")
    parser.add_argument("--base", help="the scenario a soak runs, instead of the one its file names")
    parser.add_argument("--keep", action="store_true", help="leave the rehearsal's data in place (no purge)")
    parser.add_argument("--runs", default=str(RUNS), help="where the run folders and history.csv go")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="check the integrity in PostgreSQL (read-only) rather than through the ops endpoint")
    parser.add_argument("--drain-timeout", type=float, default=DRAIN_TIMEOUT, help="seconds to wait for the drain")
    parser.add_argument("--mail-dir", default=os.environ.get("RENFORT_MAIL_DIR", str(ROOT / ".local" / "mail")),
                        help="where the local mail sink stores e-mails (the coordinator's sign-in link)")
    parser.add_argument("--coordinator", default=COORDINATOR, help="the coordinator's address (local runs)")
    parser.add_argument("--coordinator-session", default=os.environ.get("RENFORT_COORDINATOR_SESSION"),
                        help="a file with a signed-in coordinator's session (required against a remote host)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        result, code = rehearse(args)
    except (RehearsalError, PlatformError) as error:
        log(f"rehearsal not run: {error}")
        return 2
    print(json.dumps(result), flush=True)
    log("passed" if code == 0 else "FAILED: " + ", ".join(
        [s["name"] for s in result["slos"] if not s["met"]] + ([] if result["integrity"]["ok"] else ["integrity"])
        + ([] if not result["purge"] or result["purge"]["ok"] else ["purge"])))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
