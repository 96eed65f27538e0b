"""Serving policies of the fairness system: the registry, the public context, the baselines.

Every policy implements :class:`e3.fairness.engine.ServingPolicy` and sees only a
:class:`PolicyContext` (topology, priors, the scenario's nominal rates: public information) and
the engine's :class:`e3.fairness.engine.ServingObservation` (telemetry). Baselines (spec "Baselines",
all [I]): ``round_robin``, ``jsq``, ``random`` and ``static_sect`` route over the best static
deployment of the priors (:func:`e3.fairness.static.best_deployment` at the busiest epoch's
rates, so it carries the demand), ``static_sect`` with shortest-expected-completion-time routing;
``round_robin_naive``, ``jsq_naive`` and ``random_naive`` keep 0.1.0's naive deployment as
labelled stress cases (it cannot carry the demand: issue 29); ``dpp`` is the standard
drift-plus-penalty baseline (issue 29: per-request min-drift routing, a satisfiable fairness
floor, frame-based redeployment with switching and activation cost, drain before stop); ``lyapunov_dpp`` is drift-plus-penalty with a fairness virtual queue
(controllers ``v1``, ``v10``, ``v100`` set V). ``multi_agent`` lives in :mod:`e3.fairness.agents`.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from e3.errors import ConfigError
from e3.fairness.engine import CompletedRequest, RequestView, ServingObservation, SlotDecision
from e3.fairness.static import Plan
from e3.registry import Registry
from e3.sim.jsq import join_shortest_queue
from e3.sim.nodes import ACTIVATING, ACTIVE

#: fairness policies by name (:class:`e3.registry.Registry`; ``multi_agent`` lives in
#: :mod:`e3.fairness.agents`, imported on first use because it imports this module)
POLICIES: Registry = Registry("fairness policy", ("e3.fairness.agents",))


#: the registry's methods under the names every system uses: ``register`` (class decorator; a
#: taken name is an error), ``get_policy(name, plugins=())`` and ``policy_names(plugins=())``
register = POLICIES.register
get_policy = POLICIES.get
policy_names = POLICIES.names


@dataclass(frozen=True)
class PolicyContext:
    """Public information handed to a policy (never the truth).

    Attributes:
        nodes: node names; node_kind: node -> ``gpu``/``cpu``; capacity: node -> dim -> capacity.
        models: model names; demand: (node, model) -> capacity demand.
        service_s: (node, model) -> prior mean service time (s); ref_service_s: model -> its
            fastest prior mean (the fairness reference of candidate (a)).
        nominal_rates: model -> the scenario's mean rate (req/s), the published design load.
        d_on_s: node -> mean one-way delay (s) from the ingress nodes (RTTs are public).
        slot_s / epoch_slots / timeout_s: control timing.
        best_static: the best static plan at the nominal rates.
        plan_fn: ``(rates, current, churn) -> Plan``, the deployment program on the priors.
        prior_service_ms: ``(node, request) -> ms`` prior of a single request.
        agents / lyapunov / llm: config sections ``fairness.agents``, ``fairness.lyapunov``,
            ``controllers.llm``.
        activation_s: model -> activation delay of its pods (s).
    """

    nodes: list[str]
    node_kind: dict[str, str]
    capacity: dict[str, dict[str, float]]
    models: list[str]
    demand: dict[tuple[str, str], dict[str, float]]
    service_s: dict[tuple[str, str], float]
    ref_service_s: dict[str, float]
    nominal_rates: dict[str, float]
    d_on_s: dict[str, float]
    slot_s: float
    epoch_slots: int
    timeout_s: float
    best_static: Plan
    plan_fn: Callable[..., Plan]
    prior_service_ms: Callable[[str, RequestView], float]
    agents: dict[str, Any] = field(default_factory=dict)
    lyapunov: dict[str, Any] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    #: model -> its pods' activation delay (s), from the config (public)
    activation_s: dict[str, float] = field(default_factory=dict)


class FairnessPolicy:
    """Base class: probabilistic routing from ``self.probs`` over active pods; no deployment
    changes. Subclasses override what they decide.

    Args:
        ctx: public context; controller: the cell's controller name; rng: the policy's own stream.
        audit: optional ``callable(dict)`` receiving decision records.
    """

    name: ClassVar[str] = ""
    controllers: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, ctx: PolicyContext, controller: str, rng: random.Random, audit=None) -> None:
        if controller not in self.controllers:
            raise ConfigError(f"policy {self.name!r}: controller {controller!r} is not one of {list(self.controllers)}")
        self.ctx, self.controller, self.rng, self.audit = ctx, controller, rng, audit
        self.probs: dict[str, dict[str, float]] = {}
        self.decisions = 0

    # --- helpers ------------------------------------------------------------------------------------
    def fits(self, obs: ServingObservation, node: str, model: str, freed: float = 0.0) -> bool:
        """Whether a ``model`` pod fits on ``node`` now (``freed``: demand about to be released)."""
        ns = obs.nodes[node]
        return all(ns.used[d] + need - freed <= ns.capacity[d] + 1e-9 for d, need in self.ctx.demand[(node, model)].items())

    def model_backlog_s(self, obs: ServingObservation) -> dict[str, float]:
        """Estimated work of each model (s): its queued and in-service requests on every node times
        their prior means, plus the requests held at the ingress times the model's fastest prior."""
        ctx = self.ctx
        return {m: sum((obs.pods[(n, m)].queue_length + obs.pods[(n, m)].busy) * ctx.service_s[(n, m)]
                       for n in ctx.nodes) + obs.pending.get(m, 0) * ctx.ref_service_s[m] for m in ctx.models}

    def backlog_s(self, obs: ServingObservation, node: str) -> float:
        """Estimated work on ``node`` (s): queued and in-service requests times their prior means."""
        return sum((st.queue_length + st.busy) * self.ctx.service_s[(node, m)]
                   for m in self.ctx.models for st in (obs.pods[(node, m)],))

    def sample(self, model: str, obs: ServingObservation) -> str | None:
        """A node drawn from ``self.probs[model]`` restricted to active pods (renormalised);
        uniform over active pods when none has weight; None when none is active."""
        active = obs.active_pods(model)
        if not active:
            return None
        p = self.probs.get(model, {})
        w = [max(0.0, p.get(n, 0.0)) for n in active]
        if sum(w) <= 0:
            return self.rng.choice(active)
        return self.rng.choices(active, weights=w)[0]

    # --- the ServingPolicy contract -----------------------------------------------------------------
    #: The fixed deployment a routing baseline runs on: ``best_static`` (the best static plan of the
    #: priors, sized for the busiest epoch: feasible by the rate rule), ``naive`` (a labelled
    #: stress case, :func:`naive_deployment`), or None for a policy that deploys by itself.
    deployment: ClassVar[str | None] = None
    #: A stress case may be infeasible (its deployment cannot carry the demand); any other policy
    #: on an infeasible fixed deployment is an error (e3.fairness.run.load_inputs, issue 29).
    stress: ClassVar[bool] = False

    def initial_deployment(self, obs: ServingObservation) -> list[tuple[str, str]]:
        """Pods active at t = 0: the best static plan for ``deployment: best_static``, else the
        naive deployment (see :func:`naive_deployment`)."""
        if self.deployment == "best_static":
            return sorted(self.ctx.best_static.pods)
        return naive_deployment(self.ctx)

    def on_slot(self, obs: ServingObservation) -> SlotDecision:
        """Deployment actions at a slot boundary (none by default)."""
        return SlotDecision()

    def route(self, request: RequestView, obs: ServingObservation) -> str | None:
        """Node for ``request``: a draw from ``self.probs`` over its model's active pods."""
        self.decisions += 1
        return self.sample(request.model, obs)

    def on_complete(self, record: CompletedRequest, obs: ServingObservation) -> None:
        """Delayed feedback (ignored by default)."""
        return None

    def summary(self) -> dict[str, Any]:
        """Counters for ``summary.json``: controller and routing decisions."""
        return {"controller": self.controller, "decisions": self.decisions}


def naive_deployment(ctx: PolicyContext) -> list[tuple[str, str]]:
    """A memory-feasible deployment that needs no load knowledge: node i tries the models in config
    order starting from model ``i mod M`` and keeps each that still fits (first fit, rotated so
    every model gets pods). (I) The naive baselines' deployment."""
    out = []
    M = len(ctx.models)
    for i, n in enumerate(ctx.nodes):
        used: dict[str, float] = dict.fromkeys(ctx.capacity[n], 0.0)
        for k in range(M):
            m = ctx.models[(i + k) % M]
            d = ctx.demand[(n, m)]
            if all(used[x] + v <= ctx.capacity[n][x] + 1e-9 for x, v in d.items()):
                for x, v in d.items():
                    used[x] += v
                out.append((n, m))
    return out


@register
class RoundRobin(FairnessPolicy):
    """The best static deployment (0.1.0: the naive one, now ``round_robin_naive``); each model's
    requests cycle over its active pods by smooth weighted round robin (nginx's algorithm: every
    pod's credit grows by its weight, the pod with the most credit is picked and pays the total),
    the weights being the plan's rate shares, the standard for servers of unequal speed (plain
    round robin would give a 75-s CPU pod the share of a GPU pod). Without plan weights (the naive
    deployment) it is plain round robin."""

    name = "round_robin"
    deployment = "best_static"

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self._next: dict[str, int] = {}
        self._credit: dict[tuple[str, str], float] = {}
        plan = self.ctx.best_static if self.deployment == "best_static" else None
        self._weights = {m: plan.shares(m) for m in self.ctx.models} if plan is not None else {}

    def route(self, request, obs):
        self.decisions += 1
        m = request.model
        active = obs.active_pods(m)
        if not active:
            return None
        w = self._weights.get(m, {})
        if not any(w.get(n, 0.0) > 0 for n in active):  # plain round robin
            i = self._next.get(m, 0)
            self._next[m] = i + 1
            return active[i % len(active)]
        total = 0.0
        for n in active:
            total += w.get(n, 0.0)
            self._credit[(n, m)] = self._credit.get((n, m), 0.0) + w.get(n, 0.0)
        pick = max(active, key=lambda n: self._credit[(n, m)])  # first of the largest, in node order
        self._credit[(pick, m)] -= total
        return pick


@register
class JoinShortestQueue(FairnessPolicy):
    """The best static deployment (0.1.0: the naive one, now ``jsq_naive``); the active pod with
    the fewest queued plus in-service requests (ties random)."""

    name = "jsq"
    deployment = "best_static"

    def route(self, request, obs):
        self.decisions += 1
        active = obs.active_pods(request.model)
        if not active:
            return None
        pods = obs.pods
        return join_shortest_queue(active, lambda n: pods[(n, request.model)].queue_length
                                   + pods[(n, request.model)].busy, self.rng)


@register
class RandomRouting(FairnessPolicy):
    """The best static deployment (0.1.0: the naive one, now ``random_naive``); an active pod drawn
    with the plan's rate shares as probabilities (uniform on the naive deployment, which has none)."""

    name = "random"
    deployment = "best_static"

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        if self.deployment == "best_static":
            self.probs = {m: self.ctx.best_static.shares(m) for m in self.ctx.models}


@register
class RoundRobinNaive(RoundRobin):
    """``round_robin`` on the naive deployment: a labelled stress case (it may not carry the
    demand whatever it routes: Stable Diffusion on one GPU and CPU pods)."""

    name = "round_robin_naive"
    deployment = "naive"
    stress = True


@register
class JoinShortestQueueNaive(JoinShortestQueue):
    """``jsq`` on the naive deployment (a labelled stress case)."""

    name = "jsq_naive"
    deployment = "naive"
    stress = True


@register
class RandomRoutingNaive(RandomRouting):
    """``random`` on the naive deployment (a labelled stress case)."""

    name = "random_naive"
    deployment = "naive"
    stress = True


@register
class StaticSECT(FairnessPolicy):
    """The best static deployment of the priors (sized for the busiest epoch); each request goes
    to the active pod with the shortest expected completion time, node backlog + own prior
    service (SECT, as E3's fixed heuristic does on its pool)."""

    name = "static_sect"
    deployment = "best_static"

    def route(self, request, obs):
        self.decisions += 1
        active = obs.active_pods(request.model)
        if not active:
            return None
        return min(active, key=lambda n: (self.backlog_s(obs, n) + self.ctx.prior_service_ms(n, request) / 1000.0, n))


def fairness_scores(counters: dict, ref_service_s: dict[str, float]) -> dict[str, float | None]:
    """Candidate (a) per model: ``x_m = ref_m / mean latency_m`` over the window's served requests;
    0 when requests arrived or were lost but none was served; None when the model saw nothing."""
    out: dict[str, float | None] = {}
    for m, c in counters.items():
        if c.served > 0:
            out[m] = ref_service_s[m] / max(1e-9, c.latency_sum_ms / c.served / 1000.0)
        elif c.arrivals or c.timed_out or c.failed:
            out[m] = 0.0
        else:
            out[m] = None
    return out


def lyapunov_fairness_update(z: dict[str, float], x: dict[str, float]) -> dict[str, float]:
    """Fairness virtual queues (spec [I]): ``Z_m <- max(Z_m + mean_k(x_k) - x_m, 0)``, i.e.
    :func:`fairness_floor_update` with floor 1 (which only exact equality meets); a model with no
    score this slot (None) keeps its queue and is left out of the mean."""
    return fairness_floor_update(z, x, 1.0)


@register
class LyapunovDPP(FairnessPolicy):
    """Drift-plus-penalty with a fairness virtual queue (spec "Lyapunov DPP [I]").

    Per slot: ``Z_m`` update (:func:`lyapunov_fairness_update`); per node a greedy knapsack on
    memory maximising ``sum_m (Z_m + Q_m / s_ref_m) * mu_nm - V * C_churn * changes``; routing
    probabilities ``softmax(-score / T)`` with ``score_n = Q_nm * s_nm + V * (d_on + s_nm)`` over
    the active pods, ``T`` = median score. ``Q_nm`` = estimated backlog work (s) of pod (n, m),
    ``Q_m`` = its sum plus the requests held at ingress. Controllers ``v1``, ``v10``, ``v100``.
    """

    name = "lyapunov_dpp"
    controllers = ("v1", "v10", "v100")

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.V = float(self.controller[1:])
        self.z = dict.fromkeys(self.ctx.models, 0.0)
        self.churn = float(self.ctx.lyapunov.get("churn_cost", 0.05))
        self.every = int(self.ctx.lyapunov.get("deployment_every_slots", 1))
        self.changes = 0

    def _q(self, obs, n, m) -> float:
        st = obs.pods[(n, m)]
        return (st.queue_length + st.busy) * self.ctx.service_s[(n, m)]

    def _deploy(self, obs, qm: dict[str, float]) -> SlotDecision:
        ctx = self.ctx
        act, deact = [], []
        for n in ctx.nodes:
            running = [m for m in ctx.models if obs.pods[(n, m)].state in (ACTIVE, ACTIVATING)]
            value = {m: (self.z[m] + qm[m] / ctx.ref_service_s[m]) / ctx.service_s[(n, m)] for m in ctx.models}
            cost = self.V * self.churn
            cand = sorted((m for m in ctx.models if m not in running and obs.pods[(n, m)].state == "inactive"
                           and value[m] - cost > 0),
                          key=lambda m: -(value[m] - cost) / max(1e-9, sum(ctx.demand[(n, m)].values())))
            keep = list(running)
            ns = obs.nodes[n]
            free = {d: ns.capacity[d] - ns.used[d] for d in ns.capacity}
            for m in cand:
                need = ctx.demand[(n, m)]
                gain = value[m] - cost
                evict: list[str] = []
                f = dict(free)
                for e in sorted(keep, key=lambda e: value[e] / max(1e-9, sum(ctx.demand[(n, e)].values()))):
                    if all(f[d] >= v - 1e-9 for d, v in need.items()):
                        break
                    if sum(value[x] + cost for x in evict) + value[e] + cost >= gain:
                        break
                    evict.append(e)
                    for d, v in ctx.demand[(n, e)].items():
                        f[d] += v
                if all(f[d] >= v - 1e-9 for d, v in need.items()):
                    # memory of evicted pods is freed only after deactivation: start next slot
                    if evict:
                        deact += [(n, e) for e in evict]
                        keep = [x for x in keep if x not in evict]
                        free = f
                        break
                    act.append((n, m))
                    keep.append(m)
                    for d, v in need.items():
                        free[d] -= v
        self.changes += len(act) + len(deact)
        return SlotDecision(tuple(deact), tuple(act))

    def _routing(self, obs) -> None:
        for m in self.ctx.models:
            active = obs.active_pods(m)
            if not active:
                continue
            score = {n: self._q(obs, n, m) * self.ctx.service_s[(n, m)]
                     + self.V * (self.ctx.d_on_s[n] + self.ctx.service_s[(n, m)]) for n in active}
            t = max(statistics.median(score.values()), 1e-9)
            lo = min(score.values())
            self.probs[m] = {n: math.exp(-(s - lo) / t) for n, s in score.items()}

    def initial_deployment(self, obs):
        return naive_deployment(self.ctx)

    def on_slot(self, obs):
        x = fairness_scores(obs.last_slot, self.ctx.ref_service_s)
        self.z = lyapunov_fairness_update(self.z, x)
        qm = self.model_backlog_s(obs)
        d = self._deploy(obs, qm) if obs.slot % self.every == 0 else SlotDecision()
        self._routing(obs)
        if self.audit:
            self.audit({"slot": obs.slot, "policy": self.name, "Z": self.z, "activate": d.activate,
                        "deactivate": d.deactivate})
        return d

    def summary(self):
        return {**super().summary(), "V": self.V, "deployment_changes": self.changes}


def fairness_floor_update(z: dict[str, float], x: dict[str, float | None], floor: float) -> dict[str, float]:
    """Fairness virtual queues for the time-average constraint ``x_m >= floor * mean_k(x_k)``
    (Neely 2010, section 4.4: one virtual queue per constraint): ``Z_m <- max(Z_m + floor * mean -
    x_m, 0)``. With ``floor < 1`` the constraint can be met with slack (every model at the mean
    meets it), unlike ``floor = 1`` (:func:`lyapunov_fairness_update`), which only exact equality
    meets, so its queues grow without bound. A model without a score this slot (None) keeps its
    queue and is left out of the mean."""
    seen = [v for v in x.values() if v is not None]
    if not seen:
        return dict(z)
    mean = sum(seen) / len(seen)
    return {m: (max(z[m] + floor * mean - x[m], 0.0) if x.get(m) is not None else z[m]) for m in z}


def dpp_route_score(backlog_s: float, service_s: float, delay_s: float, v: float) -> float:
    """Drift-plus-penalty of sending one request to a pod (Neely 2010, eq. 4.44's per-decision
    form): the drift ``Q_n * s`` that its work ``s`` adds to the node's backlog ``Q_n`` (both s),
    plus ``V`` times its expected latency ``Q_n + s + d`` (s)."""
    return backlog_s * service_s + v * (backlog_s + service_s + delay_s)


def dpp_plan_rates(arrivals: dict[str, int], backlog_s: dict[str, float], z: dict[str, float],
                   ref_s: dict[str, float], frame_s: float, v: float) -> dict[str, float]:
    """The rates (req/s) a frame's deployment is planned for: the measured arrival rate plus the
    drift terms, converted to rates: the model's backlog in requests (``B_m / ref_m``) drained over
    ``V`` frames, and its fairness queue ``Z_m`` as that share of its own rate, over ``V``. Large V
    plans for the measured load (stable, slow to drain); small V chases the queues."""
    out = {}
    for m, n in arrivals.items():
        lam = n / frame_s
        out[m] = lam + backlog_s[m] / ref_s[m] / (v * frame_s) + z[m] * lam / v
    return out


@register
class DriftPlusPenalty(FairnessPolicy):
    """The standard drift-plus-penalty baseline with frame-based reconfiguration (Neely,
    *Stochastic Network Optimization with Application to Communication and Queueing Systems*,
    2010; issue 29); controllers ``v1``, ``v10``, ``v100`` = V.

    * **Routing, per request:** the active, not draining pod of least :func:`dpp_route_score`
      (ties by node name): min drift-plus-penalty on the node backlogs at the priors.
    * **Fairness:** each slot, :func:`fairness_floor_update` with ``lyapunov.fairness_floor``.
    * **Deployment, once per epoch (the frame):** the deployment program on the priors
      (``ctx.plan_fn``, the fluid MILP of :mod:`e3.fairness.static`) for :func:`dpp_plan_rates`,
      with a switching cost per changed pod of ``V * churn_cost * (1 + activation_s / frame_s)``
      (the change and the work lost while the pod activates). New pods start when their memory is
      free; pods the plan drops drain first (no new requests) and stop once idle, so no in-flight
      request fails; the starting pods that need their memory wait for them.
    """

    name = "dpp"
    controllers = ("v1", "v10", "v100")
    deployment = "best_static"  # the first frame starts from the plan for the busiest epoch

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        lp = self.ctx.lyapunov
        self.V = float(self.controller[1:])
        self.z = dict.fromkeys(self.ctx.models, 0.0)
        self.floor = float(lp.get("fairness_floor", 0.9))
        self.churn = float(lp.get("churn_cost", 0.05))
        self.draining: set[tuple[str, str]] = set()
        self.waiting: set[tuple[str, str]] = set()  # planned pods waiting for memory
        self.changes = 0

    def route(self, request, obs):
        self.decisions += 1
        m, ctx = request.model, self.ctx
        active = [n for n in obs.active_pods(m) if (n, m) not in self.draining] or list(obs.active_pods(m))
        if not active:
            return None
        return min(active, key=lambda n: (dpp_route_score(self.backlog_s(obs, n), ctx.service_s[(n, m)],
                                                          ctx.d_on_s[n], self.V), n))

    def _replan(self, obs) -> None:
        ctx = self.ctx
        frame_s = ctx.epoch_slots * ctx.slot_s
        rates = dpp_plan_rates({m: obs.last_epoch[m].arrivals for m in ctx.models}, self.model_backlog_s(obs), self.z,
                               ctx.ref_service_s, frame_s, self.V)
        current = {(n, m) for n in ctx.nodes for m in ctx.models
                   if obs.pods[(n, m)].state in (ACTIVE, ACTIVATING) and (n, m) not in self.draining} | self.waiting
        act_s = statistics.fmean(ctx.activation_s.values()) if ctx.activation_s else 0.0
        plan = ctx.plan_fn(rates, frozenset(current), self.V * self.churn * (1.0 + act_s / frame_s))
        drop = current - set(plan.pods)
        self.waiting = (self.waiting | (set(plan.pods) - current)) - drop
        self.draining |= drop - self.waiting
        self.changes += len(drop) + len(set(plan.pods) - current)

    def on_slot(self, obs):
        ctx = self.ctx
        x = fairness_scores(obs.last_slot, ctx.ref_service_s)
        self.z = fairness_floor_update(self.z, x, self.floor)
        if obs.slot > 0 and obs.slot % ctx.epoch_slots == 0 and obs.last_epoch:
            self._replan(obs)
        # drain before stop: a dropped pod stops once it has no queued or running request
        stop = tuple(sorted(p for p in self.draining if obs.pods[p].state == ACTIVE
                            and obs.pods[p].queue_length == 0 and not obs.pods[p].busy))
        self.draining -= set(stop)
        freed: dict[str, dict[str, float]] = {n: dict.fromkeys(ctx.capacity[n], 0.0) for n in ctx.nodes}
        for n, m in stop:
            for d, v in ctx.demand[(n, m)].items():
                freed[n][d] += v
        start = []
        for n, m in sorted(self.waiting):
            ns = obs.nodes[n]
            need = ctx.demand[(n, m)]
            if obs.pods[(n, m)].state == "inactive" and all(
                    ns.used[d] - freed[n][d] + v <= ns.capacity[d] + 1e-9 for d, v in need.items()):
                start.append((n, m))
                for d, v in need.items():
                    freed[n][d] -= v
        self.waiting -= set(start)
        d = SlotDecision(stop, tuple(start))
        if self.audit and (stop or start):
            self.audit({"slot": obs.slot, "policy": self.name, "Z": self.z, "activate": d.activate,
                        "deactivate": d.deactivate, "draining": sorted(self.draining)})
        return d

    def summary(self):
        return {**super().summary(), "V": self.V, "deployment_changes": self.changes}
