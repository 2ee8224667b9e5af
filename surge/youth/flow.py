"""Lexicographic min-cost flow: maximise several arc counts in order of importance, exactly, in 64-bit arithmetic.

The problem: a network (arcs with integer capacities, nodes with integer supplies) and levels, each a set of arcs;
among the feasible integral flows, maximise the flow through the first level, then, with that, through the
second, and so on. `place_groups` builds the allocation's network and uses it with level 0 = every young → offer
arc (the number placed) and level r = the rank-r arcs.

Method: chunks of levels, each solved by one OR-Tools min-cost flow whose weights make the chunk lexicographic,
then the network is cut down to the optimal face of that solve before the next chunk.

1. Weights. Give level j of a chunk of m levels the weight B^(m−1−j), B = K + 1, where K bounds how much one unit
   cycle of the residual graph can change any level's count. Two integral flows differ by a sum of unit simple
   cycles, each feasible from the first flow (conformal decomposition); if a flow y were lexicographically better
   than the optimum x, one of the cycles of y − x would be lexicographically positive, and its first non-zero
   level, ≥ +1, outweighs all later ones, ≥ −K·(B^(m−1−j) − 1)/(B − 1) > −B^(m−1−j): the cycle would lower the
   cost, against the optimality of x. So the weighted optimum is the lexicographic optimum of the chunk, and every
   weighted optimum has the same level counts.
2. The optimal face. Let d be shortest-path distances in the residual graph of x (no negative cycle, as x is
   optimal) and rc(a) = cost(a) + d(tail) − d(head) ≥ 0 on every residual arc. For any feasible flow y,
   cost(y) = Σ rc(a)·y(a) − Σ d(v)·supply(v), whose minimum over the capacity box is reached exactly when y = 0 on
   arcs with rc > 0 and y = capacity on arcs with rc < 0; x reaches it. So the flows optimal for the chunk (hence
   lexicographically optimal for its levels) are exactly the feasible flows of the network where arcs with
   rc > 0 are removed and arcs with rc < 0 are fixed full (removed, their flow moved into the supplies). That
   network is again a flow network, with an integral optimum, on which the next chunk is solved.
3. The distances themselves come from a second min-cost flow: a root with one unit for every node, through
   the residual arcs (uncapacitated); each unit follows a shortest path, and along arcs carrying flow
   d(head) = d(tail) + cost (complementary slackness with the distance vector, an optimal dual), read by one
   traversal from the root.

Chunks are as long as the arithmetic allows: the costs reach B^m and OR-Tools multiplies them by the number of
nodes, the distances add up to nodes² × the largest cost. For 30,000 young people among 3,000 offers, K ≤ 3,000
and the five levels (placed, 1st … 4th choices; the 5th follows) take two chunks: three solves in all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from ortools.graph.python.min_cost_flow import SimpleMinCostFlow

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_LIMIT = 2**62


def lexicographic_flow(
    tail: IntArray,
    head: IntArray,
    capacity: IntArray,
    supply: IntArray,
    levels: Sequence[BoolArray],
    *,
    cycle_bound: int,
    levels_per_solve: int | None = None,
) -> IntArray:
    """The flow on each arc of a lexicographic optimum. `cycle_bound` bounds how many arcs of any one level a
    simple cycle of the network crosses in each direction; `levels_per_solve` caps the chunk length (None: as
    long as the arithmetic allows)."""
    n_nodes, n_arcs = len(supply), len(tail)
    flow = np.zeros(n_arcs, dtype=np.int64)
    if n_arcs == 0:
        return flow
    supply = np.asarray(supply, dtype=np.int64).copy()
    live = np.ones(n_arcs, dtype=bool)
    base = cycle_bound + 1
    start = 0
    while start < len(levels):
        size = _chunk(len(levels) - start, base, n_nodes, int(np.abs(supply).sum()), levels_per_solve)
        chunk = levels[start : start + size]
        start += size
        idx = np.nonzero(live)[0]
        cost = np.zeros(len(idx), dtype=np.int64)
        for j, level in enumerate(chunk):
            cost -= base ** (size - 1 - j) * level[idx].astype(np.int64)
        x = _min_cost_flow(n_nodes, tail[idx], head[idx], capacity[idx], cost, supply)
        if start == len(levels):
            flow[idx] += x
            break
        d = _distances(n_nodes, tail[idx], head[idx], capacity[idx], cost, x)
        reduced = cost + d[tail[idx]] - d[head[idx]]
        full = idx[reduced < 0]
        flow[full] = capacity[full]
        np.subtract.at(supply, tail[full], capacity[full])
        np.add.at(supply, head[full], capacity[full])
        live[idx[reduced != 0]] = False
    return flow


def _chunk(remaining: int, base: int, n_nodes: int, supply: int, cap: int | None) -> int:
    """The longest chunk whose costs stay clear of 64-bit overflow in the solves it needs."""
    for size in range(min(remaining, cap or remaining), 1, -1):
        largest = sum(base**j for j in range(size))
        last = size == remaining
        bound = largest * (n_nodes + 2) * (supply + 2) if last else largest * (n_nodes + 2) ** 2
        if bound < _LIMIT:
            return size
    return 1


def _min_cost_flow(
    n_nodes: int, tail: IntArray, head: IntArray, capacity: IntArray, cost: IntArray, supply: IntArray
) -> IntArray:
    solver = SimpleMinCostFlow()
    arcs = solver.add_arcs_with_capacity_and_unit_cost(
        tail.astype(np.int32), head.astype(np.int32), capacity.astype(np.int64), cost.astype(np.int64)
    )
    solver.set_nodes_supplies(np.arange(n_nodes, dtype=np.int32), supply.astype(np.int64))
    status = solver.solve()
    if status != SimpleMinCostFlow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    result: IntArray = np.asarray(solver.flows(np.asarray(arcs, dtype=np.int32)), dtype=np.int64)
    return result


def _distances(
    n_nodes: int, tail: IntArray, head: IntArray, capacity: IntArray, cost: IntArray, x: IntArray
) -> IntArray:
    """Shortest-path distances in the residual graph of the optimal flow `x`, from a root joined to every node."""
    forward = x < capacity
    backward = x > 0
    root = n_nodes
    r_tail = np.concatenate((tail[forward], head[backward], np.full(n_nodes, root, np.int64)))
    r_head = np.concatenate((head[forward], tail[backward], np.arange(n_nodes, dtype=np.int64)))
    r_cost = np.concatenate((cost[forward], -cost[backward], np.zeros(n_nodes, np.int64)))
    supply = np.full(n_nodes + 1, -1, dtype=np.int64)
    supply[root] = n_nodes
    units = _min_cost_flow(n_nodes + 1, r_tail, r_head, np.full(len(r_tail), n_nodes, np.int64), r_cost, supply)
    used = np.nonzero(units > 0)[0]
    used = used[np.argsort(r_tail[used], kind="stable")]
    starts = np.searchsorted(r_tail[used], np.arange(n_nodes + 2))
    heads, costs = r_head[used].tolist(), r_cost[used].tolist()
    bounds = starts.tolist()
    d = [0] * (n_nodes + 1)
    seen = [False] * (n_nodes + 1)
    seen[root] = True
    queue = deque([root])
    while queue:
        u = queue.popleft()
        for a in range(bounds[u], bounds[u + 1]):
            v = heads[a]
            if not seen[v]:
                seen[v] = True
                d[v] = d[u] + costs[a]
                queue.append(v)
    if not all(seen):
        raise RuntimeError("shortest paths left a node unreached")
    return np.array(d[:n_nodes], dtype=np.int64)


def place_groups(
    members: list[list[int]],
    pairs_of_group: list[tuple[tuple[int, int], ...]],
    places: list[int],
    *,
    levels_per_solve: int | None = None,
) -> dict[int, tuple[int, int]]:
    """Young person index → (offer index, rank) in a lexicographic optimum (placed, then 1st, 2nd … choices) of
    the network source → group (its size) → offer (its places) → sink; `pairs_of_group` are each group's
    (offer index, rank) pairs, `members` its young people's indexes."""
    if not members:
        return {}
    arc_g = np.array([g for g, pairs in enumerate(pairs_of_group) for _ in pairs], dtype=np.int64)
    arc_o = np.array([j for pairs in pairs_of_group for j, _ in pairs], dtype=np.int64)
    arc_rank = np.array([r for pairs in pairs_of_group for _, r in pairs], dtype=np.int64)
    used, o_node = np.unique(arc_o, return_inverse=True)
    sizes = np.array([len(m) for m in members], dtype=np.int64)
    total = int(sizes.sum())
    # Places beyond the number of young people change nothing: capped, they stay within 64-bit capacities.
    open_places = np.array([min(int(places[j]), total) for j in used.tolist()], dtype=np.int64)
    n_groups, n_offers = len(members), len(used)
    source, sink, first_group, first_offer = 0, 1, 2, 2 + n_groups

    groups = np.arange(n_groups, dtype=np.int64)
    offer_nodes = np.arange(n_offers, dtype=np.int64)
    tail = np.concatenate((first_group + arc_g, np.full(n_groups, source), first_offer + offer_nodes, [source]))
    head = np.concatenate((first_offer + o_node, first_group + groups, np.full(n_offers, sink), [sink]))
    capacity = np.concatenate((np.minimum(sizes[arc_g], open_places[o_node]), sizes, open_places, [total]))
    supply = np.zeros(first_offer + n_offers, dtype=np.int64)
    supply[source], supply[sink] = total, -total

    pair = np.zeros(len(tail), dtype=bool)
    pair[: len(arc_g)] = True
    rank = np.zeros(len(tail), dtype=np.int64)
    rank[: len(arc_g)] = arc_rank
    # The last rank in use needs no level of its own: with the number placed fixed, it is what the others leave.
    levels = [pair] + [rank == r for r in range(1, int(arc_rank.max()))]
    flows = lexicographic_flow(
        tail.astype(np.int64), head.astype(np.int64), capacity.astype(np.int64), supply, levels,
        cycle_bound=min(n_groups, n_offers), levels_per_solve=levels_per_solve,
    )

    chosen: dict[int, tuple[int, int]] = {}
    cursor = [0] * n_groups
    for a in np.nonzero(flows[: len(arc_g)])[0].tolist():
        g, f = int(arc_g[a]), int(flows[a])
        for i in members[g][cursor[g] : cursor[g] + f]:
            chosen[i] = (int(arc_o[a]), int(arc_rank[a]))
        cursor[g] += f
    return chosen
