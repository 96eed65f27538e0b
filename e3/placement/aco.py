"""Ant colony optimisation on a capacitated item -> bin assignment: MAX-MIN Ant System (Stuetzle &
Hoos 2000; ``variant="mmas"``) or 0.1.0's Ant System-style variant (Dorigo, Maniezzo & Colorni
1996, with iteration- and global-best deposits; ``variant="legacy"``).

Used by AntLLM (spec "ACO"): items are agents, bins are servers, demand and capacity vectors are
the four resource dimensions. No well-kept PyPI library covers a capacitated assignment (``aco``
0.2.3 and ``aco-pants`` 0.5.2 solve the travelling salesman problem only and are unmaintained),
so this one is small and tested on a hand-worked instance (tests/test_placement.py).

Each ant takes the free items in a random order (shared by the ants of one iteration, which are
built side by side as arrays) and puts each in a bin that still fits, with
probability proportional to ``tau[i][b]^alpha * eta[i][b]^beta``; an ant that finds no fitting bin
for some item is discarded. After each iteration the pheromone of the free items evaporates by
``rho`` and the iteration-best and global-best ants deposit ``q / cost`` on their choices.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from e3.errors import E3Error


@dataclass(frozen=True)
class AcoResult:
    """The best assignment found (None if no ant was feasible), its cost and the number of
    objective evaluations."""

    assignment: list[int] | None
    cost: float
    evaluations: int


def ant_system(demand: Sequence[Sequence[float]], capacity: Sequence[Sequence[float]], base: Sequence[int],
               free: Sequence[int], allowed: Sequence[bool], eta: Sequence[Sequence[float]],
               objective: Callable[[list[int]], float], alpha: float, beta: float, rho: float, q: float,
               ants: int, iterations: int, rng: random.Random, warm_start: bool = False,
               objective_many: Callable[[np.ndarray], Sequence[float]] | None = None,
               variant: str = "legacy", p_best: float = 0.05) -> AcoResult:
    """Minimise ``objective`` over assignments of the ``free`` items; the others stay at ``base``.

    Args:
        demand: item -> demand per dimension; ``capacity``: bin -> capacity per dimension.
        base: a bin per item (fixed items' bins; with ``warm_start`` also the start for free items).
        free: items to (re)assign; ``allowed``: bins that may receive a free item.
        eta: item -> bin -> heuristic desirability (> 0; 0 forbids).
        objective: full assignment -> cost (> 0 for the ``q / cost`` deposit).
        alpha, beta, rho, q: Ant System parameters; ``ants`` per iteration, ``iterations``.
        rng: seeded stream; ``warm_start``: ``base`` itself is the first global best if it fits.
        objective_many: optional, the same objective of several assignments at once (int array of
            shape (k, items) -> k costs), equal to ``objective`` row by row; scores an
            iteration's feasible ants in one call.
        variant: ``mmas``: MAX-MIN Ant System (Stuetzle & Hoos 2000): trails start at
            ``tau_max = q / (rho * C_best)`` once a first cost is known, only the best-so-far ant
            deposits ``q / C_best``, and trails are clamped to ``[tau_min, tau_max]`` with
            ``tau_min = tau_max * (1 - p_best^(1/n)) / ((avg - 1) * p_best^(1/n))`` (n free items,
            avg = bins per item / 2), both recomputed as C_best improves. ``legacy`` (0.1.0):
            trails start at 1, the iteration-best and global-best ants deposit, no bounds.

    Raises:
        E3Error: mismatched sizes or a non-positive cost.
    """
    n_bins = len(capacity)
    if len(demand) != len(base) or len(eta) != len(base) or len(allowed) != n_bins:
        raise E3Error(f"ant_system: sizes disagree (items {len(demand)}/{len(base)}/{len(eta)}, bins {n_bins}/{len(allowed)})")
    free = list(free)
    free_set = set(free)
    dem = np.asarray(demand, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    free0 = cap.copy()  # residual capacity once the fixed items are in
    for i, b in enumerate(base):
        if i not in free_set:
            free0[b] -= dem[i]
    ok_bins = np.asarray(allowed, dtype=bool)
    tau = np.ones((len(base), n_bins))
    heur = np.where(ok_bins[None, :], np.asarray(eta, dtype=float), 0.0) ** beta
    best: list[int] | None = None
    best_cost = float("inf")
    evals = 0
    if variant not in ("mmas", "legacy"):
        raise E3Error(f"ant_system: variant {variant!r} is not 'mmas' or 'legacy'")
    mmas = variant == "mmas"
    tau_set = False  # MMAS: trails are set to tau_max once the first cost is known

    def bounds(c: float) -> tuple[float, float]:
        t_max = q / (rho * c)
        n = max(1, len(free))
        root = p_best ** (1.0 / n)
        avg = max(2.0, ok_bins.sum() / 2.0)
        return t_max * (1.0 - root) / ((avg - 1.0) * root), t_max

    if warm_start:
        res = free0.copy()
        fits = True
        for i in free:
            b = base[i]
            res[b] -= dem[i]
            if not ok_bins[b] or (res[b] < -1e-9).any():
                fits = False
                break
        if fits:
            best, best_cost = list(base), objective(list(base))
            evals += 1
    rows = np.asarray(free, dtype=int)
    ant_ix = np.arange(ants)
    for _ in range(iterations):
        # the ants of one iteration are built side by side (vectorised over ants); they share one
        # random agent order, each draws its own bins
        res = np.broadcast_to(free0, (ants, n_bins, free0.shape[1])).copy()
        xs = np.tile(np.asarray(base, dtype=int), (ants, 1))
        alive = np.ones(ants, dtype=bool)
        order = free[:]
        rng.shuffle(order)
        attract = tau ** alpha * heur  # items x bins; tau changes only between iterations
        # ufunc reductions: ndarray.all/sum/cumsum's Python wrappers cost more than these arrays
        for i in order:
            fit = np.logical_and.reduce(res >= dem[i] - 1e-9, axis=2)  # ants x bins
            cum = np.add.accumulate(attract[i][None, :] * fit, axis=1)
            tot = cum[:, -1]
            alive &= tot > 0
            r = np.array([rng.random() for _ in range(ants)]) * tot
            pick = np.minimum(np.add.reduce(cum <= r[:, None], axis=1), n_bins - 1)
            xs[:, i] = pick
            res[ant_ix, pick] -= dem[i]
        it_best, it_cost = None, float("inf")
        live = np.flatnonzero(alive)  # an ant that found no fitting bin for some agent is dropped
        costs = objective_many(xs[live]) if objective_many is not None and len(live) else \
            [objective([int(v) for v in xs[k]]) for k in live]
        for k, c in zip(live, costs, strict=True):
            evals += 1
            if not c > 0:
                raise E3Error(f"ant_system: objective must be > 0 (value: {c!r})")
            if c < it_cost:
                it_best, it_cost = [int(v) for v in xs[k]], c
        if it_best is not None and it_cost < best_cost:
            best, best_cost = it_best, it_cost
        if mmas:
            if best is None:
                continue
            lo, hi = bounds(best_cost)
            if not tau_set:
                tau[rows] = hi
                tau_set = True
            tau[rows] *= 1.0 - rho
            tau[rows, np.asarray(best)[rows]] += q / best_cost
            tau[rows] = np.clip(tau[rows], lo, hi)
            continue
        tau[rows] *= 1.0 - rho
        for sol, c in ((it_best, it_cost), (best, best_cost)):
            if sol is not None:
                tau[rows, np.asarray(sol)[rows]] += q / c
    return AcoResult(best, best_cost, evals)
