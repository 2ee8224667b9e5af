"""The mission benchmark: searching missions from the cache, then a rush of signed-in volunteers applying.

    python -m loadtests.bench_missions [--duration 15] [--connections 64] [--volunteers 600] [--keep]

1. Starts a throwaway PostgreSQL and Redis (ops.services) and a mail sink, runs the Procfile's `release`, then
   writes validated organisations and published missions straight into PostgreSQL, at real communes of several
   departments (read from `communes`, drawn by population).
2. Ceiling: the bare app's GET page under the Procfile's `web` line, for `search_ceiling_ratio`.
3. Search: starts `web`, asks every query of a fixed set once (which fills the cache), then GETs them in turn
   with wrk for `--duration` seconds.
4. Volunteers, honestly: each signs up over the API, `worker` processes drain the sign-ups into PostgreSQL, then
   each signs in through the real flow (form, e-mailed link read from the mail sink, confirmation): the
   `renfort_session` cookie and CSRF token it ends with are what the rush sends.
5. Rush: the workers stop, and the volunteers POST "candidater" forms with wrk for `--duration` seconds, each
   (volunteer, mission) pair at most once, on missions with few places (5 to 200) and many more applicants. Every
   answered pair and its outcome is recorded from the 303's Location.
6. Drain and tally: workers drain the application queue into PostgreSQL; then `lost` (answered pending or
   wait-listed, no row) and `oversold` (places held beyond a mission's places) are counted there.

Prints ONE JSON line on stdout (search_req_per_s, search_p99_ms, apply_per_s, apply_p99_ms, oversold, lost and
informative keys); progress goes to stderr. Exits 2 when wrk is missing. Every process and server it starts is
stopped on the way out, Ctrl-C included. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import random
import re
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import asyncpg
import httpx
from redis import Redis

from loadtests import bench_signups
from loadtests.bench_signups import Platform, serve, start_platform
from loadtests.harness import CpuWindow, Process, WrkResult, log, loopback, require_wrk, run_benchmark, run_wrk

BARE_APP = "loadtests.bare_app:app"
APPLICATIONS_PENDING = "renfort:applications:pending"
APPLICATIONS_CONSUMERS = "renfort:applications:consumers"
HOLDING = ("pending", "accepted", "done", "proposed")
APPLIED = ("pending", "waitlisted")
LINK_SUBJECT = "Votre lien de connexion à Renfort"
TARGETS = {"search_req_per_s": 3000, "search_p99_ms": 100, "apply_per_s": 1500}

# Load-test fixtures: one large town per department (INSEE code, a postal code of it) where searches are centred;
# the missions themselves go to the department's communes as the `communes` table has them.
CENTRES = [
    ("69123", "69001"), ("75056", "75011"), ("13055", "13001"), ("33063", "33000"), ("59350", "59000"),
    ("31555", "31000"), ("44109", "44000"), ("67482", "67000"), ("34172", "34000"), ("35238", "35000"),
]
# Real postal code → commune pairs for the sign-ups (the API checks that they match).
HOMES = [("69003", "69123"), ("75011", "75056"), ("13001", "13055"), ("33000", "33063"), ("59000", "59350")]
DOMAINS = ["solidarite-insertion", "sante-pour-tous", "prevention-protection", "education-pour-tous",
           "protection-nature"]
# Few places, so that the rush's applicants (about a hundred per mission) mostly end up wait-listed.
RUSH_PLACES = [5, 8, 10, 12, 15, 20, 30, 50, 100, 200]
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')
LINK = re.compile(r"/connexion/lien\?jeton=(\S+)")


class Postgres(bench_signups.Postgres):
    """bench_signups' connection, with row reads and writes for seeding and the tally."""

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self._loop.run_until_complete(self._conn.fetch(sql, *args))

    def execute(self, sql: str, *args: Any) -> None:
        self._loop.run_until_complete(self._conn.execute(sql, *args))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._loop.run_until_complete(self._conn.executemany(sql, rows))


# Seeding ---------------------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    missions: int
    rush: list[int]  # missions the measured rush applies to
    warm: list[int]  # missions the rush's warm-up applies to (other volunteers' pairs never repeat)
    queries: list[str]  # search paths, each one cache entry


def seed(db: Postgres, args: argparse.Namespace) -> Seeded:
    """Validated organisations (one per department) and published missions at the departments' communes."""
    rng = random.Random(args.seed)
    centres = db.fetch(
        "SELECT code, department_code, postal_codes, latitude, longitude FROM communes WHERE code = ANY($1)",
        [code for code, _ in CENTRES],
    )
    if len(centres) != len(CENTRES):
        raise RuntimeError(f"communes: found {len(centres)} of the {len(CENTRES)} centres; is the geography loaded?")
    rows: list[tuple[Any, ...]] = []
    per_department = args.missions // len(centres)
    for centre in centres:
        organisation_id = db.scalar(
            "INSERT INTO organisations (name, type, address_line, postal_code, commune_code, description, status)"
            " VALUES ($1, 'association', '1 place de la Mairie', $2, $3, 'Association de test de charge.',"
            " 'validated') RETURNING id",
            f"Banque alimentaire {centre['department_code']}", centre["postal_codes"][0], centre["code"],
        )
        communes = db.fetch(
            "SELECT code, population FROM communes WHERE department_code = $1 AND latitude IS NOT NULL",
            centre["department_code"],
        )
        # Drawn by population: help is needed where people live.
        drawn = rng.choices([c["code"] for c in communes], weights=[max(1, c["population"]) for c in communes],
                            k=per_department)
        for number, commune in enumerate(drawn):
            rows.append((organisation_id, f"Mission {centre['department_code']}-{number:04d}", DOMAINS[number % 5],
                         RUSH_PLACES[number % len(RUSH_PLACES)], number % 10 == 0, commune))
    db.executemany(
        "INSERT INTO missions (organisation_id, title, description, domain, activities, remote, start_date, places,"
        " open_to_minors, priority, status) VALUES ($1, $2, 'Accueil et distribution, en équipe.', $3, '{}', false,"
        " current_date, $4, false, $5, 'published')",
        [row[:5] for row in rows],
    )
    db.execute(
        "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude, longitude)"
        " SELECT m.id, '2 rue de la Gare', c.postal_codes[1], c.code, c.latitude, c.longitude"
        " FROM unnest($1::text[], $2::text[]) AS t(title, commune)"
        " JOIN missions m ON m.title = t.title JOIN communes c ON c.code = t.commune",
        [row[1] for row in rows], [row[5] for row in rows],
    )
    ids = [int(row["id"]) for row in db.fetch("SELECT id FROM missions ORDER BY id")]
    shuffled = rng.sample(ids, len(ids))
    return Seeded(missions=len(ids), rush=sorted(shuffled[: args.rush_missions]),
                  warm=sorted(shuffled[args.rush_missions: args.rush_missions + 50]),
                  queries=search_queries(centres))


def search_queries(centres: list[asyncpg.Record]) -> list[str]:
    """A citizen's searches around each centre: by postal code, commune, point, department, domain, next page."""
    queries = []
    for centre in centres:
        postal_code, code, department = centre["postal_codes"][0], centre["code"], centre["department_code"]
        for params in (
            {"postal_code": postal_code, "radius_km": 35},
            {"postal_code": postal_code, "radius_km": 35, "page": 2},
            {"postal_code": postal_code, "radius_km": 10},
            {"commune_code": code, "radius_km": 20, "domain": "solidarite-insertion"},
            {"lat": round(centre["latitude"], 4), "lon": round(centre["longitude"], 4), "radius_km": 50},
            {"department": department, "sort": "priority"},
        ):
            queries.append("/api/v1/missions?" + urlencode(params))
    return queries


# Volunteers and their sessions ---------------------------------------------------------------------------------


@dataclass
class Volunteer:
    email: str
    client: httpx.AsyncClient
    token: str = ""
    session: str = ""


def signup_body(email: str, rng: random.Random) -> dict[str, Any]:
    postal_code, commune_code = rng.choice(HOMES)
    return {
        "first_name": "Camille", "last_name": "Durand", "email": email, "phone": "06 12 34 56 78",
        "birth_date": f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "postal_code": postal_code, "commune_code": commune_code, "domains": [rng.choice(DOMAINS)],
        "availability": "weekends", "skills": ["permis B"], "consent": True, "emergency": "covid-19",
    }


async def each(volunteers: list[Volunteer], step: Any, concurrency: int) -> None:
    queue: asyncio.Queue[Volunteer] = asyncio.Queue()
    for volunteer in volunteers:
        queue.put_nowait(volunteer)

    async def consume() -> None:
        while not queue.empty():
            await step(queue.get_nowait())

    await asyncio.gather(*(consume() for _ in range(concurrency)))


def csrf_of(response: httpx.Response) -> str:
    match = CSRF_FIELD.search(response.text)
    if response.status_code != 200 or match is None:
        raise RuntimeError(f"{response.request.url.path}: {response.status_code}, no CSRF field")
    return match[1]


async def sign_up(volunteers: list[Volunteer], rng: random.Random, concurrency: int) -> None:
    async def step(volunteer: Volunteer) -> None:
        response = await volunteer.client.post("/api/v1/volunteers", json=signup_body(volunteer.email, rng))
        if response.status_code != 202:
            raise RuntimeError(f"sign-up answered {response.status_code}: {response.text[:300]}")

    await each(volunteers, step, concurrency)


async def ask_links(volunteers: list[Volunteer], concurrency: int) -> None:
    async def step(volunteer: Volunteer) -> None:
        token = csrf_of(await volunteer.client.get("/connexion"))
        response = await volunteer.client.post("/connexion", data={"email": volunteer.email, "_csrf_token": token})
        if response.status_code != 200:
            raise RuntimeError(f"sign-in request answered {response.status_code}: {response.text[:300]}")

    await each(volunteers, step, concurrency)


async def confirm_links(volunteers: list[Volunteer], concurrency: int) -> None:
    async def step(volunteer: Volunteer) -> None:
        page = await volunteer.client.get("/connexion/lien", params={"jeton": volunteer.token})
        response = await volunteer.client.post(
            "/connexion/lien", data={"jeton": volunteer.token, "_csrf_token": csrf_of(page)}
        )
        if response.status_code != 303 or "renfort_session" not in volunteer.client.cookies:
            raise RuntimeError(f"sign-in confirmation answered {response.status_code}")
        volunteer.session = volunteer.client.cookies["renfort_session"]

    await each(volunteers, step, concurrency)


def wait_for_links(mail_dir: Path, volunteers: list[Volunteer], timeout: float) -> None:
    """Reads the sign-in e-mails as they arrive in the sink and keeps each volunteer's link token."""
    waiting = {volunteer.email: volunteer for volunteer in volunteers}
    seen: set[Path] = set()
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        fresh = sorted(set(mail_dir.glob("*.eml")) - seen)
        seen.update(fresh)
        for path in fresh:
            message = read_message(path)
            volunteer = waiting.get(str(message["To"]).strip().lower())
            link = LINK.search(message.get_content()) if message["Subject"] == LINK_SUBJECT else None
            if volunteer is not None and link:
                volunteer.token = link[1]
                del waiting[volunteer.email]
        if waiting:
            time.sleep(0.5)
    if waiting:
        raise RuntimeError(f"{len(waiting)} sign-in e-mails missing after {timeout:.0f} s")


def read_message(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def start_workers(stack: ExitStack, platform: Platform, count: int, name: str) -> list[Process]:
    workers = []
    for number in range(1, count + 1):
        worker = Process(f"{name}-{number}", platform.kinds["worker"], platform.env,
                         platform.logs / f"{name}-{number}.log")
        stack.callback(worker.stop)
        workers.append(worker)
    return workers


def wait_rows(db: Postgres, sql: str, expected: int, workers: list[Process], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        rows = int(db.scalar(sql))
        if rows >= expected or time.monotonic() > deadline:
            return rows
        if not any(worker.alive() for worker in workers):
            raise RuntimeError(f"every worker exited:\n{workers[0].tail()}")
        time.sleep(0.2)


@dataclass
class Sessions:
    path: Path
    count: int
    signup_s: float
    signin_s: float


def make_sessions(stack: ExitStack, platform: Platform, db: Postgres, base: str, tmp: Path,
                  args: argparse.Namespace) -> Sessions:
    """Volunteers sign up, workers save them, then each signs in with its e-mailed link; returns their sessions."""
    run = f"bm-{random.Random(args.seed).getrandbits(32):08x}"
    rng = random.Random(args.seed + 1)
    loop = asyncio.new_event_loop()
    transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=args.signin_concurrency))
    volunteers = [
        Volunteer(f"{run}.{number}@example.org",
                  httpx.AsyncClient(transport=transport, base_url=base, timeout=60, trust_env=False))
        for number in range(args.volunteers)
    ]
    try:
        started = time.monotonic()
        loop.run_until_complete(sign_up(volunteers, rng, args.signin_concurrency))
        log(f"volunteers: {len(volunteers)} signed up; starting {args.signin_workers} workers")
        workers = start_workers(stack, platform, args.signin_workers, "signin-worker")
        saved = wait_rows(db, "SELECT count(*) FROM volunteers", len(volunteers), workers, 300)
        if saved < len(volunteers):
            raise RuntimeError(f"only {saved} of {len(volunteers)} sign-ups reached PostgreSQL")
        signup_s = time.monotonic() - started
        log(f"volunteers: {saved} saved in {signup_s:.1f} s; asking for sign-in links")
        started = time.monotonic()
        loop.run_until_complete(ask_links(volunteers, args.signin_concurrency))
        wait_for_links(tmp / "mail", volunteers, timeout=600)
        loop.run_until_complete(confirm_links(volunteers, args.signin_concurrency))
        signin_s = time.monotonic() - started
        log(f"volunteers: {len(volunteers)} signed in through their e-mailed links in {signin_s:.1f} s")
        for worker in workers:  # the rush measures the web tier alone
            worker.stop()
    finally:
        loop.run_until_complete(transport.aclose())
        loop.close()
    ids = {row["email_normalized"]: int(row["id"])
           for row in db.fetch("SELECT id, email_normalized FROM volunteers WHERE email_normalized LIKE $1",
                               run + ".%")}
    path = tmp / "sessions.txt"
    with path.open("w") as out:
        for volunteer in volunteers:
            csrf = volunteer.client.cookies["csrftoken"]
            out.write(f"{ids[volunteer.email]} {volunteer.session} {csrf} {quote(csrf, safe='')}\n")
    return Sessions(path, len(volunteers), signup_s, signin_s)


# Load runs -----------------------------------------------------------------------------------------------------


def check_queries(base: str, queries: list[str]) -> int:
    """Asks each query once (which caches it) and checks it answers 200; returns how many found missions."""
    found = 0
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
        for path in queries:
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path}: {response.status_code} {response.text[:300]}")
            found += bool(response.json()["items"])
    return found


def view_missions(base: str, missions: list[int]) -> None:
    """Citizens read a mission's page before applying; it gives Redis the mission's places (read once from
    PostgreSQL), so the rush measures applying, not each mission's first read."""
    with httpx.Client(base_url=base, timeout=30, trust_env=False, follow_redirects=True) as client:
        for mission in missions:
            response = client.get(f"/missions/{mission}-x")
            if response.status_code != 200:
                raise RuntimeError(f"GET /missions/{mission}: {response.status_code}")


def search_wave(base: str, paths: Path, args: argparse.Namespace, duration: int) -> WrkResult:
    return run_wrk(base, "search.lua", duration=duration, connections=args.connections, threads=args.threads,
                   env={"RENFORT_PATHS": str(paths)})


def rush(base: str, sessions: Path, missions: list[int], pairs: Path, tmp: Path, args: argparse.Namespace,
         duration: int) -> WrkResult:
    missions_path = tmp / f"missions-{pairs.stem}.txt"
    missions_path.write_text("".join(f"{mission}\n" for mission in missions))
    env = {"RENFORT_SESSIONS": str(sessions), "RENFORT_MISSIONS": str(missions_path),
           "RENFORT_THREADS": str(args.threads), "RENFORT_RECEIPTS": str(pairs)}
    return run_wrk(base, "apply.lua", duration=duration, connections=args.connections, threads=args.threads,
                   env=env)


def read_pairs(path: Path) -> list[tuple[int, int, str]]:
    pairs = []
    for line in path.read_text().splitlines() if path.exists() else []:
        mission, volunteer, outcome = line.split()
        pairs.append((int(mission), int(volunteer), outcome))
    return pairs


def drain(db: Postgres, redis: Redis, workers: list[Process], expected: int, timeout: float) -> tuple[int, float, int]:
    """Waits until the application queue and its consumers are empty and the row count stopped growing; returns
    (rows, seconds from the workers' start to the last growth, changes still queued)."""
    started = last_growth = time.monotonic()
    rows = 0
    while True:
        now = time.monotonic()
        count = int(db.scalar("SELECT count(*) FROM applications"))
        if count > rows:
            rows, last_growth = count, now
        queued = int(redis.llen(APPLICATIONS_PENDING))
        if queued == 0 and redis.scard(APPLICATIONS_CONSUMERS) == 0 and (
            (rows >= expected and now - last_growth >= 1.0) or now - last_growth >= 10.0
        ):
            return rows, last_growth - started, 0
        if now - started > timeout:
            log(f"drain: gave up after {timeout:.0f} s with {queued} changes queued (see the workers' logs)")
            return rows, now - started, queued
        if not any(worker.alive() for worker in workers):
            raise RuntimeError(f"every worker exited:\n{workers[0].tail()}")
        time.sleep(0.2)


def tally(db: Postgres, pairs: list[tuple[int, int, str]]) -> dict[str, int]:
    applied = [(mission, volunteer, outcome) for mission, volunteer, outcome in pairs if outcome in APPLIED]
    missions, volunteers, outcomes = ([row[i] for row in applied] for i in range(3))
    found = db.fetch(
        "SELECT p.outcome, a.status FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS p(m, v, outcome)"
        " LEFT JOIN applications a ON a.mission_id = p.m AND a.volunteer_id = p.v",
        missions, volunteers, outcomes,
    )
    oversold = db.scalar(
        "SELECT coalesce(sum(greatest(0, h.held - m.places)), 0) FROM missions m JOIN"
        " (SELECT mission_id, count(*) AS held FROM applications WHERE status = ANY($1) GROUP BY 1) h"
        " ON h.mission_id = m.id",
        list(HOLDING),
    )
    full = db.scalar(
        "SELECT count(*) FROM missions m WHERE m.places <= (SELECT count(*) FROM applications a"
        " WHERE a.mission_id = m.id AND a.status = ANY($1))",
        list(HOLDING),
    )
    return {
        "oversold": int(oversold),
        "lost": sum(1 for row in found if row["status"] is None),
        # An answered status that PostgreSQL holds otherwise (nothing else changes them during the benchmark).
        "status_mismatch": sum(1 for row in found if row["status"] is not None and row["status"] != row["outcome"]),
        "rows": int(db.scalar("SELECT count(*) FROM applications")),
        "missions_full": int(full),
    }


# The benchmark -------------------------------------------------------------------------------------------------


def measure_ceiling(platform: Platform, args: argparse.Namespace) -> tuple[WrkResult, CpuWindow]:
    web_line = loopback(platform.kinds["web"])
    with ExitStack() as stack:
        base, server = serve(stack, "ceiling", web_line.replace("app.asgi:app", BARE_APP), platform.env,
                             platform.logs)
        log(f"ceiling: {BARE_APP} GET /page under `{web_line}`")
        run_wrk(base + "/page", "get.lua", duration=2, connections=args.connections, threads=args.threads)
        cpu = CpuWindow(server.pid)
        ceiling = run_wrk(base + "/page", "get.lua", duration=args.duration, connections=args.connections,
                          threads=args.threads)
        cpu.stop()
    log(f"ceiling: {ceiling.req_per_s:.0f} req/s, p99 {ceiling.p99_ms} ms, {cpu.server_cores:.2f} cores")
    return ceiling, cpu


def per_cpu(rate: float, cpu: CpuWindow) -> float | None:
    return round(rate / cpu.server_cores, 1) if cpu.server_cores else None


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    args.mail_sink = True  # sign-in links are read from it
    platform = start_platform(stack, tmp, args)
    platform.env.update(SIGNIN_IP_LIMIT_PER_MINUTE="0", SIGNUP_IP_LIMIT_PER_MINUTE="0")
    db = Postgres(platform.database_url)
    stack.callback(db.close)
    redis = Redis.from_url(platform.redis_url)
    stack.callback(redis.close)
    seeded = seed(db, args)
    log(f"seed: {seeded.missions} published missions of validated organisations in {len(CENTRES)} departments")
    result: dict[str, Any] = {}

    ceiling, ceiling_cpu = measure_ceiling(platform, args)
    base, web = serve(stack, "web", loopback(platform.kinds["web"]), platform.env, platform.logs)

    if args.only in (None, "search"):
        found = check_queries(base, seeded.queries)
        paths = tmp / "search-paths.txt"
        paths.write_text("".join(f"{path}\n" for path in seeded.queries))
        search_wave(base, paths, args, duration=2)
        log(f"search: {args.duration} s of GETs over {len(seeded.queries)} cached queries ({found} with results)")
        cpu = CpuWindow(web.pid)
        search = search_wave(base, paths, args, duration=args.duration)
        cpu.stop()
        rate = search.count(200) / search.duration_s
        log(f"search: {rate:.0f} req/s, p99 {search.p99_ms} ms, {cpu.server_cores:.2f} cores")
        result.update({
            "search_req_per_s": round(rate, 1),
            "search_p50_ms": search.p50_ms,
            "search_p99_ms": search.p99_ms,
            "search_ceiling_ratio": round(rate / ceiling.req_per_s, 3),
            "search_ceiling_req_per_s": round(ceiling.req_per_s, 1),
            "search_ceiling_p99_ms": ceiling.p99_ms,
            "search_web_cpu_cores": round(cpu.server_cores, 2),
            "search_per_cpu_s": per_cpu(rate, cpu),
            "search_ceiling_per_cpu_s": per_cpu(ceiling.req_per_s, ceiling_cpu),
            "search_statuses": {str(status): count for status, count in sorted(search.statuses.items())},
            "search_queries": len(seeded.queries),
            "search_machine_idle_cores": round(cpu.idle_cores, 2),
        })

    if args.only in (None, "apply"):
        sessions = make_sessions(stack, platform, db, base, tmp, args)
        warm_pairs, rush_pairs = tmp / "pairs-warm.txt", tmp / "pairs-rush.txt"
        view_missions(base, seeded.rush)
        rush(base, sessions.path, seeded.warm, warm_pairs, tmp, args, duration=2)
        log(f"rush: {args.duration} s of applications by {sessions.count} volunteers to {len(seeded.rush)} missions,"
            " no worker running")
        cpu = CpuWindow(web.pid)
        applying = rush(base, sessions.path, seeded.rush, rush_pairs, tmp, args, duration=args.duration)
        cpu.stop()
        pairs = read_pairs(rush_pairs)
        outcomes = Counter(outcome for _, _, outcome in pairs)
        applied = outcomes["pending"] + outcomes["waitlisted"]
        rate = applied / applying.duration_s
        log(f"rush: {applied} applied ({rate:.0f}/s: {dict(outcomes)}), p99 {applying.p99_ms} ms,"
            f" {cpu.server_cores:.2f} cores")
        backlog = int(redis.llen(APPLICATIONS_PENDING))
        all_pairs = read_pairs(warm_pairs) + pairs
        workers = start_workers(stack, platform, args.drain_workers, "drain-worker")
        rows, drain_s, undrained = drain(db, redis, workers, sum(1 for p in all_pairs if p[2] in APPLIED),
                                         args.drain_timeout)
        log(f"drain: {rows} application rows, {drain_s:.1f} s after the workers started")
        counts = tally(db, all_pairs)
        result.update({
            "apply_per_s": round(rate, 1),
            "apply_p50_ms": applying.p50_ms,
            "apply_p99_ms": applying.p99_ms,
            "oversold": counts.pop("oversold"),
            "lost": counts.pop("lost"),
            "status_mismatch": counts.pop("status_mismatch"),
            "applied": applied,
            "pending": outcomes["pending"],
            "waitlisted": outcomes["waitlisted"],
            "outcomes": dict(sorted(outcomes.items())),
            "apply_statuses": {str(status): count for status, count in sorted(applying.statuses.items())},
            "apply_socket_errors": applying.socket_errors,
            "apply_web_cpu_cores": round(cpu.server_cores, 2),
            "apply_per_cpu_s": per_cpu(rate, cpu),
            "apply_machine_idle_cores": round(cpu.idle_cores, 2),
            "application_rows": counts["rows"],
            # Rows beyond the answered pairs: wrk stops with requests in flight whose answers it never read.
            "extra": max(0, counts["rows"] - sum(1 for p in all_pairs if p[2] in APPLIED)),
            "missions_full": counts["missions_full"],
            "rush_missions": len(seeded.rush),
            "backlog": backlog,
            "drain_s": round(drain_s, 2),
            # Changes still queued when the drain gave up: `lost` then counts them too (not in PostgreSQL yet).
            "undrained": undrained,
            "volunteers": sessions.count,
            "signup_s": round(sessions.signup_s, 1),
            "signin_s": round(sessions.signin_s, 1),
        })

    result.update({
        "missions": seeded.missions,
        "server": platform.kinds["web"].split()[0],
        "web_workers": args.web_workers,
        "connections": args.connections,
        "duration_s": args.duration,
    })
    checks = {
        "search": lambda: result["search_req_per_s"] >= TARGETS["search_req_per_s"]
        and result["search_p99_ms"] <= TARGETS["search_p99_ms"],
        "apply": lambda: result["apply_per_s"] >= TARGETS["apply_per_s"] and result["oversold"] == 0
        and result["lost"] == 0,
    }
    result["targets_met"] = all(check() for name, check in checks.items() if args.only in (None, name))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load, for the ceiling, search and rush")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY for the web and ceiling servers")
    parser.add_argument("--missions", type=int, default=2000, help="published missions, across the departments")
    parser.add_argument("--rush-missions", type=int, default=200, help="missions the rush applies to")
    parser.add_argument("--volunteers", type=int, default=600, help="volunteers who sign up, sign in and apply")
    parser.add_argument("--signin-workers", type=int, default=4, help="`worker` processes for sign-ups and e-mails")
    parser.add_argument("--signin-concurrency", type=int, default=32, help="volunteers signing in at once")
    parser.add_argument("--drain-workers", type=int, default=2, help="`worker` processes draining the applications")
    parser.add_argument("--drain-timeout", type=float, default=300.0, help="give up draining after this many s")
    parser.add_argument("--only", choices=["search", "apply"], help="run one part only")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the missions and volunteers")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs, pairs)")
    args = parser.parse_args()
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-bench-missions-", failures=(asyncpg.PostgresError, httpx.HTTPError))


if __name__ == "__main__":
    main()
