"""Dispatch commit benchmark: 100,000 proposals made, drained into PostgreSQL, their e-mails queued, nothing lost.

    python -m loadtests.bench_dispatch_commit [--volunteers 100000] [--missions 1000] [--workers 2] [--keep]

1. Starts a throwaway PostgreSQL and Redis (ops.services) in a temporary folder and runs the Procfile's `release`.
2. Seeds, with SQL only: a live national emergency, a national coordinator, a validated organisation, `--missions`
   published missions (a fifth priority) at communes drawn by population, with places summing to `--volunteers`,
   and `--volunteers` volunteers living at those missions' communes, so that every volunteer has a place in the
   plan and the plan holds `--volunteers` assignments.
3. Starts `--workers` worker processes (the Procfile's `worker`). E-mails go to a closed loopback port: their jobs
   stay queued (and retried), which is what `notifications_queued` counts; sending them is the SMTP relay's pace.
4. Plans: a run row as the coordinator's form writes it, and the job the page enqueues (`queues.dispatch.plan_run`,
   by dotted path); `plan_seconds` is that job's time, for information.
5. Commits: the status change the page makes, then the job it enqueues (`queues.dispatch.commit_run`). The clock
   runs from that enqueue until the run is committed, every proposal is in PostgreSQL and the applications queue is
   empty with no drain holding a batch (the e-mails are enqueued by the drain before it lets go of a batch).
6. Counts: `proposals` (rows of the run in PostgreSQL), `lost` (planned pairs with no row), `duplicates`
   (volunteers with two proposals), `oversold` (missions holding more than their places), `notifications_queued`
   (proposal e-mails in queued, scheduled or failed jobs).

Prints ONE JSON line on stdout; progress goes to stderr. Every process and server it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from loadtests.bench_signups import Postgres, run_release
from loadtests.harness import Process, base_env, log, procfile, run_benchmark
from ops.services import LocalPostgres, LocalRedis, free_port

TARGETS = {"commit_seconds": 60.0}
QUEUE = "renfort"
SLUG = "bench-mobilisation"


async def seed(url: str, args: argparse.Namespace) -> tuple[int, int, list[int]]:
    """(emergency id, coordinator id, mission ids); volunteers and missions written with COPY."""
    connection = await asyncpg.connect(url)
    try:
        communes = await connection.fetch(
            "SELECT code, postal_codes[1] AS postal_code, latitude, longitude, population FROM communes"
            " WHERE latitude IS NOT NULL AND longitude IS NOT NULL AND population > 0"
            " AND latitude <> 'NaN'::float8 AND longitude <> 'NaN'::float8"
        )
        rng = np.random.default_rng(args.seed)
        weights = np.array([c["population"] for c in communes], dtype=np.float64)
        at = rng.choice(len(communes), size=args.missions, p=weights / weights.sum())
        places = np.full(args.missions, args.volunteers // args.missions)
        places[: args.volunteers % args.missions] += 1
        user_id = await connection.fetchval(
            "INSERT INTO users (email, email_normalized) VALUES ('national@bench.example', 'national@bench.example')"
            " RETURNING id"
        )
        await connection.execute("INSERT INTO coordinator_scopes (user_id, department_code) VALUES ($1, NULL)",
                                 user_id)
        emergency_id = await connection.fetchval(
            "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status,"
            " created_by) VALUES ($1, 'Banc d''essai', 'Banc.', 'Bras.', '{}', '{}', 'live', $2) RETURNING id",
            SLUG, user_id,
        )
        organisation_id = await connection.fetchval(
            "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
            " VALUES ('Banc', 'association', '1 rue', $1, $2, 'Banc.', 'validated') RETURNING id",
            communes[0]["postal_code"], communes[0]["code"],
        )
        mission_ids = []
        for number, index in enumerate(at.tolist()):
            commune = communes[index]
            mission_id = await connection.fetchval(
                "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, places,"
                " open_to_minors, priority, emergency_slug, status) VALUES ($1, $2, 'Banc d''essai de mobilisation.',"
                " 'solidarite-insertion', '{}', false, $3, false, $4, $5, 'published') RETURNING id",
                organisation_id, f"Mission {number:04d}", int(places[number]), bool(rng.random() < 0.2), SLUG,
            )
            await connection.execute(
                "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude,"
                " longitude) VALUES ($1, 'Rue', $2, $3, $4, $5)",
                mission_id, commune["postal_code"], commune["code"], commune["latitude"], commune["longitude"],
            )
            mission_ids.append(int(mission_id))
        homes = rng.permutation(np.repeat(at, places))
        stamp = datetime.now(UTC)
        records: list[tuple[Any, ...]] = [
            (f"bench-{n}", f"b{n}@bench.example", f"b{n}@bench.example", "Camille", f"Nom{n}", date(1990, 1, 1),
             communes[i]["postal_code"], communes[i]["code"], ["solidarite-insertion"], "anytime", [], SLUG, stamp,
             stamp)
            for n, i in enumerate(homes.tolist())
        ]
        await connection.copy_records_to_table(
            "volunteers", records=records,
            columns=["receipt", "email", "email_normalized", "first_name", "last_name", "birth_date", "postal_code",
                     "commune_code", "domains", "availability", "skills", "emergency_slug", "consent_at",
                     "accepted_at"],
        )
        await connection.execute("ANALYZE")
        return int(emergency_id), int(user_id), mission_ids
    finally:
        await connection.close()


def wait_for(check: Any, timeout: float, what: str, workers: list[Process]) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not done after {timeout:.0f} s\n{workers[0].tail()}")
        if not any(worker.alive() for worker in workers):
            raise RuntimeError(f"{what}: every worker exited\n{workers[0].tail()}")
        time.sleep(0.05)
    return time.monotonic() - started


def notifications(redis: Redis) -> int:
    """Proposal e-mails in the queue's jobs, wherever they are (queued, scheduled for a retry, failed)."""
    count = 0
    for key in redis.scan_iter("rq:job:*", count=1000):
        job_id = key.decode().removeprefix("rq:job:")
        if ":" in job_id:
            continue
        try:
            job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        except NoSuchJobError:  # expired while scanning
            continue
        if job.func_name == "queues.mail.send_application_mails":
            count += sum(1 for item in job.kwargs.get("items", []) if item[2] == "dispatch_proposal")
    return count


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    logs = tmp / "logs"
    logs.mkdir()
    postgres = LocalPostgres(tmp / "postgres", free_port())
    postgres.start()
    stack.callback(postgres.stop)
    postgres.create_database("renfort")
    redis_server = LocalRedis(tmp / "redis", free_port())
    redis_server.start()
    stack.callback(redis_server.stop)
    env = base_env(DATABASE_URL=postgres.url("renfort"), REDIS_URL=redis_server.url(0),
                   SECRET_KEY=secrets.token_urlsafe(48), ENVIRONMENT="loadtest", LOG_LEVEL="WARNING",
                   SMTP_URL=f"smtp://127.0.0.1:{free_port()}")
    kinds = procfile()
    run_release(kinds["release"], env, logs)
    dsn = postgres.url("renfort").replace("postgresql+asyncpg://", "postgresql://")
    log(f"seeding {args.volunteers} volunteers and {args.missions} missions")
    started = time.perf_counter()
    emergency_id, user_id, mission_ids = asyncio.run(seed(dsn, args))
    log(f"seeded in {time.perf_counter() - started:.1f} s")

    db = Postgres(postgres.url("renfort"))
    stack.callback(db.close)
    redis = Redis.from_url(redis_server.url(0))
    stack.callback(redis.close)
    queue = Queue(QUEUE, connection=redis, serializer=JSONSerializer)
    workers = []
    for number in range(1, args.workers + 1):
        worker = Process(f"worker-{number}", kinds["worker"], env, logs / f"worker-{number}.log")
        stack.callback(worker.stop)
        workers.append(worker)

    parameters = {"pool": "les-deux", "domains": [], "availability": [], "max_km": args.max_km,
                  "mission_ids": mission_ids}
    run_id = int(db.scalar("INSERT INTO dispatch_runs (emergency_id, parameters, status, created_by)"
                           " VALUES ($1, $2::jsonb, 'planning', $3) RETURNING id",
                           emergency_id, json.dumps(parameters), user_id))
    queue.enqueue("queues.dispatch.plan_run", run_id=run_id, job_timeout=600)
    plan_seconds = wait_for(lambda: db.scalar("SELECT status FROM dispatch_runs WHERE id = $1", run_id) != "planning",
                            600, "planning", workers)
    planned = int(db.scalar("SELECT coalesce(cardinality(planned_volunteers), 0) FROM dispatch_runs WHERE id = $1",
                            run_id))
    log(f"planned {planned} assignments in {plan_seconds:.1f} s; committing")

    db.scalar("UPDATE dispatch_runs SET status = 'committing', committed_by = $2, commit_requested_at = now()"
              " WHERE id = $1 AND status = 'planned'", run_id, user_id)
    started = time.monotonic()
    queue.enqueue("queues.dispatch.commit_run", run_id=run_id, job_timeout=900)

    def done() -> bool:
        if db.scalar("SELECT status FROM dispatch_runs WHERE id = $1", run_id) != "committed":
            return False
        if redis.llen("renfort:applications:pending") or redis.scard("renfort:applications:consumers"):
            return False
        return int(db.scalar("SELECT count(*) FROM applications WHERE dispatch_run_id = $1", run_id)) >= int(
            db.scalar("SELECT (counts->>'proposed')::int FROM dispatch_runs WHERE id = $1", run_id))

    wait_for(done, args.timeout, "commit", workers)
    commit_seconds = time.monotonic() - started
    log(f"committed and drained in {commit_seconds:.1f} s; counting")

    proposals = int(db.scalar("SELECT count(*) FROM applications WHERE dispatch_run_id = $1 AND status = 'proposed'",
                              run_id))
    lost = int(db.scalar(
        "SELECT count(*) FROM dispatch_runs r, unnest(r.planned_missions, r.planned_volunteers) AS p(m, v)"
        " WHERE r.id = $1 AND NOT EXISTS (SELECT 1 FROM applications a WHERE a.mission_id = p.m"
        " AND a.volunteer_id = p.v AND a.dispatch_run_id = r.id)", run_id))
    duplicates = int(db.scalar("SELECT count(*) FROM (SELECT volunteer_id FROM applications WHERE dispatch_run_id = $1"
                               " GROUP BY 1 HAVING count(*) > 1) d", run_id))
    oversold = int(db.scalar(
        "SELECT count(*) FROM (SELECT m.id FROM missions m JOIN applications a ON a.mission_id = m.id"
        " AND a.status IN ('pending', 'accepted', 'done', 'proposed') GROUP BY m.id, m.places"
        " HAVING count(*) > m.places) o"))
    queued = notifications(redis)
    result: dict[str, Any] = {
        "commit_seconds": round(commit_seconds, 2),
        "proposals": proposals,
        "notifications_queued": queued,
        "lost": lost,
        "duplicates": duplicates,
        "oversold": oversold,
        "planned": planned,
        "plan_seconds": round(plan_seconds, 2),
        "proposals_per_s": round(proposals / commit_seconds, 1) if commit_seconds else None,
        "volunteers": args.volunteers,
        "missions": args.missions,
        "workers": args.workers,
        "counts": json.loads(db.scalar("SELECT counts::text FROM dispatch_runs WHERE id = $1", run_id)),
    }
    result["targets_met"] = bool(commit_seconds <= TARGETS["commit_seconds"] and lost == 0 and duplicates == 0
                                 and oversold == 0 and proposals == planned and queued == proposals)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--missions", type=int, default=1_000)
    parser.add_argument("--max-km", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="`worker` processes")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the commit after this many s")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs)")
    args = parser.parse_args()
    run_benchmark(bench, args, prefix="renfort-bench-dispatch-", failures=(asyncpg.PostgresError,))


if __name__ == "__main__":
    main()
