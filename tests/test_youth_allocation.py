"""The SNU allocation engine on its own: hand-checked cases where the greedy answer is wrong, eligibility and its
reasons, the referent's adjustments, then equality with exhaustive search and with sequential linear programs on
random instances.

No database and no Redis: the engine takes plain young people and offers and returns an allocation.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import replace
from datetime import date, timedelta

import pytest

from surge.youth import (
    CHOICE_DATES,
    CHOICE_TOO_OLD,
    CHOICE_TOO_YOUNG,
    CHOICE_UNKNOWN_OFFER,
    UNPLACED_BY_REFERENT,
    UNPLACED_CHOICES_FULL,
    UNPLACED_NO_CHOICE,
    UNPLACED_NO_COMPATIBLE_CHOICE,
    AdjustmentError,
    Allocation,
    Move,
    Offer,
    Unassign,
    Young,
    allocate,
    choice_problem,
)
from tests.conftest import ROOT

START = date(2026, 10, 19)
BORN = date(2010, 5, 1)  # 16 on START


def offer(id: str, places: int, *, start: date = START, end: date = START + timedelta(days=4),
          min_age: int = 0, max_age: int | None = None) -> Offer:
    return Offer(id, places, start, end, min_age, max_age)


def young(id: str, *choices: str, **kwargs: object) -> Young:
    return Young(id, tuple(choices), kwargs.pop("birth_date", BORN), **kwargs)  # type: ignore[arg-type]


def placements(allocation: Allocation) -> dict[Hashable, tuple[Hashable, int]]:
    return {a.young_id: (a.offer_id, a.rank) for a in allocation.assignments}


def test_a_first_choice_that_would_leave_someone_out_is_given_up_so_everyone_is_placed() -> None:
    # Giving A their 1st choice X (two 1st choices in all) would leave B, whose 1st choice W goes to C, unplaced.
    allocation = allocate(
        [young("A", "X", "Y"), young("B", "W", "X"), young("C", "W")],
        [offer("W", 1), offer("X", 1), offer("Y", 1)],
    )
    assert placements(allocation) == {"A": ("Y", 2), "B": ("X", 2), "C": ("W", 1)}
    assert allocation.placed == 3 and allocation.rank_profile == [1, 2, 0, 0, 0] and allocation.unplaced == ()


def test_among_plans_placing_as_many_the_most_first_choices_then_the_most_second_choices() -> None:
    # Two plans place all four; the engine takes the one with three 1st choices, not one.
    allocation = allocate(
        [young("A", "X", "Y"), young("B", "X", "Z"), young("C", "Y", "X"), young("D", "Z", "Y", "X")],
        [offer("X", 1), offer("Y", 1), offer("Z", 2)],
    )
    assert placements(allocation) == {"A": ("X", 1), "B": ("Z", 2), "C": ("Y", 1), "D": ("Z", 1)}
    assert allocation.rank_profile == [3, 1, 0, 0, 0]
    # One 1st choice either way; then a 2nd choice beats a 3rd (W, full, keeps Y at B's 3rd rank).
    later = allocate([young("A", "X", "Y"), young("B", "X", "W", "Y")], [offer("X", 1), offer("Y", 1), offer("W", 0)])
    assert placements(later) == {"A": ("Y", 2), "B": ("X", 1)} and later.rank_profile == [1, 1, 0, 0, 0]


def test_one_more_young_person_placed_is_worth_any_number_of_first_choices() -> None:
    # A chain: Y1 … Y6 each on their 1st choice leave Y0 out; shifting everyone to their 5th choice places all.
    full = [offer(f"Full{r}", 0) for r in (2, 3, 4)]
    chain = [young("Y0", "O1")] + [young(f"Y{j}", f"O{j}", "Full2", "Full3", "Full4", f"O{j + 1}") for j in range(1, 7)]
    allocation = allocate(chain, [*full, *(offer(f"O{j}", 1) for j in range(1, 8))])
    assert allocation.placed == 7 and allocation.rank_profile == [1, 0, 0, 0, 6]
    assert placements(allocation)["Y6"] == ("O7", 5)


def test_one_more_first_choice_is_worth_any_number_of_second_choices_turned_third() -> None:
    # A ring of six: each on their 2nd choice, or all moved one step: Y0 to their 1st, the others to their 3rd.
    ring = [young("Y0", "O1", "O0")] + [young(f"Y{j}", "Full", f"O{j}", f"O{(j + 1) % 6}") for j in range(1, 6)]
    allocation = allocate(ring, [offer("Full", 0), *(offer(f"O{j}", 1) for j in range(6))])
    assert allocation.placed == 6 and allocation.rank_profile == [1, 0, 5, 0, 0]
    assert placements(allocation)["Y0"] == ("O1", 1)


def test_places_are_never_exceeded_and_a_tie_leaves_the_others_unplaced_for_full_missions() -> None:
    allocation = allocate([young(f"Y{i}", "X") for i in range(5)] + [young("E", "X", "Z")],
                          [offer("X", 3), offer("Z", 1)])
    assert allocation.placed == 4 and allocation.rank_profile == [3, 1, 0, 0, 0]
    assert placements(allocation)["E"] == ("Z", 2)
    assert [(f.offer_id, f.assigned, f.places) for f in allocation.fills] == [("X", 3, 3), ("Z", 1, 1)]
    assert Counter(u.reason for u in allocation.unplaced) == {UNPLACED_CHOICES_FULL: 2}
    assert {u.label for u in allocation.unplaced} == {"Toutes ses missions choisies sont complètes"}


def test_ineligible_choices_are_left_out_with_their_reason_and_ranks_stay_as_given() -> None:
    offers = [
        offer("Late", 2, start=date(2027, 3, 1), end=date(2027, 3, 5)),
        offer("Adults", 2, min_age=18),
        offer("Under17", 2, max_age=16),
        offer("Open", 2),
    ]
    youths = [
        young("A", "Late", "Adults", "Open", available_until=date(2026, 12, 31)),
        young("B", "Under17", "Gone", birth_date=date(2009, 1, 1)),  # 17 on START
        young("C"),
        young("D", "Late", "Adults", available_until=date(2026, 12, 31)),
    ]
    allocation = allocate(youths, offers)
    assert placements(allocation) == {"A": ("Open", 3)}
    assert allocation.rank_profile == [0, 0, 1, 0, 0]
    assert [(e.young_id, e.offer_id, e.rank, e.reason) for e in allocation.excluded] == [
        ("A", "Late", 1, CHOICE_DATES),
        ("A", "Adults", 2, CHOICE_TOO_YOUNG),
        ("B", "Under17", 1, CHOICE_TOO_OLD),
        ("B", "Gone", 2, CHOICE_UNKNOWN_OFFER),
        ("D", "Late", 1, CHOICE_DATES),
        ("D", "Adults", 2, CHOICE_TOO_YOUNG),
    ]
    assert [(u.young_id, u.reason, u.label) for u in allocation.unplaced] == [
        ("B", UNPLACED_NO_COMPATIBLE_CHOICE, "Aucun vœu compatible (dates ou âge)"),
        ("C", UNPLACED_NO_CHOICE, "Aucun vœu"),
        ("D", UNPLACED_NO_COMPATIBLE_CHOICE, "Aucun vœu compatible (dates ou âge)"),
    ]


def test_age_is_counted_on_the_first_day_of_the_mission() -> None:
    sixteen = offer("X", 1, min_age=16)
    assert choice_problem(young("A", "X", birth_date=START.replace(year=START.year - 16)), sixteen) is None
    day_after = START.replace(year=START.year - 16) + timedelta(days=1)
    assert choice_problem(young("A", "X", birth_date=day_after), sixteen) == CHOICE_TOO_YOUNG
    leap_born = young("A", "L", birth_date=date(2012, 2, 29))  # 15 on 1 March 2027, not on 28 February
    assert choice_problem(leap_born, Offer("L", 1, date(2027, 2, 28), date(2027, 3, 2), min_age=15)) == CHOICE_TOO_YOUNG
    assert choice_problem(leap_born, Offer("L", 1, date(2027, 3, 1), date(2027, 3, 2), min_age=15)) is None
    within = young("A", "X", available_from=START, available_until=START + timedelta(days=4))
    assert choice_problem(within, offer("X", 1)) is None
    assert choice_problem(within, offer("X", 1, end=START + timedelta(days=5))) == CHOICE_DATES


def test_the_referent_moves_and_swaps_within_places_and_choices() -> None:
    allocation = allocate([young("A", "X", "Y"), young("B", "Y", "X"), young("C", "Z", "X")],
                          [offer("X", 1), offer("Y", 1), offer("Z", 2)])
    assert placements(allocation) == {"A": ("X", 1), "B": ("Y", 1), "C": ("Z", 1)}
    swapped = allocation.adjust([Move("A", "Y"), Move("B", "X")])  # both full: valid once both moves are made
    assert placements(swapped) == {"A": ("Y", 2), "B": ("X", 2), "C": ("Z", 1)}
    assert swapped.rank_profile == [1, 2, 0, 0, 0] and swapped.adjusted and not allocation.adjusted
    assert [(f.offer_id, f.assigned) for f in swapped.fills] == [("X", 1), ("Y", 1), ("Z", 1)]
    removed = swapped.adjust([Unassign("C")])
    assert [(u.young_id, u.reason, u.label) for u in removed.unplaced] == [
        ("C", UNPLACED_BY_REFERENT, "Retiré·e de sa mission par le référent")
    ]
    assert placements(removed.adjust([Move("C", "Z")]))["C"] == ("Z", 1)
    assert placements(allocation) == {"A": ("X", 1), "B": ("Y", 1), "C": ("Z", 1)}  # the original is untouched


def test_the_referent_cannot_overfill_a_mission_or_place_someone_where_they_cannot_go() -> None:
    allocation = allocate(
        [young("A", "X", "Y"), young("B", "Y"), young("C", "Adults", "Y")],
        [offer("X", 1), offer("Y", 1), offer("Adults", 1, min_age=18)],
    )
    assert placements(allocation) == {"A": ("X", 1), "B": ("Y", 1)}
    with pytest.raises(AdjustmentError, match="Mission Y complète : 2 jeunes pour 1 place"):
        allocation.adjust([Move("A", "Y")])
    with pytest.raises(AdjustmentError, match="âge minimum de la mission non atteint"):
        allocation.adjust([Move("C", "Adults")])
    with pytest.raises(AdjustmentError, match="ne fait pas partie de ses vœux"):
        allocation.adjust([Move("B", "X")])
    with pytest.raises(AdjustmentError, match="Jeune inconnu"):
        allocation.adjust([Unassign("Z")])
    with pytest.raises(AdjustmentError, match="Mission inconnue"):
        allocation.adjust([Move("A", "Nowhere")])
    assert placements(allocation.adjust([Unassign("B"), Move("C", "Y")]))["C"] == ("Y", 2)


def test_inputs_the_engine_cannot_rank_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 5 choices"):
        allocate([young("A", *"ABCDEF")], [])
    with pytest.raises(ValueError, match="ranked twice"):
        allocate([young("A", "X", "X")], [offer("X", 1)])
    with pytest.raises(ValueError, match="unique"):
        allocate([young("A"), young("A")], [])
    assert allocate([], []).placed == 0
    with pytest.raises(ValueError, match="whole number"):
        allocate([young("A", "X")], [replace(offer("X", 1), places=1.5)])  # type: ignore[arg-type]


def test_places_past_64_bits_are_as_good_as_enough_places() -> None:
    youths = [young("A", "X", "Y"), young("B", "X"), young("C", "Y")]
    allocation = allocate(youths, [offer("X", 10**30), offer("Y", 2**63 - 1)])
    assert placements(allocation) == {"A": ("X", 1), "B": ("X", 1), "C": ("Y", 1)}
    assert [(f.assigned, f.places) for f in allocation.fills] == [(2, 10**30), (1, 2**63 - 1)]


def test_an_offer_whose_maximum_age_is_below_its_minimum_takes_nobody_and_zero_places_fill_nobody() -> None:
    youths = [young("A", "X", "Z", "Y"), young("B", "Z")]
    allocation = allocate(youths, [offer("X", 3, min_age=18, max_age=16), offer("Y", 0), offer("Z", 1)])
    assert {(e.young_id, e.offer_id) for e in allocation.excluded} == {("A", "X")}
    assert len(allocation.assignments) == 1 and sum(f.assigned for f in allocation.fills) == 1
    assert allocation.fills[1].assigned == 0


def brute_force(youths: Sequence[Young], offers: Sequence[Offer]) -> tuple[int, ...]:
    """(placed, 1st … 5th choices) of the best plan, every plan enumerated."""
    by_id = {o.id: o for o in offers}
    options = [[None] + [(o, r) for r, o in enumerate(y.choices, 1) if o in by_id
                         and choice_problem(y, by_id[o]) is None] for y in youths]
    best: tuple[int, ...] = ()
    for plan in itertools.product(*options):
        used = Counter(p[0] for p in plan if p)
        if all(n <= by_id[o].places for o, n in used.items()):
            ranks = Counter(p[1] for p in plan if p)
            best = max(best, (sum(ranks.values()), *(ranks[r] for r in range(1, 6))))
    return best


def random_instance(rng: random.Random, n_young: int, n_offers: int) -> tuple[list[Young], list[Offer]]:
    offers = [Offer(f"O{j}", rng.randint(0, 3), START + timedelta(days=7 * rng.randint(0, 3)),
                    START + timedelta(days=7 * rng.randint(0, 3) + 30), min_age=rng.choice([15, 15, 16]))
              for j in range(n_offers)]
    youths = [Young(f"Y{i}", tuple(rng.sample([o.id for o in offers], rng.randint(0, min(5, n_offers)))),
                    START.replace(year=START.year - rng.choice([15, 16, 17])) + timedelta(days=rng.randint(0, 2)),
                    available_until=rng.choice([date.max, START + timedelta(days=40)]))
              for i in range(n_young)]
    return youths, offers


def assert_valid(allocation: Allocation, youths: Sequence[Young], offers: Sequence[Offer]) -> None:
    by_id = {o.id: o for o in offers}
    used = Counter(a.offer_id for a in allocation.assignments)
    assert all(n <= by_id[o].places for o, n in used.items())
    assert len({a.young_id for a in allocation.assignments}) == allocation.placed
    for a in allocation.assignments:
        y = next(y for y in youths if y.id == a.young_id)
        assert y.choices[a.rank - 1] == a.offer_id and choice_problem(y, by_id[a.offer_id]) is None


@pytest.mark.parametrize("levels_per_solve", [None, 1, 2])
def test_the_engine_finds_the_exhaustive_optimum_on_random_tiny_instances(levels_per_solve: int | None) -> None:
    rng = random.Random(7)
    for _ in range(150):
        youths, offers = random_instance(rng, rng.randint(1, 7), rng.randint(1, 5))
        allocation = allocate(youths, offers, levels_per_solve=levels_per_solve)
        assert_valid(allocation, youths, offers)
        assert (allocation.placed, *allocation.rank_profile) == brute_force(youths, offers)


def sequential_lp(youths: Sequence[Young], offers: Sequence[Offer]) -> list[int]:
    """Placed, then 1st … 5th choices: each maximised with the previous ones fixed (GLOP, one variable per pair)."""
    from ortools.linear_solver import pywraplp

    by_id = {o.id: o for o in offers}
    pairs = [(y.id, o, r) for y in youths for r, o in enumerate(y.choices, 1)
             if o in by_id and choice_problem(y, by_id[o]) is None]
    solver = pywraplp.Solver.CreateSolver("GLOP")
    x = [solver.NumVar(0, 1, "") for _ in pairs]
    for key, limit in [*((y.id, 1) for y in youths), *((o.id, o.places) for o in offers)]:
        if edges := [x[e] for e, p in enumerate(pairs) if key in (p[0], p[1])]:
            solver.Add(solver.Sum(edges) <= limit)
    values = []
    for goal in [None, 1, 2, 3, 4, 5]:
        terms = [x[e] for e, p in enumerate(pairs) if goal in (None, p[2])]
        if not terms:
            values.append(0)
            continue
        solver.Maximize(solver.Sum(terms))
        assert solver.Solve() == pywraplp.Solver.OPTIMAL
        values.append(round(solver.Objective().Value()))
        solver.Add(solver.Sum(terms) == values[-1])
    return values


@pytest.mark.parametrize("levels_per_solve", [None, 1])
def test_the_engine_matches_sequential_linear_programs_on_random_crowded_instances(
    levels_per_solve: int | None,
) -> None:
    rng = random.Random(11)
    for _ in range(4):
        youths, offers = random_instance(rng, 120, 25)
        allocation = allocate(youths, offers, levels_per_solve=levels_per_solve)
        assert_valid(allocation, youths, offers)
        assert [allocation.placed, *allocation.rank_profile] == sequential_lp(youths, offers)


def test_showing_and_adjusting_an_allocation_does_not_load_the_solver() -> None:
    script = """
import sys
from surge.youth import UNPLACED_CHOICES_FULL, Allocation, Move, OfferFill, Unplaced
allocation = Allocation((), (Unplaced("A", UNPLACED_CHOICES_FULL),), (), (OfferFill("X", 0, 1),),
                        eligible={"A": {"X": 1}}, order=("A",))
assert allocation.adjust([Move("A", "X")]).rank_profile == [1, 0, 0, 0, 0]
assert "ortools" not in sys.modules and "numpy" not in sys.modules, "solver loaded"
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
