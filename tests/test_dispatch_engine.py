"""The dispatch engine on its own: hand-checked cases, then equality with a brute-force optimum on random cases.

No database and no Redis: the engine takes plain volunteers and missions and returns a plan.
"""

from __future__ import annotations

import random
from collections import Counter
from functools import cache

import numpy as np
import pytest

from surge.dispatch import (
    REASON_FULL,
    REASON_UNAVAILABLE,
    Mission,
    Plan,
    Volunteer,
    haversine_km,
    plan_dispatch,
    reason_already_applied,
    reason_no_domain,
    reason_out_of_range,
)
from surge.dispatch.geometry import pairs_within

PARIS = (48.8566, 2.3522)
KM_PER_DEGREE_LAT = 111.195  # on the mean-radius sphere


def north_of(origin: tuple[float, float], km: float) -> tuple[float, float]:
    return origin[0] + km / KM_PER_DEGREE_LAT, origin[1]


def volunteer(id: str, at: tuple[float, float], **kwargs: object) -> Volunteer:
    return Volunteer(id, at[0], at[1], **kwargs)  # type: ignore[arg-type]


def mission(id: str, at: tuple[float, float], places: int, **kwargs: object) -> Mission:
    return Mission(id, at[0], at[1], places, **kwargs)  # type: ignore[arg-type]


def pairs(plan: Plan) -> dict[object, object]:
    return {a.volunteer_id: a.mission_id for a in plan.assignments}


def reasons(plan: Plan) -> dict[object, str]:
    return {u.volunteer_id: u.reason for u in plan.unassigned}


def test_haversine_matches_known_distances() -> None:
    assert haversine_km(*PARIS, 45.7640, 4.8357) == pytest.approx(391.5, abs=1.0)  # Paris – Lyon
    assert haversine_km(*PARIS, *north_of(PARIS, 10)) == pytest.approx(10.0, rel=1e-6)
    assert haversine_km(0.0, 179.9, 0.0, -179.9) == pytest.approx(22.239, abs=1e-3)  # across the antimeridian


def test_spatial_index_finds_exactly_the_pairs_brute_force_finds() -> None:
    rng = np.random.default_rng(4)
    # Mainland France plus points astride the antimeridian and near the pole, where lat/lon grids go wrong.
    a_lat = np.concatenate([rng.uniform(42, 51, 400), rng.uniform(-1, 1, 50), rng.uniform(88, 90, 50)])
    a_lon = np.concatenate([rng.uniform(-5, 8, 400), rng.uniform(179.5, 180, 50), rng.uniform(-180, 180, 50)])
    b_lat = np.concatenate([rng.uniform(42, 51, 80), rng.uniform(-1, 1, 10), rng.uniform(88, 90, 10)])
    b_lon = np.concatenate([rng.uniform(-5, 8, 80), rng.uniform(-180, -179.5, 10), rng.uniform(-180, 180, 10)])
    for max_km in (5.0, 50.0, 120.0):
        i, j, km = pairs_within(a_lat, a_lon, b_lat, b_lon, max_km)
        found = {(int(x), int(y)): float(d) for x, y, d in zip(i, j, km, strict=True)}
        expected = {
            (x, y): haversine_km(a_lat[x], a_lon[x], b_lat[y], b_lon[y])
            for x in range(len(a_lat))
            for y in range(len(b_lat))
            if haversine_km(a_lat[x], a_lon[x], b_lat[y], b_lon[y]) <= max_km
        }
        assert found.keys() == expected.keys()
        assert all(found[k] == pytest.approx(expected[k], abs=1e-9) for k in expected)


def test_capacity_is_never_exceeded() -> None:
    crowd = [volunteer(f"v{i}", north_of(PARIS, i * 0.1)) for i in range(5)]
    plan = plan_dispatch(crowd, [mission("m", PARIS, 2)], max_km=50)
    assert plan.places_filled == 2
    assert plan.missions[0].proposed == 2 and plan.missions[0].places == 2
    assert set(pairs(plan)) == {"v0", "v1"}  # the two nearest
    assert reasons(plan) == {"v2": REASON_FULL, "v3": REASON_FULL, "v4": REASON_FULL}


def test_each_volunteer_goes_to_one_mission_at_most() -> None:
    v = volunteer("v", PARIS)
    plan = plan_dispatch([v], [mission("a", PARIS, 5), mission("b", PARIS, 5, priority=True)], max_km=50)
    assert pairs(plan) == {"v": "b"}
    assert [m.proposed for m in plan.missions] == [0, 1]


def test_priority_place_filled_where_greedy_by_distance_leaves_it_empty() -> None:
    # v1 is nearest to the ordinary mission; greedy by distance gives it to v1, and v2 (out of reach of the
    # priority mission) is left with nothing while the priority place stays empty.
    ordinary, urgent = mission("ordinary", PARIS, 1), mission("urgent", north_of(PARIS, 12), 1, priority=True)
    v1, v2 = volunteer("v1", north_of(PARIS, 2)), volunteer("v2", north_of(PARIS, -3))
    plan = plan_dispatch([v1, v2], [ordinary, urgent], max_km=14)
    assert pairs(plan) == {"v1": "urgent", "v2": "ordinary"}
    assert plan.priority_places_filled == 1 and plan.places_filled == 2


def test_priority_places_are_the_maximum_not_the_nearest_first() -> None:
    # Nearest-first over priority missions sends v1 to p1 and leaves p2 empty; the maximum is 2.
    p1, p2 = mission("p1", PARIS, 1, priority=True), mission("p2", north_of(PARIS, 3), 1, priority=True)
    v1, v2 = volunteer("v1", north_of(PARIS, 1)), volunteer("v2", north_of(PARIS, -10))
    plan = plan_dispatch([v1, v2], [p1, p2], max_km=12)
    assert pairs(plan) == {"v1": "p2", "v2": "p1"}
    assert plan.priority_places_filled == 2


def test_priority_place_filled_even_when_it_costs_more_kilometres() -> None:
    urgent, ordinary = mission("urgent", north_of(PARIS, 9), 1, priority=True), mission("ordinary", PARIS, 1)
    plan = plan_dispatch([volunteer("v", north_of(PARIS, -1))], [urgent, ordinary], max_km=20)
    assert pairs(plan) == {"v": "urgent"}


def test_more_places_filled_before_fewer_kilometres() -> None:
    # Shortest alone would send v to a (1 km) and leave w, who reaches only a, at home; two places beat 1 km.
    a, b = mission("a", PARIS, 1), mission("b", north_of(PARIS, 10), 1)
    v, w = volunteer("v", north_of(PARIS, 1)), volunteer("w", north_of(PARIS, -5))
    plan = plan_dispatch([v, w], [a, b], max_km=12)
    assert pairs(plan) == {"v": "b", "w": "a"}
    assert plan.total_km == pytest.approx(14.0, rel=1e-6)


def test_max_distance_is_respected_and_explained_in_french() -> None:
    near, far = volunteer("near", north_of(PARIS, 49.9)), volunteer("far", north_of(PARIS, 50.1))
    plan = plan_dispatch([near, far], [mission("m", PARIS, 10)], max_km=50)
    assert pairs(plan) == {"near": "m"}
    assert all(a.distance_km <= 50 for a in plan.assignments)
    assert reasons(plan) == {"far": "aucune mission à moins de 50 km"}
    assert reason_out_of_range(12.5) == "aucune mission à moins de 12,5 km"


def test_already_applied_is_the_reason_only_when_the_applications_are_what_left_nothing() -> None:
    marseille = (43.2965, 5.3698)
    far = mission("far", marseille, 5, domain="aide alimentaire")
    shelter = mission("shelter", PARIS, 5, domain="hébergement")
    cook = volunteer("cook", PARIS, domains=frozenset({"aide alimentaire"}), applied=frozenset({"far"}))
    sheltering = volunteer("sheltering", PARIS, domains=frozenset({"hébergement"}), applied=frozenset({"shelter"}))
    plan = plan_dispatch([cook, sheltering], [far, shelter], max_km=20)
    assert pairs(plan) == {}
    assert reasons(plan) == {"cook": reason_no_domain(20), "sheltering": reason_already_applied(20)}


def test_domains_and_availability_filter_the_pool() -> None:
    cook = volunteer("cook", PARIS, domains=frozenset({"aide alimentaire"}))
    anyone = volunteer("anyone", PARIS)
    away = volunteer("away", PARIS, available=False)
    plan = plan_dispatch([cook, anyone, away], [mission("shelter", PARIS, 5, domain="hébergement")], max_km=20)
    assert pairs(plan) == {"anyone": "shelter"}
    assert reasons(plan) == {"cook": reason_no_domain(20), "away": REASON_UNAVAILABLE}
    assert reasons(plan)["cook"] == "aucune mission de ses domaines à moins de 20 km"


def test_empty_and_closed_missions() -> None:
    plan = plan_dispatch([volunteer("v", PARIS)], [mission("full", PARIS, 0)], max_km=30)
    assert plan.places_filled == 0 and plan.missions[0].proposed == 0
    assert reasons(plan) == {"v": reason_out_of_range(30)}
    assert plan_dispatch([], [], max_km=30).assignments == []


@pytest.mark.parametrize(
    ("volunteers", "missions", "max_km"),
    [
        ([volunteer("v", PARIS), volunteer("v", PARIS)], [], 10),
        ([], [mission("m", PARIS, 1), mission("m", PARIS, 1)], 10),
        ([], [mission("m", PARIS, -1)], 10),
        ([volunteer("v", (float("nan"), 2.0))], [], 10),
        ([], [], 0),
    ],
)
def test_bad_input_is_refused(volunteers: list[Volunteer], missions: list[Mission], max_km: float) -> None:
    with pytest.raises(ValueError):
        plan_dispatch(volunteers, missions, max_km=max_km)


def brute_force(volunteers: list[Volunteer], missions: list[Mission], max_km: float) -> tuple[int, int, float]:
    """(priority places, places, −km) of the lexicographic optimum, by trying every choice of every volunteer."""
    options = [
        [
            (j, haversine_km(v.lat, v.lon, m.lat, m.lon))
            for j, m in enumerate(missions)
            if haversine_km(v.lat, v.lon, m.lat, m.lon) <= max_km
            and (m.domain is None or not v.domains or m.domain in v.domains)
            and m.id not in v.applied
        ]
        for v in volunteers
    ]

    @cache
    def best(i: int, left: tuple[int, ...]) -> tuple[int, int, float]:
        if i == len(volunteers):
            return (0, 0, 0.0)
        choice = best(i + 1, left)  # stays home
        for j, km in options[i]:
            if left[j]:
                p, f, d = best(i + 1, (*left[:j], left[j] - 1, *left[j + 1 :]))
                choice = max(choice, (p + missions[j].priority, f + 1, d - km))
        return choice

    return best(0, tuple(m.places for m in missions))


@pytest.mark.parametrize("seed", range(30))
def test_plan_equals_the_brute_force_optimum_on_small_random_cases(seed: int) -> None:
    rng = random.Random(seed)
    spot = lambda: (PARIS[0] + rng.uniform(-0.3, 0.3), PARIS[1] + rng.uniform(-0.45, 0.45))  # noqa: E731
    domains = ["soins", "logistique"]
    volunteers = [
        volunteer(f"v{i}", spot(), domains=frozenset(rng.sample(domains, rng.randint(0, 2))))
        for i in range(rng.randint(1, 8))
    ]
    missions = [
        mission(f"m{j}", spot(), rng.randint(0, 3), priority=rng.random() < 0.4, domain=rng.choice([None, *domains]))
        for j in range(rng.randint(1, 4))
    ]
    max_km = rng.uniform(10, 40)
    plan = plan_dispatch(volunteers, missions, max_km=max_km)

    priority, places, minus_km = brute_force(volunteers, missions, max_km)
    assert plan.priority_places_filled == priority
    assert plan.places_filled == places
    assert plan.total_km == pytest.approx(-minus_km, abs=1e-6)
    # And the plan is a plan: one mission per volunteer, no overbooking, the distances it reports.
    assert max(Counter(a.volunteer_id for a in plan.assignments).values(), default=1) == 1
    booked = Counter(a.mission_id for a in plan.assignments)
    assert all(booked[m.id] <= m.places for m in missions)
    by_id = {m.id: m for m in missions} | {v.id: v for v in volunteers}
    for a in plan.assignments:
        v, m = by_id[a.volunteer_id], by_id[a.mission_id]
        assert a.distance_km == pytest.approx(haversine_km(v.lat, v.lon, m.lat, m.lon), abs=1e-9)
        assert a.distance_km <= max_km
    assert len(plan.assignments) + len(plan.unassigned) == len(volunteers)


def max_matching(volunteers: list[Volunteer], missions: list[Mission], max_km: float) -> int:
    """Most places any plan can fill (augmenting paths over single places), ignoring distances and priorities."""
    places = [j for j, m in enumerate(missions) for _ in range(m.places)]
    reach = [
        [
            slot
            for slot, j in enumerate(places)
            if haversine_km(v.lat, v.lon, missions[j].lat, missions[j].lon) <= max_km
            and (missions[j].domain is None or not v.domains or missions[j].domain in v.domains)
            and missions[j].id not in v.applied
        ]
        for v in volunteers
    ]
    holder: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for slot in reach[i]:
            if slot not in seen:
                seen.add(slot)
                if slot not in holder or augment(holder[slot], seen):
                    holder[slot] = i
                    return True
        return False

    return sum(augment(i, set()) for i in range(len(volunteers)))


@pytest.mark.parametrize("seed", range(6))
def test_many_distinct_applied_sets_are_never_proposed_again_and_places_still_filled(seed: int) -> None:
    rng = random.Random(seed)
    spots = [north_of(PARIS, km) for km in (0, 6, 13, 21)]
    missions = [
        mission(f"m{j}", north_of(PARIS, rng.uniform(-5, 25)), rng.randint(1, 4), priority=j % 4 == 0,
                domain=rng.choice([None, "soins", "logistique"]))
        for j in range(16)
    ]
    ids = [m.id for m in missions]
    # Most volunteers applied to most missions near them, each to a different set: every group its own set.
    volunteers = [
        volunteer(f"v{i}", rng.choice(spots), domains=frozenset(rng.sample(["soins", "logistique"], rng.randint(0, 1))),
                  applied=frozenset(rng.sample(ids, rng.randint(8, 15))) if i % 5 else frozenset())
        for i in range(150)
    ]
    assert len({v.applied for v in volunteers}) > 100
    plan = plan_dispatch(volunteers, missions, max_km=12)

    applied = {v.id: v.applied for v in volunteers}
    assert plan.assignments
    assert all(a.mission_id not in applied[a.volunteer_id] for a in plan.assignments)
    assert plan.places_filled == max_matching(volunteers, missions, 12)
    urgent = [m for m in missions if m.priority]
    assert plan.priority_places_filled == max_matching(volunteers, urgent, 12)
    booked = Counter(a.mission_id for a in plan.assignments)
    assert all(booked[m.id] <= m.places for m in missions)
    assert len(plan.assignments) + len(plan.unassigned) == len(volunteers)


@pytest.mark.parametrize("seed", range(20))
def test_plan_equals_the_brute_force_optimum_with_missions_already_applied_to(seed: int) -> None:
    rng = random.Random(1000 + seed)
    spots = [(PARIS[0] + rng.uniform(-0.2, 0.2), PARIS[1] + rng.uniform(-0.3, 0.3)) for _ in range(2)]
    missions = [mission(f"m{j}", rng.choice(spots), rng.randint(1, 3), priority=rng.random() < 0.4) for j in range(4)]
    ids = [m.id for m in missions]
    volunteers = [
        volunteer(f"v{i}", rng.choice(spots), applied=frozenset(rng.sample(ids, rng.randint(0, 3))))
        for i in range(rng.randint(2, 8))
    ]
    plan = plan_dispatch(volunteers, missions, max_km=60)

    priority, places, minus_km = brute_force(volunteers, missions, 60)
    assert (plan.priority_places_filled, plan.places_filled) == (priority, places)
    assert plan.total_km == pytest.approx(-minus_km, abs=1e-6)
    applied = {v.id: v.applied for v in volunteers}
    assert all(a.mission_id not in applied[a.volunteer_id] for a in plan.assignments)
