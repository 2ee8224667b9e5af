"""The SNU allocation: which young person goes to which general-interest mission (MIG) among the ones they ranked.

Rules, in this order of importance:

1. a young person only on an offer they ranked and are eligible for (`choice_problem`: the offer's dates within
   their availability, their age on the first day within the offer's limits), at most once; no offer over its
   places;
2. as many young people placed as possible;
3. among the plans placing that many, rank-maximal: as many 1st choices as possible, then, with that, as many
   2nd choices, and so on (the lexicographic maximum of the rank profile).

How. Young people whose eligible choices are the same (same offers at the same ranks) are interchangeable and
grouped. The plan is a flow source → group (its size) → offer (the pair's rank) → sink (the offer's places), with
a free source → sink arc for those left unplaced; `flow.lexicographic_flow` maximises, in order, the flow through
all group → offer arcs, then through the rank-1 arcs, the rank-2 arcs … the rank-4 arcs (the 5th choices are then
what is left: the profile's sum is fixed). It is exact (the proof is in `flow`): a simple cycle of this
bipartite network crosses each group and offer at most once, so it adds or removes at most K = min(groups,
offers) young → offer arcs, the bound its weights need. A single flow with lexicographic weights would need
costs around K^5, past 64-bit integers for 3,000 offers; the chunked solve with the optimal face in between
stays within them.

Plain Python with no web or database import: the job that runs an allocation gives it young people and offers
and gets an `Allocation` back, which the referent's preview shows and `Allocation.adjust` edits. This module
loads OR-Tools and numpy (through `flow`) only when `allocate` runs, so a web process can show and adjust an
allocation without them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

MAX_CHOICES = 5

# Why a choice is left out before the allocation.
CHOICE_UNKNOWN_OFFER = "unknown_offer"
CHOICE_DATES = "dates"
CHOICE_TOO_YOUNG = "too_young"
CHOICE_TOO_OLD = "too_old"
CHOICE_LABELS = {
    CHOICE_UNKNOWN_OFFER: "Mission retirée ou inconnue",
    CHOICE_DATES: "Dates de la mission hors de ses disponibilités",
    CHOICE_TOO_YOUNG: "Âge minimum de la mission non atteint au premier jour",
    CHOICE_TOO_OLD: "Âge maximum de la mission dépassé au premier jour",
}

# Why a young person is left unplaced.
UNPLACED_NO_CHOICE = "no_choice"
UNPLACED_NO_COMPATIBLE_CHOICE = "no_compatible_choice"
UNPLACED_CHOICES_FULL = "choices_full"
UNPLACED_BY_REFERENT = "removed_by_referent"
UNPLACED_LABELS = {
    UNPLACED_NO_CHOICE: "Aucun vœu",
    UNPLACED_NO_COMPATIBLE_CHOICE: "Aucun vœu compatible (dates ou âge)",
    UNPLACED_CHOICES_FULL: "Toutes ses missions choisies sont complètes",
    UNPLACED_BY_REFERENT: "Retiré·e de sa mission par le référent",
}


@dataclass(frozen=True, slots=True)
class Young:
    id: Hashable
    choices: tuple[Hashable, ...]  # offer ids, 1st choice first, at most MAX_CHOICES
    birth_date: date
    available_from: date = date.min
    available_until: date = date.max


@dataclass(frozen=True, slots=True)
class Offer:
    id: Hashable
    places: int  # youth places still open
    start: date
    end: date
    min_age: int = 0  # age on the first day; 18 closes the offer to minors
    max_age: int | None = None  # age on the first day; None: no maximum


def age_on(birth_date: date, day: date) -> int:
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def choice_problem(young: Young, offer: Offer) -> str | None:
    """Why `young` cannot take `offer` (a CHOICE_* code), None when they can."""
    if offer.start < young.available_from or offer.end > young.available_until:
        return CHOICE_DATES
    age = age_on(young.birth_date, offer.start)
    if age < offer.min_age:
        return CHOICE_TOO_YOUNG
    if offer.max_age is not None and age > offer.max_age:
        return CHOICE_TOO_OLD
    return None


@dataclass(frozen=True, slots=True)
class Assignment:
    young_id: Hashable
    offer_id: Hashable
    rank: int  # 1 for a first choice


@dataclass(frozen=True, slots=True)
class Unplaced:
    young_id: Hashable
    reason: str  # an UNPLACED_* code

    @property
    def label(self) -> str:
        return UNPLACED_LABELS[self.reason]


@dataclass(frozen=True, slots=True)
class ExcludedChoice:
    young_id: Hashable
    offer_id: Hashable
    rank: int
    reason: str  # a CHOICE_* code

    @property
    def label(self) -> str:
        return CHOICE_LABELS[self.reason]


@dataclass(frozen=True, slots=True)
class OfferFill:
    offer_id: Hashable
    assigned: int
    places: int


@dataclass(frozen=True, slots=True)
class Move:
    """Put a young person on an offer (from another one or from nowhere)."""

    young_id: Hashable
    offer_id: Hashable


@dataclass(frozen=True, slots=True)
class Unassign:
    young_id: Hashable


class AdjustmentError(ValueError):
    """A referent's change the rules refuse; the message is French, for the referent."""


@dataclass(frozen=True)
class Allocation:
    assignments: tuple[Assignment, ...]  # in the young people's order
    unplaced: tuple[Unplaced, ...]  # in the young people's order
    excluded: tuple[ExcludedChoice, ...]  # choices left out before the allocation, in the young people's order
    fills: tuple[OfferFill, ...]  # in the offers' order
    adjusted: bool = False  # a referent changed the computed plan: it is no longer guaranteed optimal
    eligible: Mapping[Hashable, Mapping[Hashable, int]] = field(default_factory=dict, repr=False)  # offer → rank
    order: tuple[Hashable, ...] = field(default=(), repr=False)  # the young people's ids, in input order

    @property
    def placed(self) -> int:
        return len(self.assignments)

    @property
    def rank_profile(self) -> list[int]:
        """How many got their 1st, 2nd … 5th choice."""
        counts = Counter(a.rank for a in self.assignments)
        return [counts[r] for r in range(1, MAX_CHOICES + 1)]

    @property
    def first_choice(self) -> int:
        return self.rank_profile[0]

    def by_young(self) -> dict[Hashable, Assignment]:
        return {a.young_id: a for a in self.assignments}

    def adjust(self, changes: Iterable[Move | Unassign]) -> Allocation:
        """The allocation after the referent's changes, applied in order and checked together: a young person
        only on an offer they ranked and are eligible for, no offer over its places once all changes are made (so
        two young people can swap full offers in one call). Raises AdjustmentError otherwise."""
        current = self.by_young()
        removed: set[Hashable] = set()
        excluded = {(e.young_id, e.offer_id): e.reason for e in self.excluded}
        places = {f.offer_id: f.places for f in self.fills}
        for change in changes:
            if change.young_id not in self.eligible:
                raise AdjustmentError(f"Jeune inconnu·e : {change.young_id}")
            if isinstance(change, Unassign):
                if current.pop(change.young_id, None) is not None:
                    removed.add(change.young_id)
                continue
            if change.offer_id not in places:
                raise AdjustmentError(f"Mission inconnue : {change.offer_id}")
            rank = self.eligible[change.young_id].get(change.offer_id)
            if rank is None:
                reason = excluded.get((change.young_id, change.offer_id))
                raise AdjustmentError(
                    f"Le ou la jeune {change.young_id} ne peut pas aller sur la mission {change.offer_id} : "
                    + (CHOICE_LABELS[reason].lower() if reason else "elle ne fait pas partie de ses vœux")
                )
            current[change.young_id] = Assignment(change.young_id, change.offer_id, rank)
            removed.discard(change.young_id)
        assigned = Counter(a.offer_id for a in current.values())
        for offer_id, count in assigned.items():
            if count > places[offer_id]:
                limit = places[offer_id]
                raise AdjustmentError(
                    f"Mission {offer_id} complète : {count} jeunes pour {limit} place{'s' if limit > 1 else ''}"
                )
        before = {u.young_id: u.reason for u in self.unplaced}
        return replace(
            self,
            assignments=tuple(current[y] for y in self.order if y in current),
            unplaced=tuple(
                Unplaced(y, UNPLACED_BY_REFERENT if y in removed else before.get(y, UNPLACED_CHOICES_FULL))
                for y in self.order
                if y not in current
            ),
            fills=tuple(OfferFill(f.offer_id, assigned[f.offer_id], f.places) for f in self.fills),
            adjusted=True,
        )


def allocate(youths: Sequence[Young], offers: Sequence[Offer], *, levels_per_solve: int | None = None) -> Allocation:
    """The exact allocation (see the module docstring). `levels_per_solve` caps how many objectives one flow
    solve handles (None: as many as 64-bit costs allow; 1 solves them one by one, through the optimal faces)."""
    _check(youths, offers)
    offer_index = {o.id: j for j, o in enumerate(offers)}

    excluded: list[ExcludedChoice] = []
    eligible: dict[Hashable, dict[Hashable, int]] = {}
    group_of: dict[tuple[tuple[int, int], ...], int] = {}
    members: list[list[int]] = []
    pairs_of_group: list[tuple[tuple[int, int], ...]] = []
    group_of_young = [-1] * len(youths)
    for i, y in enumerate(youths):
        pairs = []
        for rank, offer_id in enumerate(y.choices, start=1):
            j = offer_index.get(offer_id)
            problem = CHOICE_UNKNOWN_OFFER if j is None else choice_problem(y, offers[j])
            if problem is not None:
                excluded.append(ExcludedChoice(y.id, offer_id, rank, problem))
            elif j is not None:
                pairs.append((j, rank))
        eligible[y.id] = {offers[j].id: rank for j, rank in pairs}
        key = tuple(p for p in pairs if offers[p[0]].places > 0)
        if key:
            if (g := group_of.get(key)) is None:
                g = group_of[key] = len(members)
                members.append([])
                pairs_of_group.append(key)
            members[g].append(i)
            group_of_young[i] = g

    from surge.youth.flow import place_groups  # OR-Tools and numpy, loaded by the job that allocates only

    chosen = place_groups(members, pairs_of_group, [o.places for o in offers], levels_per_solve=levels_per_solve)

    assignments, unplaced = [], []
    for i, y in enumerate(youths):
        if i in chosen:
            j, rank = chosen[i]
            assignments.append(Assignment(y.id, offers[j].id, rank))
        else:
            reason = (UNPLACED_NO_CHOICE if not y.choices else UNPLACED_NO_COMPATIBLE_CHOICE if not eligible[y.id]
                      else UNPLACED_CHOICES_FULL)
            unplaced.append(Unplaced(y.id, reason))
    assigned = Counter(a.offer_id for a in assignments)
    return Allocation(
        assignments=tuple(assignments),
        unplaced=tuple(unplaced),
        excluded=tuple(excluded),
        fills=tuple(OfferFill(o.id, assigned[o.id], o.places) for o in offers),
        eligible=eligible,
        order=tuple(y.id for y in youths),
    )


def _check(youths: Sequence[Young], offers: Sequence[Offer]) -> None:
    if len({y.id for y in youths}) != len(youths):
        raise ValueError("young ids must be unique")
    if len({o.id for o in offers}) != len(offers):
        raise ValueError("offer ids must be unique")
    for o in offers:
        if not isinstance(o.places, int) or isinstance(o.places, bool):
            raise ValueError(f"open places must be a whole number ({o.id!r})")
        if o.places < 0:
            raise ValueError(f"open places cannot be negative ({o.id!r})")
        if o.start > o.end:
            raise ValueError(f"an offer cannot end before it starts ({o.id!r})")
    for y in youths:
        if len(y.choices) > MAX_CHOICES:
            raise ValueError(f"at most {MAX_CHOICES} choices ({y.id!r})")
        if len(set(y.choices)) != len(y.choices):
            raise ValueError(f"an offer ranked twice ({y.id!r})")
