"""Best deployment for given per-model rates: a small mixed-integer program on the priors.

Variables: ``x[n, m]`` in {0, 1} (pod of model m on node n), ``r[n, m] >= 0`` (its share of
model m's rate, req/s) and ``u`` (the largest node utilisation). Fluid model under processor
sharing: node n's utilisation is ``sum_m r[n, m] * s[n, m]`` (s = prior mean service, s).

    minimise   u + (w s[n,m] + ws s[n,m] / ref_m) summed over r[n,m] / sum_m lam_m + c * (pods changed)
    subject to sum_n r[n, m] = lam_m;  r[n, m] <= lam_m x[n, m];  sum_m r[n, m] s[n, m] <= u;
               sum_m demand[n, m, d] x[n, m] <= capacity[n, d]   for every dimension d.

``w`` (config ``fairness.static.service_weight_per_s``) keeps Stable Diffusion off 75-s CPU pods
unless it must go there; ``c`` is the planner's churn penalty. Solved with SciPy's HiGHS
(``scipy.optimize.milp``); the spec's "best static deployment from the priors" and the rules
planner both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from e3.errors import E3Error


@dataclass(frozen=True)
class Plan:
    """A deployment and its fluid routing.

    Attributes:
        pods: (node, model) pairs to run.
        rate: (node, model) -> req/s routed there (only for pods in ``pods``).
        max_utilisation: the optimum's u.
    """

    pods: frozenset[tuple[str, str]]
    rate: dict[tuple[str, str], float]
    max_utilisation: float

    def shares(self, model: str) -> dict[str, float]:
        """node -> fraction of ``model``'s rate (empty when the model has no rate)."""
        tot = sum(v for (n, m), v in self.rate.items() if m == model)
        return {n: v / tot for (n, m), v in self.rate.items() if m == model and tot > 0}


def best_deployment(nodes: list[str], models: list[str], capacity: dict[str, dict[str, float]],
                    demand: dict[tuple[str, str], dict[str, float]], service_s: dict[tuple[str, str], float],
                    rates: dict[str, float], service_weight_per_s: float = 0.0,
                    current: frozenset[tuple[str, str]] | None = None, churn_penalty: float = 0.0,
                    stretch_weight: float = 0.0, overload_weight: float = 0.0, overload_threshold: float = 1.0,
                    activation_cost: dict[tuple[str, str], float] | None = None) -> Plan:
    """Solve the program above.

    Args:
        capacity: node -> dimension -> capacity; demand: (node, model) -> dimension -> need.
        service_s: (node, model) -> prior mean service time in s.
        rates: model -> req/s (>= 0). Every model with a positive rate gets at least one pod.
        stretch_weight: adds ``stretch_weight * sum r[n,m] * s[n,m] / ref_m / sum lam`` (mean
            stretch, ref_m = the model's fastest prior): the planner's fairness term, which keeps
            every model near its best speed rather than sacrificing the small ones.
        overload_weight: adds ``overload_weight * max(0, u - overload_threshold)`` (a variable o >=
            u - threshold, o >= 0): a unit of utilisation above the threshold costs that much more
            than one below it, so the program reconfigures when a surge overloads a node (issue 29;
            0: not added, the program of 0.2.0).
        activation_cost: (node, model) -> cost of starting that pod when it is not in ``current``
            (stopping one costs nothing: pods drain before they stop); replaces ``churn_penalty``
            when given (issue 29's adapting planner: the activation downtime as a fraction of an
            epoch, in the units of u).

    Raises:
        E3Error: no feasible deployment (a model with a positive rate fits nowhere) or solver failure.
    """
    N, M = len(nodes), len(models)
    nx = N * M
    over = overload_weight > 0
    nvar = 2 * nx + 1 + over
    ix = lambda i, j: i * M + j  # noqa: E731
    ir = lambda i, j: nx + i * M + j  # noqa: E731
    iu = 2 * nx
    lam = np.array([max(0.0, float(rates.get(m, 0.0))) for m in models])
    total = lam.sum() or 1.0
    c = np.zeros(nvar)
    c[iu] = 1.0
    ref = {m: min(service_s[(n, m)] for n in nodes) for m in models}
    for i, n in enumerate(nodes):
        for j, m in enumerate(models):
            c[ir(i, j)] = (service_weight_per_s * service_s[(n, m)] + stretch_weight * service_s[(n, m)] / ref[m]) / total
            if current is not None and activation_cost is not None:
                c[ix(i, j)] = 0.0 if (n, m) in current else activation_cost[(n, m)]
            elif current is not None and churn_penalty > 0:
                c[ix(i, j)] = -churn_penalty if (n, m) in current else churn_penalty
    if over:
        c[iu + 1] = overload_weight
    rows, lo, hi = [], [], []

    def row(coefs: dict[int, float], lb: float, ub: float) -> None:
        a = np.zeros(nvar)
        for k, v in coefs.items():
            a[k] = v
        rows.append(a)
        lo.append(lb)
        hi.append(ub)

    for j in range(M):
        row({ir(i, j): 1.0 for i in range(N)}, lam[j], lam[j])
        for i in range(N):
            row({ir(i, j): 1.0, ix(i, j): -lam[j]}, -np.inf, 0.0)
    if over:
        row({iu: 1.0, iu + 1: -1.0}, -np.inf, overload_threshold)
    for i, n in enumerate(nodes):
        row({**{ir(i, j): service_s[(n, m)] for j, m in enumerate(models)}, iu: -1.0}, -np.inf, 0.0)
        for d, cap in capacity[n].items():
            coefs = {ix(i, j): demand[(n, m)].get(d, 0.0) for j, m in enumerate(models) if demand[(n, m)].get(d, 0.0)}
            if coefs:
                row(coefs, -np.inf, cap)
    # Imported here: scipy.optimize costs ~0.2 s, which every Snakefile parse would pay otherwise.
    from scipy.optimize import Bounds, LinearConstraint, milp

    integrality = np.zeros(nvar)
    integrality[:nx] = 1
    ub = np.full(nvar, np.inf)
    ub[:nx] = 1.0
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=integrality,
               bounds=Bounds(np.zeros(nvar), ub), options={"time_limit": 10.0})
    if res.x is None:
        # Name the models that fit on no node by themselves (the usual cause, issue 33), else say
        # the pods do not fit together.
        alone = [m for j, m in enumerate(models) if lam[j] > 0 and not any(
            all(demand[(n, m)].get(d, 0.0) <= cap for d, cap in capacity[n].items()) for n in nodes)]
        why = (f"model(s) {alone} fit on no node (memory demand above every node's capacity)" if alone
               else "the models with a positive rate do not fit on the nodes together")
        raise E3Error(f"no feasible deployment for rates {rates}: {why} ({res.message})")
    x = res.x
    pods = frozenset((n, m) for i, n in enumerate(nodes) for j, m in enumerate(models) if x[ix(i, j)] > 0.5)
    rate = {(n, m): float(max(0.0, x[ir(i, j)])) for i, n in enumerate(nodes) for j, m in enumerate(models)
            if (n, m) in pods}
    return Plan(pods, rate, float(x[iu]))


def deployment_utilisation(pods, nodes: list[str], models: list[str], service_s: dict[tuple[str, str], float],
                           rates: dict[str, float]) -> float:
    """The smallest largest-node utilisation with which a fixed deployment can carry ``rates``
    (the fluid model above with ``x`` fixed: a linear program over the routing ``r``); above 1 no
    routing of that deployment keeps up. ``inf`` when a model with a positive rate has no pod.

    Args:
        pods: (node, model) pairs deployed.
        service_s: (node, model) -> prior mean service (s).
        rates: model -> req/s.
    """
    from scipy.optimize import linprog

    pods = sorted(set(pods))
    lam = {m: max(0.0, float(rates.get(m, 0.0))) for m in models}
    if any(lam[m] > 0 and not any(pm == m for _, pm in pods) for m in models):
        return float("inf")
    k = len(pods)
    c = np.zeros(k + 1)
    c[k] = 1.0
    a_eq = np.zeros((len(models), k + 1))
    for j, m in enumerate(models):
        for i, (_, pm) in enumerate(pods):
            a_eq[j, i] = 1.0 if pm == m else 0.0
    a_ub = np.zeros((len(nodes), k + 1))
    for r, n in enumerate(nodes):
        for i, (pn, pm) in enumerate(pods):
            if pn == n:
                a_ub[r, i] = service_s[(pn, pm)]
        a_ub[r, k] = -1.0
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(len(nodes)), A_eq=a_eq, b_eq=[lam[m] for m in models],
                  bounds=[(0, None)] * (k + 1), method="highs")
    if res.status != 0:
        raise E3Error(f"deployment_utilisation: the routing program failed ({res.message})")
    return float(res.x[k])
