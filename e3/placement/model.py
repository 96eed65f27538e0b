"""The optimisers' objective: predicted cost of an agent -> server assignment (spec "Objective").

``objective = latency_weight * mean_u L_u / 1000 + resource cost + mu * #{u : L_u > D_u}
+ migration cost of the agents moved from the current placement``, where (all from priors and
known rates, never the simulated truth):

* ``L_u`` (ms): the user's predicted task latency: input file from the access server to the first
  agent, per step the mean prior service on the agent's server times ``1 / (1 - min(rho, cap))``
  (FIFO queueing factor, ``rho`` = predicted load of that server), messages between the agents'
  servers and the answer back.
* ``D_u`` (ms): the deadline rule on mean tokens: ``factor * chain * mean service on the access
  server + slack``.
* resource cost: ``sum_a sum_d w_d * demand_a,d / cap_{s(a),d}`` (the spec's per-server
  ``w * used / cap`` summed over servers).
* migration cost: ``bytes / 1e9 * price_per_gb + downtime_s * price_per_s`` per moved agent, with
  the downtime ``RTT + bytes / bandwidth + init_warm``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from e3.placement.system import DIMS, System, mean_tokens


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
        self.deadline_factor, self.slack_ms = t["deadline_factor"], t["deadline_slack_s"] * 1000.0
        moved = [a.state_bytes + (a.image_bytes if heavy else 0.0) for a in agents]
        init_ms = p["init_warm_s"] * 1000.0
        self.mig = [[[0.0 if s == d else moved[a] / 1e9 * c["price_per_gb"]
                      + (self.rtt[s][d] + 8.0 * moved[a] / self.bw * 1000.0 + init_ms) / 1000.0 * c["price_per_s"]
                      for d in range(n)] for s in range(n)] for a in range(len(agents))]
        self._arrays()

    def tr(self, a: int, b: int, n_bytes: float) -> float:
        """One-way transfer between server indices (ms), 0 on the same server."""
        return 0.0 if a == b else self.rtt[a][b] / 2.0 + 8.0 * n_bytes / self.bw * 1000.0

    def deadline_ms(self, access: int, user: int) -> float:
        """The deadline rule on mean tokens for ``user`` at ``access``."""
        return self.deadline_factor * len(self.chains[user]) * self.svc_ms[access] + self.slack_ms

    def _arrays(self) -> None:
        """Numpy views of the static facts for the vectorised objective."""
        n = len(self.servers)
        self._svc = np.array(self.svc_ms)
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

    def loads(self, x: list[int]) -> list[float]:
        """Predicted utilisation per server."""
        xs = np.asarray(x)
        return list(np.bincount(xs, weights=self.rate * self._svc[xs] / 1000.0, minlength=len(self.servers)))

    def _lat(self, xs: np.ndarray, acc: np.ndarray) -> np.ndarray:
        rho = np.bincount(xs, weights=self.rate * self._svc[xs] / 1000.0, minlength=len(self.servers))
        wait = self._svc / (1.0 - np.minimum(rho, self.load_cap))
        srv = xs[self._chain]  # users x max chain
        lat = self._tr_in[acc, srv[:, 0]] + (wait[srv] * self._mask).sum(axis=1)
        if srv.shape[1] > 1:
            lat += (self._tr_msg[srv[:, :-1], srv[:, 1:]] * self._mask[:, 1:]).sum(axis=1)
        return lat + self._tr_msg[srv[:, -1], acc]

    def user_latency_ms(self, x: list[int], access: list[int]) -> list[float]:
        """Predicted task latency per user (ms)."""
        return list(self._lat(np.asarray(x), np.asarray(access)))

    def objective(self, x: list[int], access: list[int], current: list[int] | None = None) -> float:
        """The objective (see module docstring); ``current``: the running placement (migration cost)."""
        xs, acc = np.asarray(x), np.asarray(access)
        lat = self._lat(xs, acc)
        dl = self.deadline_factor * self._len * self._svc[acc] + self.slack_ms
        cost = self.lat_w * float(lat.mean()) / 1000.0 + self.mu * float((lat > dl).sum())
        cost += float(self._rc[self._ar, xs].sum())
        if current is not None:
            cost += float(self._mig[self._ar, np.asarray(current), xs].sum())
        return cost

    def feasible(self, x: list[int], allowed: list[bool]) -> bool:
        """Every server's summed demand fits its capacity and only allowed servers are used."""
        used = [[0.0] * len(DIMS) for _ in self.servers]
        for a, s in enumerate(x):
            if not allowed[s]:
                return False
            for k in range(len(DIMS)):
                used[s][k] += self.demand[a][k]
        return all(u <= c + 1e-9 for row, cap in zip(used, self.capacity, strict=True) for u, c in zip(row, cap, strict=True))

    def eta(self, access: list[int], current: list[int] | None) -> list[list[float]]:
        """ACO heuristic per agent and server: ``1 / (latency of the owner to s (s) + resource cost
        of the agent on s + migration cost from its current server)``."""
        out = []
        for a in range(len(self.agents)):
            acc = access[self.owner[a]]
            row = []
            for s in range(len(self.servers)):
                v = (self.rtt[acc][s] + self.svc_ms[s]) / 1000.0 + self.rc[a][s]
                if current is not None:
                    v += self.mig[a][current[a]][s]
                row.append(1.0 / max(v, 1e-9))
            out.append(row)
        return out
