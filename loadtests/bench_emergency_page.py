"""The emergency page benchmark: how many visits a second the public page `/urgence/{slug}` serves in a surge.

    python -m loadtests.bench_emergency_page [--duration 15] [--connections 64] [--web-workers 2]
                                             [--missions 120] [--postal-share 0.2] [--keep]

1. Starts a throwaway PostgreSQL and Redis (ops.services, AOF like production) in a temporary folder, on free
   loopback ports, and runs the Procfile's `release` command against them.
2. Seeds PostgreSQL directly: a live emergency over two departments, a validated organisation, published missions
   attached to the emergency (some priority) at real communes of those departments, drawn by population, and
   volunteers who signed up from its page, so every counter on the page is non-zero.
3. Ceiling: serves loadtests.bare_app with the Procfile's `web` line (same server, same workers) and GETs its
   fixed page with wrk for the same duration.
4. Page: starts `web`, checks each variant once (200, the emergency's title, no cookie), warms up, then GETs the
   page with wrk for `--duration` seconds: mostly without a postal code (the shared hot variant), a share of
   visits with one of a handful of real postal codes. Every 200 is checked for the title.

Prints ONE JSON line on stdout (req_per_s, p50_ms, p99_ms, ceiling_ratio, errors and informative keys); progress
goes to stderr. Exits 2 when wrk is missing. Every process and server it starts is stopped on the way out, Ctrl-C
included. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg

from loadtests.bench_signups import Platform, serve, start_platform
from loadtests.harness import CpuWindow, WrkResult, log, loopback, require_wrk, run_benchmark, run_wrk

BARE_APP = "loadtests.bare_app:app"
SLUG = "crues-aude-herault"
TITLE = "Crues dans l’Aude et l’Hérault"  # typographic apostrophes: Jinja leaves them as they are
DEPARTMENTS = ["11", "34"]
TARGETS = {"req_per_s": 5000, "p99_ms": 50, "ceiling_ratio": 0.5}


async def seed(database_url: str, missions: int, volunteers: int, postal_codes: int, rng: random.Random) -> list[str]:
    """Writes the emergency, its organisation, missions and volunteers; returns the postal codes visitors type."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            communes = await conn.fetch(
                "SELECT code, postal_codes[1] AS postal_code, population FROM communes"
                " WHERE department_code = ANY($1::text[]) AND latitude IS NOT NULL ORDER BY code",
                DEPARTMENTS,
            )
            if not communes:
                raise RuntimeError("no communes in departments 11 and 34: did `release` load the geography?")
            await conn.execute(
                "INSERT INTO emergencies (slug, title, description, needs, departments, priority_domains, status,"
                " live_at) VALUES ($1, $2, $3, $4, $5, $6, 'live', now())",
                SLUG,
                TITLE,
                "Des crues ont touché une centaine de communes de l’Aude et de l’Hérault.",
                "Nettoyage des maisons, distribution de repas, accueil des sinistrés.",
                DEPARTMENTS,
                ["solidarite-insertion", "prevention-protection"],
            )
            home = communes[0]
            organisation_id = await conn.fetchval(
                "INSERT INTO organisations (name, type, rna, address_line, postal_code, commune_code, description,"
                " status) VALUES ('Secours Aude-Hérault', 'association', 'W111234567', '1 rue de la Mairie', $1, $2,"
                " 'Aide aux sinistrés.', 'validated') RETURNING id",
                home["postal_code"],
                home["code"],
            )
            # Help is needed where people live: communes drawn in proportion to their population.
            drawn = rng.choices(communes, weights=[max(1, row["population"]) for row in communes], k=missions)
            for number, commune in enumerate(drawn):
                mission_id = await conn.fetchval(
                    "INSERT INTO missions (organisation_id, title, description, domain, activities, remote,"
                    " start_date, places, open_to_minors, priority, emergency_slug, status) VALUES ($1, $2,"
                    " 'Aider les sinistrés à vider et nettoyer leurs maisons.', $3, '{}', false, current_date, $4,"
                    " false, $5, $6, 'published') RETURNING id",
                    organisation_id,
                    f"Renfort crues n° {number:03d}",
                    rng.choice(["solidarite-insertion", "prevention-protection"]),
                    rng.randint(5, 50),
                    number % 4 == 0,
                    SLUG,
                )
                await conn.execute(
                    "INSERT INTO mission_addresses (mission_id, address_line, postal_code, commune_code, latitude,"
                    " longitude) SELECT $1, 'Place de la Mairie', postal_codes[1], code, latitude, longitude"
                    " FROM communes WHERE code = $2",
                    mission_id,
                    commune["code"],
                )
            await conn.execute(
                "INSERT INTO volunteers (receipt, email, email_normalized, first_name, last_name, birth_date,"
                " postal_code, commune_code, domains, availability, skills, emergency_slug, consent_at, accepted_at)"
                " SELECT 'bench-' || n, 'benevole' || n || '@example.org', 'benevole' || n || '@example.org',"
                " 'Camille', 'Martin', date '1990-01-01', $1, $2, '{solidarite-insertion}', 'ponctuelle', '{}', $3,"
                " now(), now() FROM generate_series(1, $4) AS n",
                home["postal_code"],
                home["code"],
                SLUG,
                volunteers,
            )
        visited = sorted({commune["postal_code"] for commune in drawn})
        return rng.sample(visited, min(postal_codes, len(visited)))
    finally:
        await conn.close()


def paths_file(path: Path, postal_codes: list[str], share: float) -> Path:
    """One path a line out of 100; each variant listed as often as visitors ask for it."""
    page = f"/urgence/{SLUG}"
    located = round(share * 100) if postal_codes else 0
    lines = [page] * (100 - located)
    lines += [f"{page}?code_postal={postal_codes[number % len(postal_codes)]}" for number in range(located)]
    random.Random(7).shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def check_variants(base: str, variants: list[str]) -> None:
    """Each variant once before the load: a 200 with the title and no cookie (the page is the same for everyone)."""
    for path in variants:
        try:
            with urllib.request.urlopen(base + path, timeout=30) as response:  # noqa: S310 - loopback URL we built
                body = response.read().decode()
                cookie = response.headers.get("set-cookie")
                status = response.status
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{path}: {error.code}\n{error.read()[:500]!r}") from error
        if status != 200 or TITLE not in body or cookie:
            raise RuntimeError(
                f"{path}: status {status}, title {'found' if TITLE in body else 'missing'}, cookie {cookie!r}"
            )
        log(f"page: {path} → 200, {len(body.encode())} bytes")


def load(base: str, script: str, duration: int, args: argparse.Namespace, env: dict[str, str]) -> WrkResult:
    return run_wrk(base, script, duration=duration, connections=args.connections, threads=args.threads, env=env)


def measure_ceiling(platform: Platform, args: argparse.Namespace) -> tuple[WrkResult, CpuWindow]:
    web_line = loopback(platform.kinds["web"])
    with ExitStack() as stack:
        base, server = serve(stack, "ceiling", web_line.replace("app.asgi:app", BARE_APP), platform.env, platform.logs)
        log(f"ceiling: {BARE_APP} GET /page under `{web_line}`")
        load(base + "/page", "get.lua", 2, args, {})
        cpu = CpuWindow(server.pid)
        ceiling = load(base + "/page", "get.lua", args.duration, args, {})
        cpu.stop()
    log(f"ceiling: {ceiling.req_per_s:.0f} req/s, p99 {ceiling.p99_ms} ms, {cpu.server_cores:.2f} cores")
    return ceiling, cpu


def bench(stack: ExitStack, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    platform = start_platform(stack, tmp, args)
    rng = random.Random(args.seed)
    postal_codes = asyncio.run(seed(platform.database_url, args.missions, args.volunteers, args.postal_codes, rng))
    log(f"seeded: {args.missions} missions, {args.volunteers} volunteers; postal codes {', '.join(postal_codes)}")
    paths = paths_file(tmp / "paths.txt", postal_codes, args.postal_share)
    ceiling, ceiling_cpu = measure_ceiling(platform, args)

    base, web = serve(stack, "web", loopback(platform.kinds["web"]), platform.env, platform.logs)
    variants = list(dict.fromkeys(paths.read_text().split()))
    check_variants(base, variants)
    env = {"RENFORT_PATHS": str(paths), "RENFORT_EXPECT": TITLE, "RENFORT_CHECK": str(tmp / "check.txt")}
    load(base, "emergency.lua", 2, args, env)
    log(f"page: {args.duration} s over {args.connections} connections, {len(variants)} variants")
    cpu = CpuWindow(web.pid)
    page = load(base, "emergency.lua", args.duration, args, env)
    cpu.stop()
    wrong, checked = (int(value) for value in (tmp / "check.txt").read_text().split())
    good = page.count(200) - wrong
    req_per_s = good / page.duration_s
    errors = page.requests - good + page.socket_errors
    log(f"page: {req_per_s:.0f} req/s, p99 {page.p99_ms} ms, {errors} errors, {cpu.server_cores:.2f} cores")

    result: dict[str, Any] = {
        "req_per_s": round(req_per_s, 1),
        "p50_ms": page.p50_ms,
        "p99_ms": page.p99_ms,
        "ceiling_ratio": round(req_per_s / ceiling.req_per_s, 3),
        "ceiling_req_per_s": round(ceiling.req_per_s, 1),
        "ceiling_p99_ms": ceiling.p99_ms,
        "errors": errors,
        "statuses": {str(status): count for status, count in sorted(page.statuses.items())},
        "without_title": wrong,
        "socket_errors": page.socket_errors,
        "checked": checked,
        # The machine may be shared: cores the web tier really got, what it did per CPU-second, idle left over.
        "web_cpu_cores": round(cpu.server_cores, 2),
        "req_per_cpu_s": round(req_per_s / cpu.server_cores, 1) if cpu.server_cores else None,
        "ceiling_per_cpu_s": round(ceiling.req_per_s / ceiling_cpu.server_cores, 1)
        if ceiling_cpu.server_cores
        else None,
        "machine_idle_cores": round(cpu.idle_cores, 2),
        "variants": len(variants),
        "postal_share": args.postal_share,
        "missions": args.missions,
        "volunteers": args.volunteers,
        "server": platform.kinds["web"].split()[0],
        "web_workers": args.web_workers,
        "connections": args.connections,
        "duration_s": args.duration,
    }
    result["targets_met"] = (
        result["req_per_s"] >= TARGETS["req_per_s"]
        and result["p99_ms"] <= TARGETS["p99_ms"]
        and result["ceiling_ratio"] >= TARGETS["ceiling_ratio"]
        and errors == 0
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of load, for the ceiling and the page")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--web-workers", type=int, default=2, help="WEB_CONCURRENCY for the web and ceiling servers")
    parser.add_argument("--missions", type=int, default=120, help="published missions attached to the emergency")
    parser.add_argument("--volunteers", type=int, default=300, help="volunteers who signed up from its page")
    parser.add_argument("--postal-codes", type=int, default=5, help="distinct postal codes visitors type")
    parser.add_argument("--postal-share", type=float, default=0.2, help="share of visits with a postal code")
    parser.add_argument("--seed", type=int, default=2020, help="seed of the missions' communes")
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (data, logs)")
    args = parser.parse_args()
    args.mail_sink = False  # start_platform's option: no mail is sent here
    require_wrk()
    run_benchmark(bench, args, prefix="renfort-bench-", failures=(asyncpg.PostgresError,))


if __name__ == "__main__":
    main()
