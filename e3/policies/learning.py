"""Learning dispatchers without an LLM: SED with EWMA estimates, discounted / sliding-window UCB,
and discounted Thompson sampling.

All three learn, per device, a multiplicative *slowdown* ``r_d`` on the MLPerf prior's prediction
(``service ~ r_d * prior_ms(task)``, so token counts still matter for LLM tasks), from completed
tasks only, and dispatch queue-aware: the score of a device is its estimated backlog (the waiting
and running tasks' predicted service) plus the task's own predicted service, i.e. an expected
completion time. They differ in how ``r_d`` is estimated and how they explore:

* ``sed_ewma``: shortest expected delay (Whitt, "Deciding which queue to join", Oper. Res. Lett.
  4 (1986)) with an exponentially weighted moving average of ``r_d`` (weight ``ewma_weight``).
* ``ducb`` / ``swucb``: discounted and sliding-window UCB (Garivier and Moulines, "On
  upper-confidence bound policies for switching bandit problems", ALT 2011) on the cost, i.e. a
  lower confidence bound ``r_d - B sqrt(xi log(N) / N_d)`` with discounted (``gamma``) or windowed
  (``window_tasks``) counts.
* ``dts``: discounted Thompson sampling (Raj and Kalyani, "Taming non-stationary bandits: a
  Bayesian approach", arXiv:1707.09727, 2017) with a Gaussian posterior on ``log r_d``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from e3.policies.base import Policy, register
from e3.sim import backlog
from e3.sim.backlog import PoolBacklog


def prior_ms(prior, task) -> float:
    """The MLPerf prior's predicted service of ``task`` (Eq. 1 for LLM, Eq. 2 for SDXL), ms."""
    return prior.prior_service_ms(task.input_tokens, task.output_tokens)


class _SlowdownDispatcher(Policy):
    """Shared machinery: per-device slowdown estimate, queue-aware expected-completion score."""

    def slowdown(self, device: str) -> float:  # pragma: no cover - interface
        raise NotImplementedError

    def bonus(self, device: str) -> float:
        """Optimism subtracted from the slowdown (0 for greedy policies)."""
        return 0.0

    def choose(self, task, obs):
        self.decisions += 1
        feas = obs.feasible(task.kind)
        # Slowdowns first, in pool order (dts draws one random number per device).
        r = [max(1e-3, self.slowdown(d.name) - self.bonus(d.name)) for d in feas]
        best, best_key = None, None
        for d, r_d in zip(feas, r, strict=True):
            # = obs.backlog_ms(d, predict) + predict(d.name, task) with predict = r_d * prior_ms
            p = self.priors[d.name]
            key = (obs.expected_completion_ms(d, task, r_d, p.kind, p.alpha_prior_ms_per_token,
                                              p.beta_prior_ms_per_token, p.c_prior_ms), d.name)
            if best is None or key < best_key:
                best, best_key = d, key
        return best.name

    def ratio(self, record) -> float:
        return record.service_ms / max(prior_ms(self.priors[record.device], record.task), 1e-9)


@register
class SedEwma(_SlowdownDispatcher):
    """Shortest expected delay with EWMA slowdown estimates per device (start: 1, the prior)."""

    name = "sed_ewma"
    parameters = {"ewma_weight": 0.3}
    test_config = {"ewma_weight": 1.0}

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.r = {d.name: 1.0 for d in self.pool}
        self._backlog: PoolBacklog | None = None  # built at the first vectorised choice
        self._r_changed: set[str] = set()  # devices whose slowdown changed since last scored

    def slowdown(self, device):
        return self.r[device]

    def choose(self, task, obs):
        if len(obs.feasible(task.kind)) < backlog.VECTOR_MIN_DEVICES:
            return super().choose(task, obs)
        # The loop's scores over numpy arrays (e3.sim.backlog), bit for bit, and its choice: the
        # lowest score, ties to the smallest name. Only devices with a new slowdown are updated.
        self.decisions += 1
        pb = self._backlog
        if pb is None or pb.obs is not obs:
            pb = self._backlog = PoolBacklog(obs)
            self._r_changed = set(self.r)
        for d in self._r_changed:
            p = self.priors[d]
            pb.set_predictor(d, p.kind, max(1e-3, self.r[d]), p.alpha_prior_ms_per_token,
                             p.beta_prior_ms_per_token, p.c_prior_ms)
        self._r_changed.clear()
        scores, cand = pb.completion_ms(task)
        s = np.where(cand, scores, np.inf)
        best = np.flatnonzero(s == s.min())
        devices = pb.devices(task.kind)
        return min(devices[i].name for i in best)

    def on_complete(self, record, obs):
        w = self.params["ewma_weight"]
        self.r[record.device] = (1 - w) * self.r[record.device] + w * self.ratio(record)
        self._r_changed.add(record.device)


@register
class DiscountedUCB(_SlowdownDispatcher):
    """D-UCB on the slowdown: discounted mean and count (factor ``gamma`` per completion of the
    same task kind); an unobserved device gets the full bonus ``B`` (scale of the slowdown)."""

    name = "ducb"
    parameters = {"gamma": 0.95, "xi": 0.5, "B": 1.0}
    test_config = {"gamma": 1.0}

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.s = {d.name: 0.0 for d in self.pool}   # discounted sum of ratios
        self.n = {d.name: 0.0 for d in self.pool}   # discounted count

    def slowdown(self, device):
        return self.s[device] / self.n[device] if self.n[device] > 1e-9 else 1.0

    def bonus(self, device):
        kind = self.priors[device].kind
        total = sum(self.n[d] for d in self.n if self.priors[d].kind == kind)
        if self.n[device] <= 1e-9:
            return self.params["B"]
        return self.params["B"] * math.sqrt(self.params["xi"] * math.log(max(total, 1.0 + 1e-9)) / self.n[device])

    def on_complete(self, record, obs):
        g, kind = self.params["gamma"], self.priors[record.device].kind
        for d in self.n:
            if self.priors[d].kind == kind:
                self.s[d] *= g
                self.n[d] *= g
        self.s[record.device] += self.ratio(record)
        self.n[record.device] += 1.0


@register
class SlidingWindowUCB(_SlowdownDispatcher):
    """SW-UCB on the slowdown: mean and count over the last ``window_tasks`` completions of the
    device's task kind; an unobserved device gets the full bonus ``B``."""

    name = "swucb"
    parameters = {"window_tasks": 40, "xi": 0.5, "B": 1.0}
    test_config = {"window_tasks": 5}

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.hist = {k: deque(maxlen=self.params["window_tasks"]) for k in {d.kind for d in self.pool}}

    def _stats(self, device):
        h = self.hist[self.priors[device].kind]
        xs = [x for d, x in h if d == device]
        return xs, len(h)

    def slowdown(self, device):
        xs, _ = self._stats(device)
        return sum(xs) / len(xs) if xs else 1.0

    def bonus(self, device):
        xs, total = self._stats(device)
        if not xs:
            return self.params["B"]
        return self.params["B"] * math.sqrt(self.params["xi"] * math.log(max(total, 2)) / len(xs))

    def on_complete(self, record, obs):
        self.hist[self.priors[record.device].kind].append((record.device, self.ratio(record)))


@register
class DiscountedThompson(_SlowdownDispatcher):
    """Discounted Thompson sampling: Gaussian posterior on ``log r_d`` (prior mean 0, i.e. the
    MLPerf prior; prior precision ``prior_precision``; observation noise ``sigma``), with the
    accumulated evidence discounted by ``gamma`` per completion of the same kind. One posterior
    draw per device per decision, from the policy's own seeded stream."""

    name = "dts"
    parameters = {"gamma": 0.95, "sigma": 0.3, "prior_precision": 1.0}
    test_config = {"gamma": 1.0, "sigma": 1.0}

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.sx = {d.name: 0.0 for d in self.pool}
        self.n = {d.name: 0.0 for d in self.pool}
        self._draw: dict[str, float] = {}

    def slowdown(self, device):
        s2 = self.params["sigma"] ** 2
        prec = self.params["prior_precision"] + self.n[device] / s2
        mean = (self.sx[device] / s2) / prec
        return math.exp(self.rng.gauss(mean, 1.0 / math.sqrt(prec)))

    def on_complete(self, record, obs):
        g, kind = self.params["gamma"], self.priors[record.device].kind
        for d in self.n:
            if self.priors[d].kind == kind:
                self.sx[d] *= g
                self.n[d] *= g
        self.sx[record.device] += math.log(max(self.ratio(record), 1e-9))
        self.n[record.device] += 1.0
