"""The optimisers' objective: predicted cost of an agent -> server assignment (spec "Objective").

``objective = latency_weight * mean_u L_u / 1000 + resource cost + mu * #{u : L_u > D_u}
+ migration cost of the agents moved from the current placement``, where (all from priors and
known rates, never the simulated truth):

* ``L_u`` (ms): the user's predicted task latency: input file from the access server to the first
  agent, per step the mean prior service on the agent's server times a queueing factor of
  ``r = min(rho, cap)`` (``rho`` = predicted load of that server; ``cost.queueing``): M/M/1's
  ``1 / (1 - r)`` (``mm1``, the default) or the Pollaczek-Khinchine M/G/1 mean sojourn
  ``1 + r (1 + cv2) / (2 (1 - r))`` with the step's squared coefficient of variation ``cv2``
  from its token ranges and noise (``mg1``, :func:`step_service_cv2`; issue 30, item 4), messages
  between the agents' servers and the answer back.
* ``D_u`` (ms): the deadline rule on mean tokens: ``factor * chain * mean service + slack``, the
  mean service being the pool's mean prior (``tasks.deadline_reference: pool_mean``) or the
  access server's (``access_server``, 0.1.0).
* resource cost: ``sum_a sum_d w_d * demand_a,d / cap_{s(a),d}`` (the spec's per-server
  ``w * used / cap`` summed over servers).
* migration cost: ``bytes / 1e9 * price_per_gb + downtime_s * price_per_s`` per moved agent, with
  the downtime ``RTT + bytes / bandwidth + init_warm``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from e3.placement.system import DIMS, System, mean_tokens


def step_service_cv2(alpha_ms: float, beta_ms: float, input_tokens: tuple[int, int],
                     output_tokens: tuple[int, int], noise_sigma: float) -> float:
    """Squared coefficient of variation of one step's service time ``S = (alpha X + beta Y) N``:
    X, Y the input and output tokens, uniform integers on the given inclusive ranges (as the world
    draws them, :func:`e3.placement.system.build_world`), N the log-normal noise of mean one and
    log-sd ``noise_sigma`` (``E[N^2] = exp(sigma^2)``). Units of alpha and beta cancel."""
    def moments(lo: int, hi: int) -> tuple[float, float]:
        m = (lo + hi) / 2.0
        return m, ((hi - lo + 1) ** 2 - 1) / 12.0 + m * m
    mx, x2 = moments(*input_tokens)
    my, y2 = moments(*output_tokens)
    mean = alpha_ms * mx + beta_ms * my
    second = (alpha_ms ** 2 * x2 + 2.0 * alpha_ms * beta_ms * mx * my + beta_ms ** 2 * y2) * np.exp(noise_sigma ** 2)
    return float(second / (mean * mean) - 1.0)


def mg1_sojourn_factor(r: np.ndarray, cv2: np.ndarray) -> np.ndarray:
    """Mean sojourn over mean service of an M/G/1 FIFO queue at load ``r`` (< 1) with service
    squared coefficient of variation ``cv2``: ``1 + r (1 + cv2) / (2 (1 - r))`` (Pollaczek-
    Khinchine; cv2 = 1 gives M/M/1's ``1 / (1 - r)``)."""
    return 1.0 + r * (1.0 + cv2) / (2.0 * (1.0 - r))


class Evaluator:
    """Fast objective for assignments given as lists of server indices (one per agent).

    Args:
        system: the system; ``p``: the ``placement`` section; ``agents``/``chains``: the world's
        agents and user chains; ``rate_per_s``: tasks per second per user; ``heavy``: migration
        moves the runtime image too.
    """

    def __init__(self, system: System, p: dict[str, Any], agents, chains: list[list[int]], rate_per_s: float,
                 heavy: bool = False) -> None:
        self.system, self.p = system, p
        self.servers = list(system.servers)
        self.idx = {s: i for i, s in enumerate(self.servers)}
        n = len(self.servers)
        lin, lout = mean_tokens(p)
        self.svc_ms = [system.prior_service_ms(s, lin, lout) for s in self.servers]
        self.rtt = [[system.rtt_ms.get((a, b), system.rtt_ms.get((b, a), 0.0)) if a != b else 0.0
                     for b in self.servers] for a in self.servers]
        self.bw = system.bandwidth_bps
        t = p["tasks"]
        lo, hi = t["input_file_kb"]
        import math

        self.in_bytes = (hi - lo) / math.log(hi / lo) * 1e3 if hi > lo else lo * 1e3  # log-uniform mean
        self.msg_bytes = t["message_kb"] * 1e3
        self.agents, self.chains, self.rate = agents, chains, rate_per_s
        self.owner = [a.owner for a in agents]
        self.demand = [[a.demand[d] for d in DIMS] for a in agents]
        self.capacity = [[system.capacity[s][d] for d in DIMS] for s in self.servers]
        c = p["cost"]
        w = [c["weights"].get(d, 0.0) for d in DIMS]
        self.rc = [[sum(w[k] * self.demand[a][k] / self.capacity[s][k] for k in range(len(DIMS))) for s in range(n)]
                   for a in range(len(agents))]
        self.load_cap, self.mu, self.lat_w = c["load_cap"], c["violation_weight"], c["latency_weight_per_s"]
        self.queueing = c.get("queueing", "mm1")
        self.cv2 = [step_service_cv2(system.alpha_ms_per_token[s], system.beta_ms_per_token[s], tuple(t["input_tokens"]),
                                     tuple(t["output_tokens"]), t["noise_sigma"]) for s in self.servers]
        self.deadline_factor, self.slack_ms = t["deadline_factor"], t["deadline_slack_s"] * 1000.0
        # the deadline's reference speed: the pool's mean prior (0.2.0), or the access server's (0.1.0)
        self.pool_deadline = t.get("deadline_reference", "pool_mean") == "pool_mean"
        self.svc_ref_ms = float(np.mean(self.svc_ms))
        moved = [a.state_bytes + (a.image_bytes if heavy else 0.0) for a in agents]
        init_ms = p["init_warm_s"] * 1000.0
        self.mig = [[[0.0 if s == d else moved[a] / 1e9 * c["price_per_gb"]
                      + (self.rtt[s][d] + 8.0 * moved[a] / self.bw * 1000.0 + init_ms) / 1000.0 * c["price_per_s"]
                      for d in range(n)] for s in range(n)] for a in range(len(agents))]
        self.rebuild_arrays()

    def tr(self, a: int, b: int, n_bytes: float) -> float:
        """One-way transfer between server indices (ms), 0 on the same server."""
        return 0.0 if a == b else self.rtt[a][b] / 2.0 + 8.0 * n_bytes / self.bw * 1000.0

    def deadline_ms(self, access: int, user: int) -> float:
        """The deadline rule on mean tokens for ``user`` at ``access`` (the reference speed is the
        pool's mean prior with ``tasks.deadline_reference: pool_mean``, so ``access`` then does not
        matter)."""
        ref = self.svc_ref_ms if self.pool_deadline else self.svc_ms[access]
        return self.deadline_factor * len(self.chains[user]) * ref + self.slack_ms

    def rebuild_arrays(self) -> None:
        """Numpy copies of the static facts (service, RTT, chains, demand, capacity, resource and
        migration costs) for the vectorised objective, :meth:`feasible` and :meth:`eta`. They do not
        follow the lists: call it again after editing ``demand``, ``capacity``, ``rc`` or ``mig``
        in place."""
        n = len(self.servers)
        self._svc = np.array(self.svc_ms)
        self._cv2 = np.array(self.cv2)
        rtt = np.array(self.rtt)
        off = 1.0 - np.eye(n)
        self._tr_in = (rtt / 2.0 + 8.0 * self.in_bytes / self.bw * 1000.0) * off
        self._tr_msg = (rtt / 2.0 + 8.0 * self.msg_bytes / self.bw * 1000.0) * off
        k = max(len(c) for c in self.chains)
        self._chain = np.array([c + [c[-1]] * (k - len(c)) for c in self.chains])  # padded with the last agent
        self._mask = np.array([[1.0] * len(c) + [0.0] * (k - len(c)) for c in self.chains])
        self._len = np.array([len(c) for c in self.chains], dtype=float)
        self._rc = np.array(self.rc)
        self._mig = np.array(self.mig)
        self._ar = np.arange(len(self.agents))
        self._dem = np.array(self.demand, dtype=float).reshape(len(self.agents), len(DIMS))
        self._cap = np.array(self.capacity, dtype=float).reshape(n, len(DIMS))
        self._rtt = rtt

    def loads(self, x: list[int]) -> list[float]:
        """Predicted utilisation per server."""
        xs = np.asarray(x)
        return list(np.bincount(xs, weights=self.rate * self._svc[xs] / 1000.0, minlength=len(self.servers)))

    def sojourn_ms(self, r: np.ndarray) -> np.ndarray:
        """Mean sojourn of a step per server (ms, shape (..., servers)) at capped loads ``r``
        (``cost.queueing``: M/M/1 or M/G/1)."""
        if self.queueing == "mg1":
            return self._svc * mg1_sojourn_factor(r, self._cv2)
        return self._svc / (1.0 - r)  # M/M/1, written as 0.3.0 wrote it (bit-identical results)

    def _lat(self, xs: np.ndarray, acc: np.ndarray) -> np.ndarray:
        rho = np.bincount(xs, weights=self.rate * self._svc[xs] / 1000.0, minlength=len(self.servers))
        wait = self.sojourn_ms(np.minimum(rho, self.load_cap))
        srv = xs[self._chain]  # users x max chain
        lat = self._tr_in[acc, srv[:, 0]] + (wait[srv] * self._mask).sum(axis=1)
        if srv.shape[1] > 1:
            lat += (self._tr_msg[srv[:, :-1], srv[:, 1:]] * self._mask[:, 1:]).sum(axis=1)
        return lat + self._tr_msg[srv[:, -1], acc]

    def _lat_many(self, X: np.ndarray, acc: np.ndarray) -> np.ndarray:
        """:meth:`_lat` of each row of ``X`` (shape (k, agents)), shape (k, users), element for
        element the same operations (one bincount over row-offset bins keeps each server's sum in
        agent order; the chain sums reduce the same contiguous last axis)."""
        k, n = X.shape[0], len(self.servers)
        w = self.rate * self._svc[X] / 1000.0
        rho = np.bincount((X + n * np.arange(k)[:, None]).ravel(), weights=w.ravel(), minlength=k * n).reshape(k, n)
        wait = self.sojourn_ms(np.minimum(rho, self.load_cap))
        srv = X[:, self._chain]  # k x users x max chain
        lat = self._tr_in[acc, srv[:, :, 0]] + (wait[np.arange(k)[:, None, None], srv] * self._mask).sum(axis=2)
        if srv.shape[2] > 1:
            lat += (self._tr_msg[srv[:, :, :-1], srv[:, :, 1:]] * self._mask[:, 1:]).sum(axis=2)
        return lat + self._tr_msg[srv[:, :, -1], acc]

    def user_latency_ms(self, x: list[int], access: list[int]) -> list[float]:
        """Predicted task latency per user (ms)."""
        return list(self._lat(np.asarray(x), np.asarray(access)))

    def _deadlines_ms(self, acc: np.ndarray) -> np.ndarray:
        """:meth:`deadline_ms` of every user at access servers ``acc`` (int array, one per user)."""
        return self.deadline_factor * self._len * (self.svc_ref_ms if self.pool_deadline else self._svc[acc]) + self.slack_ms

    def objective(self, x: list[int], access: list[int], current: list[int] | None = None) -> float:
        """The objective (see module docstring); ``current``: the running placement (migration cost)."""
        xs, acc = np.asarray(x), np.asarray(access)
        lat = self._lat(xs, acc)
        dl = self._deadlines_ms(acc)
        cost = self.lat_w * float(lat.mean()) / 1000.0 + self.mu * float((lat > dl).sum())
        cost += float(self._rc[self._ar, xs].sum())
        if current is not None:
            cost += float(self._mig[self._ar, np.asarray(current), xs].sum())
        return cost

    def objective_many(self, X: np.ndarray, access: list[int], current: list[int] | None = None) -> list[float]:
        """:meth:`objective` of each row of ``X`` (int array of shape (k, agents), one assignment
        per row), bit for bit: the per-server loads, latencies and chain sums are computed for all
        rows at once; the means and sums over users and agents run row by row, as numpy reduces
        one assignment (tests/test_placement.py). The ACO's ants are scored this way."""
        acc = np.asarray(access)
        lat = self._lat_many(X, acc)
        dl = self._deadlines_ms(acc)
        late = (lat > dl).sum(axis=1)
        rc = self._rc[self._ar, X]
        mig = self._mig[self._ar, np.asarray(current), X] if current is not None else None
        out = []
        for r in range(X.shape[0]):
            cost = self.lat_w * float(lat[r].mean()) / 1000.0 + self.mu * float(late[r])
            cost += float(rc[r].sum())
            if mig is not None:
                cost += float(mig[r].sum())
            out.append(cost)
        return out

    def feasible(self, x: list[int], allowed: list[bool]) -> bool:
        """Every server's summed demand fits its capacity (``used <= cap + 1e-9`` per dimension,
        demands added in agent order) and only allowed servers are used."""
        xs = np.asarray(x)
        if not np.asarray(allowed, dtype=bool)[xs].all():
            return False
        d = len(DIMS)
        used = np.bincount((xs[:, None] * d + np.arange(d)).ravel(), weights=self._dem.ravel(),
                           minlength=len(self.servers) * d).reshape(-1, d)
        return bool((used <= self._cap + 1e-9).all())

    def eta(self, access: list[int], current: list[int] | None) -> np.ndarray:
        """ACO heuristic per agent and server, shape (agents, servers): ``1 / max(latency of the
        owner to s (s) + resource cost of the agent on s + migration cost from its current server,
        1e-9)``."""
        acc = np.asarray(access)[np.asarray(self.owner, dtype=int)]
        v = (self._rtt[acc] + self._svc) / 1000.0 + self._rc
        if current is not None:
            v = v + self._mig[self._ar, np.asarray(current)]
        return 1.0 / np.maximum(v, 1e-9)
