"""`bench_faults --host` against a platform that runs without it: the Procfile's web (granian, 2 workers) and worker on
throwaway PostgreSQL and Valkey, kept up by a small process manager that restarts what exits and says which pid runs
which in a state file. Whatever the benchmark kills under its traffic, nothing accepted is lost or doubled, and its
one JSON line and its exit status say so; what it may not do to that platform, it skips and says why."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from loadtests.bench_faults import Abilities, healthy, plan
from loadtests.bench_missions import Postgres
from loadtests.bench_signups import Platform, start_platform
from loadtests.harness import Process, free_port, loopback
from ops.processes import scratch_folder
from tests.conftest import ROOT

OPS_TOKEN = "fault-bench-host-ops-token"
PHASES = "steady,worker_killed,web_killed,postgres_stopped,redis_full,accounts_deleted"
KEYS = {"accepted", "persisted", "lost", "stuck", "duplicates", "oversold", "dead_letters", "resurrected", "errors",
        "seconds", "signups", "applications", "dead_letters_by_queue", "deleted_people", "worker_exits", "phases"}


class Manager:
    """What a process manager does for a platform: starts its processes, starts again the ones that exit, and keeps
    a state file of which pid runs which (the format `bench_faults --host --state` reads)."""

    def __init__(self, commands: dict[str, str], env: dict[str, str], logs: Path, state: Path) -> None:
        self.commands, self.env, self.logs, self.state = commands, env, logs, state
        self.starts: Counter[str] = Counter()
        self.current: dict[str, Process] = {}
        self.every: list[Process] = []
        self.stopping = threading.Event()
        for name in commands:
            self._start(name)
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()

    def _start(self, name: str) -> None:
        self.starts[name] += 1
        label = f"{name}.{self.starts[name]}"
        process = Process(label, self.commands[name], self.env, self.logs / f"{label}.log")
        self.current[name] = process
        self.every.append(process)
        state = {"restarts": sorted(self.commands), "processes": {key: p.pid for key, p in self.current.items()}}
        self.state.with_suffix(".tmp").write_text(json.dumps(state))
        self.state.with_suffix(".tmp").replace(self.state)

    def _watch(self) -> None:
        while not self.stopping.wait(0.2):
            for name, process in list(self.current.items()):
                if not process.alive():
                    self._start(name)

    def stop(self) -> None:
        self.stopping.set()
        self.watcher.join(10)
        for process in self.every:
            process.stop()


def run_against_host(tmp: Path) -> tuple[subprocess.CompletedProcess[str], int | None]:
    """Starts the platform, runs the benchmark against it; returns its outcome and how many rows of the run's people
    are left in PostgreSQL afterwards (None when it printed no run)."""
    with ExitStack() as stack:
        platform: Platform = start_platform(stack, tmp, argparse.Namespace(web_workers=2, mail_sink=False))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**platform.env, "PORT": str(port), "BASE_URL": base, "OPS_TOKEN": OPS_TOKEN,
               "DRAIN_LEASE_SECONDS": "3", "SIGNIN_IP_LIMIT_PER_MINUTE": "0", "LOG_LEVEL": "WARNING"}
        state = tmp / "run.json"
        manager = Manager({"web": loopback(platform.kinds["web"]), "worker": platform.kinds["worker"]}, env,
                          platform.logs, state)
        stack.callback(manager.stop)
        assert healthy(base, 60), (platform.logs / "web.1.log").read_text()[-2000:]
        command = [
            sys.executable, "-m", "loadtests.bench_faults", "--host", base, "--state", str(state),
            "--database-url", platform.database_url, "--redis-url", platform.redis_url,
            "--phases", PHASES, "--allow-service-faults", "--postgres-dir", str(tmp / "postgres"),
            "--steady", "2", "--outage", "3", "--lease", "3", "--applicants", "10", "--apply-missions", "10",
            "--deletions", "2", "--signup-rate", "10", "--apply-rate", "2", "--budget", "240",
        ]
        outcome = subprocess.run(command, cwd=ROOT, env={**os.environ, "OPS_TOKEN": OPS_TOKEN}, capture_output=True,
                                 text=True, timeout=480, check=False)
        run = json.loads(outcome.stdout or "{}").get("run")
        if run is None:
            return outcome, None
        db = Postgres(platform.database_url)
        try:
            return outcome, int(db.scalar("SELECT count(*) FROM volunteers WHERE email_normalized LIKE $1", run + ".%"))
        finally:
            db.close()


def test_bench_faults_on_a_running_platform_loses_and_doubles_nothing_while_it_kills_its_processes() -> None:
    tmp = scratch_folder("renfort-fault-host-")
    try:
        outcome, rows_left = run_against_host(tmp)
        assert outcome.returncode == 0, outcome.stderr[-6000:]
        lines = outcome.stdout.strip().splitlines()
        assert len(lines) == 1, outcome.stdout
        result = json.loads(lines[0])
        assert set(result) >= KEYS and result["mode"] == "host"
        assert {key: result[key] for key in ("lost", "duplicates", "oversold", "resurrected", "stuck", "errors")} == {
            "lost": 0, "duplicates": 0, "oversold": 0, "resurrected": 0, "stuck": 0, "errors": 0}
        signups, applications = result["signups"], result["applications"]
        assert signups["accepted"] > 0 and signups["persisted"] == signups["accepted"] - signups["deleted"] - signups[
            "dead_lettered"]
        assert applications["accepted"] > 0
        assert applications["persisted"] == applications["accepted"] - applications["dead_lettered"]

        assert list(result["phases"]) == ["steady", "worker_killed", "web_killed", "postgres_stopped",
                                          "accounts_deleted"]
        assert list(result["skipped"]) == ["redis_full"] and "maxmemory" in result["skipped"]["redis_full"]
        assert result["phases"]["worker_killed"]["restarted"] is True
        web = result["phases"]["web_killed"]
        assert web["granian_workers"] == 2 and (web["granian_respawned"] or web["web_back"])
        assert web["server_back"] is True and result["web_restarts"] >= 1  # the manager started it again
        assert web["server_burst"]["signups"] > 0 and web["server_burst"]["applications"] > 0  # on their way as it died
        assert result["deleted_people"] == 2

        # A rehearsal leaves nothing behind: the run's people are purged through the platform's endpoint.
        assert result["purged"]["remaining"] == 0 and result["purged"]["people"] > 0
        assert rows_left == 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_on_a_platform_that_restarts_nothing_only_what_stops_nothing_runs() -> None:
    """Today's ./ops/run: one process exiting stops them all, and granian exits when one of its workers dies."""
    today = Abilities(worker_restarts=False, granian_respawns=False, web_restarts=False, service_faults=False,
                      postgres_server=False, redis_server=False, redis_fillable=False)
    chosen, skipped = plan(["steady", "worker_killed", "web_killed", "postgres_stopped", "postgres_slow",
                            "redis_restarted", "redis_full", "accounts_deleted"], today)
    assert chosen == ["steady", "accounts_deleted"]
    assert "restarts" in skipped["worker_killed"] and "--respawn-failed-workers" in skipped["web_killed"]
    assert all("--allow-service-faults" in skipped[name]
               for name in ("postgres_stopped", "postgres_slow", "redis_restarted", "redis_full"))

    respawning = Abilities(worker_restarts=False, web_restarts=False, service_faults=True, postgres_server=False)
    chosen, skipped = plan(["web_killed", "postgres_stopped", "postgres_slow"], respawning)
    assert chosen == ["web_killed", "postgres_slow"] and "--postgres-dir" in skipped["postgres_stopped"]
