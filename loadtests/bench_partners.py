"""The partner exchange benchmark: a 20,000-mission feed imported (then imported again, unchanged), and the read API
`GET /v0/mission` around real places.

    python -m loadtests.bench_partners [--missions 20000] [--points 1000] [--connections 32] [--keep]

1. Starts a throwaway PostgreSQL and Redis (ops.services), runs the Procfile's `release`, then writes straight into
   PostgreSQL a few thousand of our own published missions at real communes (bench_missions' seed), a feed partner
   and a reader partner (which also diffuses partner missions, with a rate limit that never throttles the run),
   each with an API key.
2. Generates an XML feed in API Engagement's format (`<source><mission>…`): `--missions` missions at communes of the
   `communes` table drawn by population, among a few hundred organisations, served on 127.0.0.1 by a small HTTP
   server (HTTP Basic, as a partner's feed usually is).
3. Starts `web` and `worker` (PARTNER_FEEDS_ALLOW_LOOPBACK=on), sets the feed partner's `feed_url`, asks for an
   import (`POST /v2/import`, the feed partner's key) and polls `GET /v2/import/{id}` until it ends:
   `import_seconds`. Then the same feed again: `reimport_seconds`, where nothing may be created, updated or deleted.
4. Reads: `GET /v0/mission?lat=…&lon=…&distance=…km&limit=25` with the reader's key at `--points` communes drawn by
   population, each asked once (no result cache can help), after a warm-up on other points, with wrk.

Prints ONE JSON line on stdout (import_seconds, reimport_seconds, v0_req_per_s, v0_p99_ms, and informative keys);
progress goes to stderr. Exits 1 when a target is missed, 2 when wrk is missing. Every process and server it starts
is stopped on the way out, Ctrl-C included. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import random
import secrets
import signal
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from redis import Redis

from loadtests import bench_missions
from loadtests.bench_missions import Postgres, start_workers
from loadtests.bench_scale import Window
from loadtests.bench_signups import serve, start_platform
from loadtests.harness import WRK_DIR, base_env, log, loopback, require_wrk, run_benchmark

TARGETS = {"import_seconds": 60, "reimport_seconds": 20, "v0_req_per_s": 1000, "v0_p99_ms": 100,
           "total_seconds": 600}
FINISHED = ("succeeded", "failed")
UNLIMITED = 10_000_000  # requests per minute: the benchmark measures the API, not its rate limit
RQ_WORKERS = "rq:workers"  # RQ's own registry of live workers
DISTANCES_KM = (10, 15, 20, 25, 30, 40, 50)

# API Engagement's 20 domains (its spec §7.1), weighted like a volunteering catalogue, each with activity slugs of
# its §7.2 and a few titles.
CATALOGUE: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {
    "solidarite-insertion": (18, ("distribution", "collecte-de-produits", "accueil-de-public"),
                             ("Distribution alimentaire", "Collecte & tri de vêtements", "Accueil des familles")),
    "education": (10, ("soutien-scolaire", "alphabetisation", "mentorat-parrainage"),
                  ("Aide aux devoirs pour collégiens", "Ateliers de français", "Parrainage de lycéens")),
    "sante": (8, ("sante-soins", "secourisme", "aide-psychologique"),
              ("Accompagnement de patients", "Poste de secours", "Écoute des aidants")),
    "environnement": (8, ("ramassage-dechets", "jardinage", "sensibilisation"),
                      ("Nettoyage des berges", "Jardin partagé", "Sensibilisation au tri")),
    "sport": (6, ("sport", "animation"), ("Encadrement d'un club de foot", "Animation sportive")),
    "culture-loisirs": (6, ("animation", "evenementiel"), ("Festival de quartier", "Animation de la médiathèque")),
    "prevention-protection": (5, ("secours-aide", "prevention-sensibilisation"),
                              ("Renfort lors des crues", "Prévention des risques")),
    "vivre-ensemble": (5, ("lutte-contre-isolement", "animation"),
                       ("Visites à des personnes âgées", "Repas solidaire")),
    "humanitaire": (4, ("logistique", "collecte"), ("Préparation de colis", "Collecte de fournitures")),
    "animaux": (4, ("soins-animaux",), ("Soins au refuge", "Promenade des chiens du refuge")),
    "memoire-et-citoyennete": (3, ("vie-citoyenne", "preservation-patrimoine"),
                               ("Cérémonie commémorative", "Restauration du patrimoine")),
    "benevolat-competences": (3, ("conseil", "comptabilite-finance"),
                              ("Conseil juridique aux associations", "Tenue de la comptabilité")),
    "numerique": (3, ("informatique", "communication"), ("Ateliers numériques", "Site internet de l'association")),
    "emploi": (3, ("enseignement-formation", "mentorat-parrainage"),
               ("Préparation aux entretiens", "Accompagnement vers l'emploi")),
    "communication": (2, ("communication",), ("Réseaux sociaux de l'association", "Journal de quartier")),
    "gestion-finance-droit": (2, ("juridique", "taches-administratives"),
                              ("Permanence d'accès au droit", "Aide aux démarches")),
    "batiment-industrie-logistique": (2, ("bricolage", "logistique"),
                                      ("Rénovation d'un local", "Gestion de l'entrepôt")),
    "recherche": (1, ("documentation-traduction",), ("Inventaire participatif", "Traduction de documents")),
    "service-public-defense-securite": (1, ("secourisme", "accueil-de-public"),
                                        ("Appui aux services de secours", "Accueil en mairie")),
    "autre": (1, ("autre",), ("Coup de main ponctuel", "Appui à l'équipe bénévole")),
}


@dataclass(frozen=True)
class Commune:
    code: str
    name: str
    postal_codes: tuple[str, ...]
    department_code: str
    latitude: float
    longitude: float
    population: int


def read_communes(db: Postgres) -> list[Commune]:
    rows = db.fetch(
        "SELECT code, name, postal_codes, department_code, latitude, longitude, population FROM communes"
        " WHERE latitude IS NOT NULL AND longitude IS NOT NULL AND cardinality(postal_codes) > 0 ORDER BY code"
    )
    return [Commune(row["code"], row["name"], tuple(row["postal_codes"]), row["department_code"], row["latitude"],
                    row["longitude"], row["population"]) for row in rows]


def distinct_by_population(communes: list[Commune], count: int, rng: random.Random) -> list[Commune]:
    """`count` different communes, each drawn with a chance that grows with its population (Efraimidis–Spirakis
    weighted sampling without replacement: the largest u^(1/w))."""
    if count > len(communes):
        raise ValueError(f"{count} points asked for, {len(communes)} communes known")
    keyed = [(math.log(rng.random() or 1e-300) / max(1, commune.population), commune) for commune in communes]
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [commune for _, commune in keyed[:count]]


# The feed ----------------------------------------------------------------------------------------------------------


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass(frozen=True)
class Organisation:
    client_id: str
    name: str
    rna: str
    home: Commune


def organisations(communes: list[Commune], count: int, rng: random.Random) -> list[Organisation]:
    homes = rng.choices(communes, weights=[max(1, c.population) for c in communes], k=count)
    kinds = ("Association", "Amicale", "Collectif", "Fédération", "Comité")
    return [Organisation(f"org-{number:04d}", f"{rng.choice(kinds)} solidaire de {home.name} n° {number}",
                         f"W{home.department_code[:2].rjust(2, '0')}{rng.randrange(10**7):07d}", home)
            for number, home in enumerate(homes, start=1)]


def feed_mission(number: int, commune: Commune, organisation: Organisation, rng: random.Random, today: date) -> str:
    domains = list(CATALOGUE)
    domain = rng.choices(domains, weights=[CATALOGUE[d][0] for d in domains])[0]
    _, activities, titles = CATALOGUE[domain]
    client_id = f"bench-{number:06d}"
    start = today + timedelta(days=rng.randint(1, 60))
    # Both ISO 8601 forms partners send: a day, or a date-time with its offset.
    start_at = start.isoformat() if rng.random() < 0.7 else f"{start.isoformat()}T09:00:00+01:00"
    end_at = (start + timedelta(days=rng.randint(14, 180))).isoformat()
    postal_code = rng.choice(commune.postal_codes)
    lat = round(commune.latitude + rng.uniform(-0.004, 0.004), 6)
    lon = round(commune.longitude + rng.uniform(-0.004, 0.004), 6)
    title = f"{rng.choice(titles)} à {commune.name}"
    description = (
        f"<p>Rejoignez l'équipe de {organisation.name} à {commune.name} : {title.lower()}.</p>"
        "<ul><li>Accueil et formation le premier jour</li><li>En équipe, encadré par un bénévole expérimenté</li>"
        f"<li>{rng.choice(('Quelques heures par semaine', 'Le samedi matin', 'En soirée, deux fois par mois'))}"
        "</li></ul><p>Aucune compétence particulière n'est demandée : l'envie d'aider suffit.</p>"
    )
    return (
        "<mission>"
        f"<clientId>{cdata(client_id)}</clientId>"
        f"<title>{cdata(title)}</title>"
        f"<description>{cdata(description)}</description>"
        f"<applicationUrl>{cdata(f'https://benevoles.example.org/missions/{client_id}?source=renfort')}"
        "</applicationUrl>"
        f"<startAt>{start_at}</startAt><endAt>{end_at}</endAt>"
        f"<domain>{domain}</domain><activity>{','.join(rng.sample(activities, rng.randint(1, len(activities))))}"
        "</activity>"
        f"<remote>{'possible' if rng.random() < 0.1 else 'no'}</remote>"
        f"<openToMinors>{'yes' if rng.random() < 0.4 else 'no'}</openToMinors>"
        f"<reducedMobilityAccessible>{'yes' if rng.random() < 0.3 else 'no'}</reducedMobilityAccessible>"
        f"<places>{rng.choice((1, 1, 2, 3, 5, 5, 10, 20))}</places>"
        f"<organizationName>{cdata(organisation.name)}</organizationName>"
        f"<organizationClientId>{organisation.client_id}</organizationClientId>"
        f"<organizationRNA>{organisation.rna}</organizationRNA>"
        f"<organizationPostCode>{organisation.home.postal_codes[0]}</organizationPostCode>"
        f"<organizationCity>{cdata(organisation.home.name)}</organizationCity>"
        "<addresses><address>"
        f"<street>{cdata(f'{rng.randint(1, 120)} rue de la République')}</street>"
        f"<postalCode>{postal_code}</postalCode><city>{cdata(commune.name)}</city>"
        f"<departmentCode>{commune.department_code}</departmentCode><country>FR</country>"
        f"<location><lat>{lat}</lat><lon>{lon}</lon></location>"
        "</address></addresses>"
        "</mission>\n"
    )


def feed_xml(communes: list[Commune], missions: int, organisation_count: int, seed: int, today: date) -> bytes:
    """The whole feed, deterministic for a seed and a day: missions at communes drawn by population (with
    replacement: a city gets many), each owned by one of `organisation_count` organisations."""
    rng = random.Random(seed)
    owners = organisations(communes, organisation_count, rng)
    places = rng.choices(communes, weights=[max(1, c.population) for c in communes], k=missions)
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<source>\n',
             f"<publisher>{cdata('Plateforme de test de charge')}</publisher>\n",
             f"<lastBuildDate>{today.isoformat()}</lastBuildDate>\n"]
    parts += [feed_mission(number, commune, rng.choice(owners), rng, today)
              for number, commune in enumerate(places, start=1)]
    parts.append("</source>\n")
    return "".join(parts).encode("utf-8")


class FeedServer:
    """The partner's feed on 127.0.0.1 (a free port), behind HTTP Basic; remembers when each fetch began and ended."""

    def __init__(self, body: bytes, username: str, password: str) -> None:
        self.body = body
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.fetches: list[tuple[float, float]] = []  # (monotonic start, end) of each full GET
        self.refused = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                started = time.monotonic()
                if self.path.split("?", 1)[0] != "/feed.xml":
                    self.send_error(404)
                    return
                if self.headers.get("Authorization") != outer.expected:
                    outer.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="feed"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)
                outer.fetches.append((started, time.monotonic()))

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/feed.xml"
        self._thread = threading.Thread(target=self._server.serve_forever, name="feed-server", daemon=True)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# Partners and imports ----------------------------------------------------------------------------------------------


def api_key() -> tuple[str, str, str]:
    """(key, sha256 hex digest, prefix): how the platform stores a key it handed over."""
    key = secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest(), key[:8]


def create_partner(db: Postgres, name: str, **columns: Any) -> tuple[int, str]:
    columns = {"name": name, "rate_limit_per_minute": UNLIMITED, **columns}
    names = ", ".join(columns)
    placeholders = ", ".join(f"${index}" for index in range(1, len(columns) + 1))
    # Column names come from this file, never from input.
    partner_id = int(db.scalar(f"INSERT INTO partners ({names}) VALUES ({placeholders}) RETURNING id",  # noqa: S608
                               *columns.values()))
    key, digest, prefix = api_key()
    db.execute("INSERT INTO partner_api_keys (partner_id, digest, prefix, label) VALUES ($1, $2, $3, 'benchmark')",
               partner_id, digest, prefix)
    return partner_id, key


@dataclass
class ImportRun:
    status: str
    seconds: float | None  # POST → the finished status seen by polling
    counts: dict[str, int] = field(default_factory=dict)
    phases: dict[str, Any] = field(default_factory=dict)
    refusals: list[Any] = field(default_factory=list)
    error: str | None = None


IMPORT_COUNTS = ("received", "created", "updated", "unchanged", "deleted", "refused")
IMPORT_ROW = ("SELECT status, error, refusals, extract(epoch FROM finished_at - started_at) AS log_s, received,"
              " created, updated, unchanged, deleted, refused FROM partner_imports WHERE id = $1")


def run_import(client: httpx.Client, db: Postgres, feed: FeedServer, key: str, timeout: float,
               window: Window) -> ImportRun:
    """POST /v2/import, then GET /v2/import/{id} every 0.1 s until it ends; the counts and times come from the
    run's own log row (`partner_imports`), the phases from when the feed was fetched, and the cores each part of the
    platform used meanwhile from `window` (opened just before)."""
    fetched = len(feed.fetches)
    posted = time.monotonic()
    response = client.post("/v2/import", headers={"x-api-key": key})
    while response.status_code == 429:  # the platform's pause between two runs asked by a partner: wait as told
        time.sleep(float(response.headers.get("retry-after", "1")))
        posted = time.monotonic()
        response = client.post("/v2/import", headers={"x-api-key": key})
    if response.status_code != 202:
        raise RuntimeError(f"POST /v2/import answered {response.status_code}: {response.text[:300]}")
    import_id = response.json()["data"]["id"]
    status, seen = "running", None
    while time.monotonic() - posted < timeout:
        polled = client.get(f"/v2/import/{import_id}", headers={"x-api-key": key})
        if polled.status_code != 200:
            raise RuntimeError(f"GET /v2/import/{import_id} answered {polled.status_code}: {polled.text[:300]}")
        status = polled.json()["data"]["status"]
        if status in FINISHED:
            seen = time.monotonic()
            break
        time.sleep(0.1)
    window.close(lambda: 0)
    row = db.fetch(IMPORT_ROW, int(import_id))[0]
    phases: dict[str, Any] = {"log_s": round(float(row["log_s"]), 2) if row["log_s"] is not None else None,
                              "cores": window.cores}
    if len(feed.fetches) > fetched:
        start, end = feed.fetches[fetched]
        phases["queue_s"] = round(start - posted, 2)  # the job waiting for, and starting in, a worker
        phases["fetch_s"] = round(end - start, 2)
        phases["process_s"] = round(seen - end, 2) if seen else None  # parse, normalise, write, poll granularity
    refusals = json.loads(row["refusals"]) if isinstance(row["refusals"], str) else row["refusals"]
    return ImportRun(status=status if seen else "timeout", seconds=round(seen - posted, 2) if seen else None,
                     counts={name: int(row[name]) for name in IMPORT_COUNTS}, phases=phases,
                     refusals=list(refusals or [])[:3], error=row["error"])


def wait_workers(redis: Redis, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while int(redis.scard(RQ_WORKERS)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} RQ workers did not register within {timeout:.0f} s")
        time.sleep(0.2)


# The read API ------------------------------------------------------------------------------------------------------


def v0_paths(points: list[Commune], rng: random.Random, limit: int = 25) -> list[str]:
    return ["/v0/mission?" + urlencode({"lat": f"{p.latitude:.4f}", "lon": f"{p.longitude:.4f}",
                                        "distance": f"{rng.choice(DISTANCES_KM)}km", "limit": limit})
            for p in points]


@dataclass(frozen=True)
class ReadRun:
    elapsed_s: float  # first request sent → last answer read, measured in the wrk script
    expected: int
    answered: int
    wellformed: int  # 200s with "ok": true, a numeric "total" and a "data" array
    with_results: int
    results_total: int
    resent: int  # requests sent again after the server closed a connection with one in flight
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def errors(self) -> int:
        """Paths not answered by a well-formed 200 (a request sent again answers a path twice), plus wrk's socket
        errors: a time-out is an answer slower than --timeout, which the latency percentiles would not show."""
        return max(0, self.expected - (min(self.ok, self.wellformed) - self.resent)) + self.socket_errors

    @property
    def req_per_s(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


def parse_wrk(stdout: str) -> ReadRun:
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in stdout.splitlines()
             if line.startswith(("WRK_JSON ", "PARTNERS_JSON "))}
    if set(lines) != {"WRK_JSON", "PARTNERS_JSON"}:
        raise RuntimeError(f"wrk printed no report:\n{stdout[-2000:]}")
    wrk, own = json.loads(lines["WRK_JSON"]), json.loads(lines["PARTNERS_JSON"])
    return ReadRun(
        elapsed_s=float(own["elapsed_s"]), expected=int(own["expected"]), answered=int(own["answered"]),
        wellformed=int(own["wellformed"]), with_results=int(own["with_results"]),
        results_total=int(own["results_total"]), resent=int(own["resent"]),
        statuses={int(status): int(count) for status, count in wrk["statuses"].items()},
        socket_errors=sum(int(count) for kind, count in wrk["errors"].items() if kind != "status"),
        p50_ms=float(wrk["latency_ms"]["p50"]), p99_ms=float(wrk["latency_ms"]["p99"]),
    )


def read_once(base: str, paths: list[str], key: str, folder: Path, *, connections: int, threads: int,
              cap_s: int, timeout_s: int = 30) -> ReadRun:
    """Asks each path once with wrk (loadtests/wrk/partners.lua) and stops it as soon as every thread has all its
    answers: wrk would otherwise sleep its whole -d."""
    if len(paths) < threads or connections < threads:
        raise ValueError("need at least one path and one connection per wrk thread")
    folder.mkdir(parents=True)
    (folder / "paths.txt").write_text("".join(f"{path}\n" for path in paths))
    done = folder / "done"
    done.mkdir()
    # wrk's --timeout is also the top of its latency histogram: slower answers count as errors, not in the p99.
    command = [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{cap_s}s", "--timeout", f"{timeout_s}s",
               "-s", str(WRK_DIR / "partners.lua"), base]
    env = base_env(RENFORT_PATHS=str(folder / "paths.txt"), RENFORT_API_KEY=key, RENFORT_THREADS=str(threads),
                   RENFORT_DONE=str(done))
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk:
        deadline, signalled = time.monotonic() + cap_s + 30, 0.0
        while wrk.poll() is None:
            now = time.monotonic()
            # Signalled again every half second: a SIGINT caught by a wrk thread on its way out does not wake wrk.
            if sum(1 for _ in done.iterdir()) >= threads and now - signalled > 0.5:
                wrk.send_signal(signal.SIGINT)
                signalled = now
            if now > deadline:
                wrk.kill()
                raise RuntimeError(f"wrk did not finish within {cap_s + 30} s")
            time.sleep(0.02)
        stdout, stderr = wrk.communicate()
    if wrk.returncode != 0:
        raise RuntimeError(f"wrk failed ({wrk.returncode}):\n{stdout}\n{stderr}")
    return parse_wrk(stdout)


def check_sample(client: httpx.Client, paths: list[str], key: str) -> int:
    """Reads a few answers whole: the envelope of API Engagement's list (ok, total, data, at most `limit` missions,
    each with a title). Returns how many had missions."""
    found = 0
    for path in paths:
        response = client.get(path, headers={"x-api-key": key})
        body = response.json() if response.status_code == 200 else None
        if not (isinstance(body, dict) and body.get("ok") is True and isinstance(body.get("total"), int)
                and isinstance(body.get("data"), list) and len(body["data"]) <= 25
                and all(isinstance(item, dict) and "title" in item for item in body["data"])):
            raise RuntimeError(f"GET {path}: {response.status_code}, not a v0 mission list: {response.text[:300]}")
        found += bool(body["data"])
    return found


# The verdict -------------------------------------------------------------------------------------------------------


def verdict(result: dict[str, Any], missions: int) -> dict[str, Any]:
    """Adds `targets`, `failed` (the checks that did not hold) and `targets_met` to the figures."""

    def at_most(name: str) -> bool:
        return result.get(name) is not None and result[name] <= TARGETS[name]

    checks = {
        "import_seconds": at_most("import_seconds"),
        "reimport_seconds": at_most("reimport_seconds"),
        "v0_req_per_s": (result.get("v0_req_per_s") or 0) >= TARGETS["v0_req_per_s"],
        "v0_p99_ms": at_most("v0_p99_ms"),
        "total_seconds": at_most("total_seconds"),
        # Every generated mission is valid: the first import creates them all, the second changes nothing.
        "import_complete": result.get("import_status") == "succeeded" and result.get("import_created") == missions
        and result.get("import_refused") == 0,
        "reimport_unchanged": result.get("reimport_status") == "succeeded"
        and result.get("reimport_unchanged") == missions
        and all(result.get(f"reimport_{name}") == 0 for name in ("created", "updated", "deleted")),
        "v0_errors": result.get("v0_errors") == 0 and (result.get("v0_requests") or 0) > 0,
        "v0_results": (result.get("v0_with_results") or 0) > 0,
        "v0_sample": result.get("v0_sample_error") is None,
    }
    failed = [name for name, held in checks.items() if not held]
    return {**result, "targets": TARGETS, "failed": failed, "targets_met": not failed}


# The benchmark -----------------------------------------------------------------------------------------------------


def import_figures(prefix: str, run: ImportRun) -> dict[str, Any]:
    figures: dict[str, Any] = {f"{prefix}_seconds": run.seconds, f"{prefix}_status": run.status}
    figures.update({f"{prefix}_{name}": count for name, count in run.counts.items()})
    figures[f"{prefix}_phases"] = run.phases
    if run.refusals:
        figures[f"{prefix}_refusals"] = run.refusals
    if run.error:
        figures[f"{prefix}_error"] = run.error[:300]
    return figures


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    args.mail_sink = False
    platform = start_platform(stack, tmp, args)
    platform.env["PARTNER_FEEDS_ALLOW_LOOPBACK"] = "on"
    db = Postgres(platform.database_url)
    stack.callback(db.close)
    redis = Redis.from_url(platform.redis_url)
    stack.callback(redis.close)

    ours = bench_missions.seed(db, argparse.Namespace(missions=args.our_missions, seed=args.seed, rush_missions=0))
    communes = read_communes(db)
    rng = random.Random(args.seed)
    username, password = "renfort", secrets.token_urlsafe(12)
    feed_id, feed_key = create_partner(db, "Plateforme annonceuse (benchmark)", feed_username=username,
                                       feed_password=password)
    _, reader_key = create_partner(db, "Plateforme diffuseuse (benchmark)", diffuses_partner_missions=True)
    feed = stack.enter_context(FeedServer(feed_xml(communes, args.missions, args.organisations, args.seed,
                                                   date.today()), username, password))
    log(f"seed: {ours.missions} of our missions, {len(communes)} communes; feed of {args.missions} missions"
        f" ({len(feed.body) / 1e6:.1f} MB) at {feed.url}")

    base, web = serve(stack, "web", loopback(platform.kinds["web"]), platform.env, platform.logs)
    workers = start_workers(stack, platform, args.workers, "worker")
    wait_workers(redis, args.workers)

    def window() -> Window:
        return Window(web, workers, tmp)

    db.execute("UPDATE partners SET feed_url = $1 WHERE id = $2", feed.url, feed_id)
    result: dict[str, Any] = {"import_missions": args.missions, "our_missions": ours.missions}
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as client:
        run = run_import(client, db, feed, feed_key, args.import_timeout, window())
        log(f"import: {run.status} in {run.seconds} s, {run.counts}, phases {run.phases}")
        result.update(import_figures("import", run))
        if run.status == "timeout":  # asking again would only return the run still going
            log("reimport: skipped, the first import is still running")
            result.update(import_figures("reimport", ImportRun(status="skipped", seconds=None)))
        else:
            run = run_import(client, db, feed, feed_key, args.import_timeout, window())
            log(f"reimport: {run.status} in {run.seconds} s, {run.counts}, phases {run.phases}")
            result.update(import_figures("reimport", run))
        result["feed_bytes"] = len(feed.body)
        result["feed_fetches"] = len(feed.fetches)
        result["partner_missions_published"] = int(db.scalar(
            "SELECT count(*) FROM missions WHERE partner_id = $1 AND deleted_at IS NULL AND status = 'published'",
            feed_id))

        points = distinct_by_population(communes, args.warmup_points + args.points, random.Random(args.seed + 1))
        warm, measured = v0_paths(points[: args.warmup_points], rng), v0_paths(points[args.warmup_points:], rng)
        try:
            sampled, sample_error = check_sample(client, warm[:10], reader_key), None
        except (httpx.HTTPError, RuntimeError, ValueError) as error:  # judged below, with the import's figures kept
            sampled, sample_error = 0, f"{type(error).__name__}: {error}"[:300]
            log(f"v0: the sample was refused: {sample_error}")
    read = {"connections": args.connections, "threads": args.threads, "cap_s": args.read_cap}
    read_once(base, warm, reader_key, tmp / "warm-up", **read)
    log(f"v0: {len(measured)} points, each asked once, {args.connections} connections")
    cores = window()
    reads = read_once(base, measured, reader_key, tmp / "reads", **read)
    cores.close(lambda: 0)
    log(f"v0: {reads.req_per_s:.0f} req/s, p99 {reads.p99_ms} ms, {reads.errors} errors,"
        f" {reads.with_results} of {reads.expected} with results, cores {cores.cores}")
    result.update({
        "v0_req_per_s": round(reads.req_per_s, 1),
        "v0_p50_ms": reads.p50_ms,
        "v0_p99_ms": reads.p99_ms,
        "v0_requests": reads.answered,
        "v0_errors": reads.errors,
        "v0_statuses": {str(status): count for status, count in sorted(reads.statuses.items())},
        "v0_socket_errors": reads.socket_errors,
        "v0_elapsed_s": round(reads.elapsed_s, 3),
        "v0_with_results": reads.with_results,
        "v0_mean_total": round(reads.results_total / reads.wellformed, 1) if reads.wellformed else None,
        "v0_sample_with_results": sampled,
        "v0_sample_error": sample_error,
        "v0_web_cpu_cores": round(cores.cpu.server_cores, 2),
        "v0_machine_idle_cores": round(cores.cpu.idle_cores, 2),
        "v0_cores": cores.cores,
        "points": len(measured),
        "warmup_points": len(warm),
        "web_workers": args.web_workers,
        "workers": args.workers,
        "connections": args.connections,
        "total_seconds": round(time.monotonic() - started, 1),
    })
    return verdict(result, args.missions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--missions", type=int, default=20000, help="missions in the partner's feed")
    parser.add_argument("--organisations", type=int, default=300, help="organisations the feed's missions belong to")
    parser.add_argument("--our-missions", type=int, default=3000, help="our own published missions")
    parser.add_argument("--points", type=int, default=1000, help="points asked once each on /v0/mission")
    parser.add_argument("--warmup-points", type=int, default=100, help="other points asked first, as a warm-up")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for the reads")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY of the web process")
    parser.add_argument("--workers", type=int, default=2, help="`worker` processes")
    parser.add_argument("--import-timeout", type=float, default=240.0, help="give up waiting for an import after")
    parser.add_argument("--read-cap", type=int, default=120, help="wrk's -d: the most a read run may take (s)")
    parser.add_argument("--seed", type=int, default=2020, help="random seed of the missions, feed and points")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs, paths)")
    args = parser.parse_args()
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-bench-partners-",
                  failures=(asyncpg.PostgresError, httpx.HTTPError, ValueError, KeyError))


if __name__ == "__main__":
    main()
