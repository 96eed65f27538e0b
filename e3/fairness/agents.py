"""``multi_agent``: the two-tier agent system of arXiv 2602.07215 with pluggable back-ends.

Tiers (spec "Algorithms"; [P] names, [S] features, [I] the surrogate rules):

* **Global planner** (per epoch, and on a surge): reads a telemetry summary and its episodic
  memory (one case per epoch: state features, intents, outcome; the ``memory_k`` nearest by
  cosine) and emits node-role intents, node -> models to host.
* **Prompt scheduler** (per slot): routing probabilities per model over the active pods.
* **Deployment agents** (one per node, per slot): (de)activate pods toward the intents within the
  node's memory, never stopping a pod younger than ``min_dwell_slots`` (churn penalty) and, in the
  rules back-end, only once it is idle.

``fairness.agents.llm_tiers`` says which tiers the ``llm`` back-end asks the model. ``all`` is the
paper's reading [S]: every tier is an LLM call (about 140 a run; ~30 h to record 30 runs on 2
cores). ``planner`` (the default, a stated departure, issue 29) asks the model only for the
planner's intents, per epoch and on a surge (20-25 calls a run); the scheduler and deployment
agents then execute those intents every slot with the rules back-end's deterministic steps
(water-filling routing, drain before stop). It isolates the decision that shapes fairness, where
models run, and keeps a recording within ~2 h.

Controllers: ``rules`` (deterministic surrogate: the planner solves the deployment program of
:mod:`e3.fairness.static` on the measured rates with a churn penalty, or reuses a remembered
plan that did better in a near-identical state; the scheduler weights the planner's shares by
each node's backlog; deployment agents follow intents) and ``llm`` (each tier is one JSON-schema
request through :class:`e3.llm.client.LLMClient`, replayable; a malformed or infeasible reply or a
provider error falls back to a random decision for that tier, as the paper does [S], and is
counted).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import jsonschema

from e3.errors import ConfigError
from e3.fairness.engine import ServingObservation, SlotDecision
from e3.fairness.policies import FairnessPolicy, fairness_scores, register
from e3.sim.jain import jain_index, jain_normalized
from e3.sim.nodes import ACTIVATING, ACTIVE, INACTIVE

PROMPT_VERSION = "fairness-multi-agent-v1"
#: the planner-only back-end's prompt (compact telemetry, predicted utilisation; issue 29)
PLANNER_PROMPT_VERSION = "fairness-planner-v2"
#: ``fairness.agents.llm_tiers``: which tiers the llm back-end asks the model
LLM_TIERS = ("planner", "all")


def cosine(a: list[float], b: list[float]) -> float:
    """Cosine similarity (0 when either vector is zero)."""
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na > 0 and nb > 0 else 0.0


@dataclass
class Case:
    """One episodic-memory case: the epoch's starting features, the intents used, the outcome."""

    features: list[float]
    intents: dict[str, list[str]]
    outcome: dict[str, float]


class EpisodicMemory:
    """Cases in insertion order; :meth:`nearest` returns the k most similar (cosine, ties by age)."""

    def __init__(self) -> None:
        self.cases: list[Case] = []

    def add(self, case: Case) -> None:
        """Store a finished epoch's case."""
        self.cases.append(case)

    def nearest(self, features: list[float], k: int) -> list[tuple[float, Case]]:
        """The ``k`` cases most similar to ``features`` as (cosine, case), best first."""
        scored = [(cosine(features, c.features), -i, c) for i, c in enumerate(self.cases)]
        scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
        return [(s, c) for s, _, c in scored[:k]]


def _round(x: float) -> float:
    return float(f"{x:.4g}")


@register
class MultiAgent(FairnessPolicy):
    """The multi-agent system (see the module docstring). Controllers ``rules`` and ``llm``."""

    name = "multi_agent"
    controllers = ("rules", "llm")
    #: True: 0.2.0's planner (flat churn penalty, no overload term), whatever fairness.agents says
    flat_planner = False

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        ag = self.ctx.agents
        self.k = int(ag.get("memory_k", 3))
        self.reuse_sim = float(ag.get("memory_reuse_similarity", 0.995))
        self.churn_penalty = float(ag.get("churn_penalty", 0.02))
        self.dwell_s = float(ag.get("min_dwell_slots", 4)) * self.ctx.slot_s
        self.surge = float(ag.get("replan_surge_factor", 1.5))
        self.stretch_weight = float(ag.get("stretch_weight", 0.02))
        self.headroom = float(ag.get("plan_headroom", 1.0))
        self.drain = bool(ag.get("plan_backlog_drain", False))
        # The adapting planner (issue 29): overload above the threshold costs overload_weight per
        # unit of u, and a pod change costs its activation downtime as a fraction of an epoch
        # (churn_cost: activation) instead of a flat churn_penalty (churn_cost: flat, 0.2.0).
        flat = self.flat_planner
        self.overload_weight = 0.0 if flat else float(ag.get("overload_weight", 0.0))
        self.overload_threshold = float(ag.get("overload_threshold", 1.0))
        self.churn_cost = "flat" if flat else str(ag.get("churn_cost", "flat"))
        if self.churn_cost not in ("flat", "activation"):
            raise ConfigError(f"fairness.agents.churn_cost: {self.churn_cost!r} is not one of ['flat', 'activation']")
        self.memory = EpisodicMemory()
        self.intents: dict[str, list[str]] = {}
        self.shares: dict[str, dict[str, float]] = {}
        self.planned_rates: dict[str, float] = {}
        self.last_plan_slot = 0
        self.open_case: Case | None = None
        self.plans = 0
        self.reused = 0
        self.counts = {"planner_calls": 0, "scheduler_calls": 0, "deployment_calls": 0}
        self.fallbacks = {"planner": 0, "scheduler": 0, "deployment": 0}
        self.llm_tiers = str(ag.get("llm_tiers", "all"))
        if self.llm_tiers not in LLM_TIERS:
            raise ConfigError(f"fairness.agents.llm_tiers: {self.llm_tiers!r} is not one of {list(LLM_TIERS)}")
        #: planner-only back-end: refuse a plan whose predicted utilisation reaches 1 on a node
        #: (it cannot carry the measured rates) unless the running plan is no better (issue 29)
        self.overload_guard = bool(ag.get("llm_overload_guard", True))
        self.rejected_overload = 0
        #: True where the scheduler and deployment tiers run the rules back-end's steps
        self.rules_execution = self.controller == "rules" or self.llm_tiers == "planner"
        self.client = None
        if self.controller == "llm":
            from e3.config import REPO_ROOT
            from e3.llm.client import LLMClient, LLMSettings

            fields = set(LLMSettings.__dataclass_fields__)
            llm = {kk: v for kk, v in self.ctx.llm.items() if kk in fields}
            llm["max_tokens"] = int(ag.get("llm_max_tokens", 400))
            self.client = LLMClient(LLMSettings(**llm), REPO_ROOT)

    # --- telemetry summaries ---------------------------------------------------------------------------
    def _epoch_rates(self, obs: ServingObservation) -> dict[str, float]:
        if not obs.last_epoch:
            return dict(self.ctx.nominal_rates)
        span = self.ctx.slot_s * self.ctx.epoch_slots
        return {m: obs.last_epoch[m].arrivals / span for m in self.ctx.models}

    def _slot_rates(self, obs) -> dict[str, float]:
        return {m: obs.last_slot[m].arrivals / self.ctx.slot_s for m in self.ctx.models}

    def _backlog(self, obs) -> dict[str, int]:
        return {m: sum(obs.pods[(n, m)].queue_length + obs.pods[(n, m)].busy for n in self.ctx.nodes)
                + obs.pending.get(m, 0) for m in self.ctx.models}

    def _outcome(self, counters) -> dict[str, float]:
        x = fairness_scores(counters, self.ctx.ref_service_s)
        xs = [v for v in x.values() if v is not None]
        jn = jain_normalized(jain_index(xs), len(xs)) if xs else 1.0
        served = sum(c.served for c in counters.values())
        lat = sum(c.latency_sum_ms for c in counters.values()) / served / 1000.0 if served else self.ctx.timeout_s
        lost = sum(c.timed_out + c.failed for c in counters.values())
        return {"mean_latency_s": _round(lat), "jain_normalized": _round(jn), "lost": lost,
                "phi": _round(lat / self.ctx.timeout_s + (1.0 - jn))}

    def _features(self, obs, rates) -> list[float]:
        tot = sum(rates.values()) or 1.0
        back = self._backlog(obs)
        out = self._outcome(obs.last_epoch) if obs.last_epoch else {"jain_normalized": 1.0}
        return ([rates[m] / tot for m in self.ctx.models] + [math.log1p(back[m]) for m in self.ctx.models]
                + [tot, out["jain_normalized"]])

    def _status(self, obs) -> dict[str, Any]:
        rates = self._epoch_rates(obs)
        back = self._backlog(obs)
        lat = {}
        for m, c in (obs.last_epoch or obs.last_slot).items():
            lat[m] = _round(c.latency_sum_ms / c.served / 1000.0) if c.served else None
        return {"slot": obs.slot, "epoch": obs.epoch,
                "models": {m: {"rate_per_s": _round(rates[m]), "backlog": back[m], "mean_latency_s": lat.get(m)}
                           for m in self.ctx.models},
                "nodes": {n: {"kind": self.ctx.node_kind[n],
                              "free": {d: _round(obs.nodes[n].capacity[d] - obs.nodes[n].used[d])
                                       for d in obs.nodes[n].capacity if obs.nodes[n].capacity[d] > 0},
                              "pods": {m: [obs.pods[(n, m)].state, obs.pods[(n, m)].queue_length]
                                       for m in self.ctx.models if obs.pods[(n, m)].state != INACTIVE}}
                          for n in self.ctx.nodes}}

    # --- feasibility -------------------------------------------------------------------------------------
    def _feasible_intents(self, intents: dict[str, list[str]]) -> bool:
        for n, ms in intents.items():
            if n not in self.ctx.nodes or len(set(ms)) != len(ms) or any(m not in self.ctx.models for m in ms):
                return False
            for d, cap in self.ctx.capacity[n].items():
                if sum(self.ctx.demand[(n, m)].get(d, 0.0) for m in ms) > cap + 1e-9:
                    return False
        hosted = {m for ms in intents.values() for m in ms}
        return all(m in hosted for m in self.ctx.models)

    def _random_intents(self) -> dict[str, list[str]]:
        while True:  # random rotated first fit until every model is hosted (a few tries at most)
            out = {}
            for n in self.ctx.nodes:
                order = list(self.ctx.models)
                self.rng.shuffle(order)
                used = dict.fromkeys(self.ctx.capacity[n], 0.0)
                keep = []
                for m in order:
                    d = self.ctx.demand[(n, m)]
                    if all(used[x] + v <= self.ctx.capacity[n][x] + 1e-9 for x, v in d.items()):
                        keep.append(m)
                        for x, v in d.items():
                            used[x] += v
                out[n] = keep
            if self._feasible_intents(out):
                return out

    def _shares_from_intents(self, intents) -> dict[str, dict[str, float]]:
        out = {}
        for m in self.ctx.models:
            w = {n: 1.0 / self.ctx.service_s[(n, m)] for n, ms in intents.items() if m in ms}
            t = sum(w.values())
            out[m] = {n: v / t for n, v in w.items()} if t > 0 else {}
        return out

    # --- planner -----------------------------------------------------------------------------------------
    def _plan(self, obs, rates: dict[str, float], reason: str) -> None:
        self.counts["planner_calls"] += 1
        feats = self._features(obs, rates)
        near = self.memory.nearest(feats, self.k)
        if self.open_case is not None and obs.last_epoch:
            self.open_case.outcome = self._outcome(obs.last_epoch)
            self.memory.add(self.open_case)
        last_phi = self.open_case.outcome["phi"] if self.open_case and self.open_case.outcome else math.inf
        source = "program"
        if self.controller == "rules":
            best = next(((s, c) for s, c in near if s >= self.reuse_sim and c.outcome.get("phi", math.inf) < last_phi), None)
            if best is not None:
                intents, source = {n: list(v) for n, v in best[1].intents.items()}, "memory"
                self.reused += 1
                self.shares = self._shares_from_intents(intents)
            else:
                intents = self._program_plan(obs, rates)
        elif self.llm_tiers == "planner" and reason == "start":
            # the planner-only back-end starts from the program's plan, as the rules back-end does
            # (a 1.5B model did not build a complete plan from an empty one: issue 29)
            intents, source = self._program_plan(obs, rates), "program"
        else:
            intents, source = (self._llm_plan_compact(obs, rates, near, reason) if self.llm_tiers == "planner"
                               else self._llm_plan(obs, near))
            self.shares = self._shares_from_intents(intents)
        self.intents = intents
        self.planned_rates = dict(rates)
        self.last_plan_slot = obs.slot
        self.plans += 1
        self.open_case = Case(feats, {n: list(v) for n, v in intents.items()}, {})
        if self.audit:
            self.audit({"slot": obs.slot, "tier": "planner", "reason": reason, "source": source,
                        "rates": {m: _round(v) for m, v in rates.items()}, "intents": intents})

    def _program_plan(self, obs, rates: dict[str, float]) -> dict[str, list[str]]:
        """The rules planner's program (:mod:`e3.fairness.static`) on the measured ``rates`` (req/s)
        with the churn terms against the running intents; sets the routing shares too."""
        cur = frozenset((n, m) for n, ms in self.intents.items() for m in ms) if self.intents else None
        # plan for the measured rate with headroom, plus draining today's backlog in an epoch
        back = self._backlog(obs) if self.drain else dict.fromkeys(rates, 0)
        span = self.ctx.slot_s * self.ctx.epoch_slots
        plan = self.ctx.plan_fn({m: v * self.headroom + back[m] / span for m, v in rates.items()}, cur,
                                self.churn_penalty, self.stretch_weight, **self._adapt(span))
        self.shares = {m: plan.shares(m) for m in self.ctx.models}
        return {n: sorted(m for (nn, m) in plan.pods if nn == n) for n in self.ctx.nodes}

    def _adapt(self, epoch_s: float) -> dict[str, Any]:
        """The adapting planner's extra program terms (none with 0.2.0's settings)."""
        out: dict[str, Any] = {}
        if self.overload_weight > 0:
            out.update(overload_weight=self.overload_weight, overload_threshold=self.overload_threshold)
        if self.churn_cost == "activation":
            out["activation_cost"] = {(n, m): self.ctx.activation_s.get(m, 0.0) / epoch_s
                                      for n in self.ctx.nodes for m in self.ctx.models}
        return out

    # --- scheduler ---------------------------------------------------------------------------------------
    def _schedule_rules(self, obs) -> dict[str, dict[str, float]]:
        """Water-filling per model: the slot's expected work of model m (rate x slot x prior) is
        split over its intended active pods so that every used node ends at the same predicted
        backlog ``L``: ``p_n = max(0, L - B_n) / (lam_m T s_nm)`` with ``sum p_n = 1``; models are
        filled in order of decreasing rate, each seeing the backlog the earlier ones added."""
        T = self.ctx.slot_s
        rates = self._epoch_rates(obs) if obs.last_epoch else dict(self.ctx.nominal_rates)
        if obs.slot > 0:
            rates = {m: max(rates[m], obs.last_slot[m].arrivals / T) for m in self.ctx.models}
        load = {n: self.backlog_s(obs, n) for n in self.ctx.nodes}
        probs = {}
        for m in sorted(self.ctx.models, key=lambda m: (-rates[m], m)):
            active = obs.active_pods(m)
            nodes = [n for n in active if m in self.intents.get(n, [])] or active
            if not nodes:
                continue
            work = max(rates[m], 1e-6) * T
            # cost of one unit of share on n, and the water level reached
            unit = {n: work * self.ctx.service_s[(n, m)] for n in nodes}
            order = sorted(nodes, key=lambda n: load[n])
            p: dict[str, float] = {}
            for k in range(len(order), 0, -1):
                used = order[:k]
                level = (1.0 + sum(load[n] / unit[n] for n in used)) / sum(1.0 / unit[n] for n in used)
                if level > load[used[-1]]:
                    p = {n: (level - load[n]) / unit[n] for n in used}
                    break
            probs[m] = p
            for n, v in p.items():
                load[n] += v * unit[n]
        return probs

    # --- deployment agents -------------------------------------------------------------------------------
    def _deploy_rules(self, obs, n: str) -> tuple[list[str], list[str]]:
        want = set(self.intents.get(n, []))
        act, deact = [], []
        for m in self.ctx.models:
            st = obs.pods[(n, m)]
            young = st.state == ACTIVATING or obs.now_ms - st.active_since_ms < 1000.0 * self.dwell_s
            if m not in want and st.state in (ACTIVE, ACTIVATING) and not young and st.queue_length == 0 and not st.busy:
                deact.append(m)
        for m in self.ctx.models:
            if m in want and obs.pods[(n, m)].state == INACTIVE and self.fits(obs, n, m):
                act.append(m)
        return act, deact

    # --- the ServingPolicy contract ----------------------------------------------------------------------
    def initial_deployment(self, obs):
        self._plan(obs, dict(self.ctx.nominal_rates), "start")
        self.probs = self._schedule_rules(obs) if self.rules_execution else {}
        return sorted((n, m) for n, ms in self.intents.items() for m in ms)

    def on_slot(self, obs):
        rates = self._epoch_rates(obs)
        if obs.slot % self.ctx.epoch_slots == 0:
            self._plan(obs, rates, "epoch")
        else:
            sr = self._slot_rates(obs)
            surged = [m for m in self.ctx.models if sr[m] > self.surge * max(self.planned_rates.get(m, 0.0), 1e-9)
                      and self._backlog(obs)[m] > 0]
            if surged and obs.slot - self.last_plan_slot >= self.dwell_s / self.ctx.slot_s:
                self._plan(obs, {m: max(rates[m], sr[m]) for m in self.ctx.models}, "surge:" + ",".join(surged))
        self.counts["scheduler_calls"] += 1
        self.probs = self._schedule_rules(obs) if self.rules_execution else self._llm_schedule(obs)
        act, deact = [], []
        for n in self.ctx.nodes:
            running = {m for m in self.ctx.models if obs.pods[(n, m)].state in (ACTIVE, ACTIVATING)}
            if running == set(self.intents.get(n, [])):
                continue  # nothing to reconcile: the node's agent is not invoked
            self.counts["deployment_calls"] += 1
            a, d = self._deploy_rules(obs, n) if self.rules_execution else self._llm_deploy(obs, n)
            act += [(n, m) for m in a]
            deact += [(n, m) for m in d]
        if self.audit and (act or deact):
            self.audit({"slot": obs.slot, "tier": "deployment", "activate": act, "deactivate": deact})
        return SlotDecision(tuple(deact), tuple(act))

    def summary(self):
        out = {**super().summary(), "plans": self.plans, "plans_from_memory": self.reused, **self.counts,
               "fallbacks": dict(self.fallbacks), "fallbacks_total": sum(self.fallbacks.values()),
               "planner_rejected_overload": self.rejected_overload}
        if self.client is not None:
            out.update({"llm_requests": self.client.calls, "llm_cache_hits": self.client.cache_hits,
                        "prompt_tokens": self.client.prompt_tokens, "completion_tokens": self.client.completion_tokens})
        return out

    # --- the llm back-end -------------------------------------------------------------------------------
    def _ask(self, tier: str, system: str, user: dict, schema: dict, version: str = PROMPT_VERSION) -> Any:
        """One JSON-schema request; returns the parsed object or raises ValueError (malformed)."""
        from e3.llm.client import LLMProviderError

        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": json.dumps(user, sort_keys=True, separators=(",", ":"))}]
        try:
            reply = self.client.complete(messages, None, {"type": "json_object", "schema": schema},
                                         f"{version}:{tier}")
        except LLMProviderError as exc:
            raise ValueError(f"provider error: {exc}") from None
        text = (reply.content or "").strip()
        try:
            obj = json.loads(text)
            jsonschema.validate(obj, schema)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            raise ValueError(f"malformed reply: {str(exc)[:200]}") from None
        return obj

    def _system_text(self, tier: str) -> str:
        ctx = self.ctx
        facts = {"nodes": {n: {"kind": ctx.node_kind[n], "capacity": {d: v for d, v in ctx.capacity[n].items() if v > 0}}
                           for n in ctx.nodes},
                 "models": {m: {"prior_service_s": {k: _round(ctx.service_s[(n, m)]) for n in ctx.nodes[:1] + [ctx.nodes[-1]]
                                                    for k in (ctx.node_kind[n],)},
                                "demand": {k: ctx.demand[(n, m)] for n in ctx.nodes[:1] + [ctx.nodes[-1]]
                                           for k in (ctx.node_kind[n],)}} for m in ctx.models}}
        role = {"planner": "You are the global planning agent of a mobile-edge LM inference network. Every epoch you "
                           "assign node roles: which models each node should host. Goals: low end-to-end latency and "
                           "fair service across models (normalised Jain index of per-model latency scores). Each "
                           "node's pods must fit its capacity; every model needs at least one node; changing roles "
                           "costs pod restarts. Reply with JSON {\"intents\": {node: [models]}} only.",
                "scheduler": "You are the prompt scheduling agent. Every slot you give, for each model, routing "
                             "weights over the nodes with an active pod of it (weights >= 0). Prefer fast, lightly "
                             "loaded nodes. Reply with JSON {\"routing\": {model: {node: weight}}} only.",
                "deployment": "You are an on-node deployment agent. Follow the planner's intents for your node: "
                              "activate intended pods that fit the free capacity, deactivate pods that are not "
                              "intended (stopping a busy pod fails its requests; restarts are slow). Reply with JSON "
                              "{\"activate\": [models], \"deactivate\": [models]} only."}[tier]
        return role + " System: " + json.dumps(facts, sort_keys=True, separators=(",", ":"))

    def _llm_plan(self, obs, near) -> tuple[dict[str, list[str]], str]:
        schema = {"type": "object", "required": ["intents"], "additionalProperties": False,
                  "properties": {"intents": {"type": "object", "additionalProperties": False,
                                             "properties": {n: {"type": "array", "items": {"enum": self.ctx.models}}
                                                            for n in self.ctx.nodes}}}}
        user = {"telemetry": self._status(obs), "current_intents": self.intents,
                "similar_cases": [{"similarity": _round(s), "intents": c.intents, "outcome": c.outcome} for s, c in near]}
        try:
            obj = self._ask("planner", self._system_text("planner"), user, schema)
            intents = {n: list(obj["intents"].get(n, [])) for n in self.ctx.nodes}
            if not self._feasible_intents(intents):
                raise ValueError("infeasible intents")
            return intents, "llm"
        except ValueError:
            self.fallbacks["planner"] += 1
            return self._random_intents(), "random_fallback"

    def predicted_utilisation(self, intents: dict[str, list[str]], rates: dict[str, float]) -> dict[str, float]:
        """Per node, the utilisation ``sum_m rate_m x share_nm x s_nm`` that ``intents`` would give at
        ``rates`` (req/s) with each model split over its hosts in proportion to speed (1 / prior
        service time ``s_nm``, s), as the fluid program of :mod:`e3.fairness.static` counts it."""
        shares = self._shares_from_intents(intents)
        u = dict.fromkeys(self.ctx.nodes, 0.0)
        for m, per_node in shares.items():
            for n, p in per_node.items():
                u[n] += rates.get(m, 0.0) * p * self.ctx.service_s[(n, m)]
        return {n: _round(v) for n, v in u.items()}

    def _planner_system_text(self) -> str:
        ctx = self.ctx
        kinds: dict[str, str] = {}
        for n in ctx.nodes:
            kinds.setdefault(ctx.node_kind[n], n)
        facts = {"nodes": {n: {"kind": ctx.node_kind[n], "memory": {d: v for d, v in ctx.capacity[n].items() if v > 0}}
                           for n in ctx.nodes},
                 "models": {m: {"service_s": {k: _round(ctx.service_s[(n, m)]) for k, n in kinds.items()},
                                "memory": {k: ctx.demand[(n, m)] for k, n in kinds.items()},
                                "activation_s": ctx.activation_s.get(m, 0.0)} for m in ctx.models}}
        role = ("You plan where models run in an edge inference cluster. At each epoch, and when a model's "
                "demand surges, you may change which models each node hosts. A model's requests are split "
                "over its hosts in proportion to their speed; a node's utilisation is the sum over its "
                "models of rate x share x service time on that node. Keep every node below 0.85 utilisation "
                "(above 1 its queue grows without bound), host every model at least once, and fit each "
                "node's memory. A started pod serves nothing for its activation time. Goals: low mean "
                "latency and fair service across models. Input: models = {model: [rate_per_s, backlog, "
                "mean_latency_s]}; plan = {node: hosted models}; utilisation = each node's predicted "
                "utilisation if the plan is kept; cases = similar past epochs with their plan, "
                "mean_latency_s and fairness (1 = fair). Reply with JSON {\"add\": [\"node/model\"], "
                "\"remove\": [\"node/model\"]} only; empty lists keep the plan.")
        return role + " System: " + json.dumps(facts, sort_keys=True, separators=(",", ":"))

    def _compact_plan(self, intents: dict[str, list[str]]) -> dict[str, str]:
        return {n: ",".join(sorted(intents.get(n, []))) for n in self.ctx.nodes}

    def _llm_plan_compact(self, obs, rates: dict[str, float], near, reason: str) -> tuple[dict[str, list[str]], str]:
        """The planner-only back-end's request (issue 29): compact telemetry, the current plan with
        its predicted utilisation at the measured rates and the remembered cases, answered with
        the pods to add and to remove (a compact reply: most epochs change little)."""
        pairs = [f"{n}/{m}" for n in self.ctx.nodes for m in self.ctx.models]
        change = {"type": "array", "items": {"enum": pairs}, "uniqueItems": True, "maxItems": len(pairs)}
        schema = {"type": "object", "required": ["add", "remove"], "additionalProperties": False,
                  "properties": {"add": change, "remove": change}}
        back = self._backlog(obs)
        lat = {m: (_round(c.latency_sum_ms / c.served / 1000.0) if c.served else None)
               for m, c in (obs.last_epoch or obs.last_slot).items()}
        current = {n: sorted(self.intents.get(n, [])) for n in self.ctx.nodes}
        user = {"reason": reason, "epoch": obs.epoch,
                "models": {m: [_round(rates[m]), back[m], lat.get(m)] for m in self.ctx.models},
                "plan": self._compact_plan(current),
                "utilisation": self.predicted_utilisation(current, rates),
                "cases": [{"similarity": _round(s), "plan": self._compact_plan(c.intents),
                           "mean_latency_s": c.outcome.get("mean_latency_s"), "fairness": c.outcome.get("jain_normalized")}
                          for s, c in near if c.outcome]}
        try:
            obj = self._ask("planner", self._planner_system_text(), user, schema, PLANNER_PROMPT_VERSION)
            intents = {n: set(ms) for n, ms in current.items()}
            for pair in obj["remove"]:
                n, m = pair.split("/")
                intents[n].discard(m)
            for pair in obj["add"]:
                n, m = pair.split("/")
                intents[n].add(m)
            out = {n: sorted(ms) for n, ms in intents.items()}
            if not self._feasible_intents(out):
                raise ValueError("infeasible intents")
            if self.overload_guard:
                u_new = max(self.predicted_utilisation(out, rates).values())
                u_cur = max(self.predicted_utilisation(current, rates).values())
                if u_new >= 1.0 and u_new > u_cur:
                    self.rejected_overload += 1
                    raise ValueError(f"the plan overloads a node (predicted utilisation {u_new:.2f})")
            return out, "llm"
        except ValueError:
            # a deployed planner keeps the running plan on an unusable reply (the all-tiers back-end
            # draws a random one, as the paper does [S]); counted either way
            self.fallbacks["planner"] += 1
            return current, "kept_on_fallback"

    def _llm_schedule(self, obs) -> dict[str, dict[str, float]]:
        schema = {"type": "object", "required": ["routing"], "additionalProperties": False,
                  "properties": {"routing": {"type": "object", "additionalProperties": False,
                                             "properties": {m: {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}
                                                            for m in self.ctx.models}}}}
        user = {"telemetry": self._status(obs), "intents": self.intents,
                "node_backlog_s": {n: _round(self.backlog_s(obs, n)) for n in self.ctx.nodes}}
        try:
            obj = self._ask("scheduler", self._system_text("scheduler"), user, schema)
            probs = {}
            for m in self.ctx.models:
                w = obj["routing"].get(m, {})
                active = set(obs.active_pods(m))
                if any(n not in active for n in w):
                    raise ValueError(f"routing of {m} names a node without an active pod")
                probs[m] = {n: float(v) for n, v in w.items()}
            return probs
        except ValueError:
            self.fallbacks["scheduler"] += 1
            return {m: {n: self.rng.random() for n in obs.active_pods(m)} for m in self.ctx.models}

    def _llm_deploy(self, obs, n: str) -> tuple[list[str], list[str]]:
        schema = {"type": "object", "required": ["activate", "deactivate"], "additionalProperties": False,
                  "properties": {"activate": {"type": "array", "items": {"enum": self.ctx.models}},
                                 "deactivate": {"type": "array", "items": {"enum": self.ctx.models}}}}
        st = self._status(obs)["nodes"][n]
        user = {"node": n, "status": st, "intents": self.intents.get(n, []),
                "pod_age_s": {m: _round((obs.now_ms - obs.pods[(n, m)].active_since_ms) / 1000.0)
                              for m in self.ctx.models if obs.pods[(n, m)].state == ACTIVE},
                "min_age_s_before_stop": self.dwell_s}
        try:
            obj = self._ask("deployment", self._system_text("deployment"), user, schema)
            act = [m for m in dict.fromkeys(obj["activate"]) if obs.pods[(n, m)].state == INACTIVE]
            deact = [m for m in dict.fromkeys(obj["deactivate"]) if obs.pods[(n, m)].state in (ACTIVE, ACTIVATING)]
            need: dict[str, float] = {}
            for m in act:
                for d, v in self.ctx.demand[(n, m)].items():
                    need[d] = need.get(d, 0.0) + v
            ns = obs.nodes[n]
            if any(ns.used[d] + v > ns.capacity[d] + 1e-9 for d, v in need.items()):
                raise ValueError("activations exceed free capacity")
            # churn penalty: the dwell time is a hard rule for every back-end
            deact = [m for m in deact if obs.now_ms - obs.pods[(n, m)].active_since_ms >= 1000.0 * self.dwell_s]
            return act, deact
        except ValueError:
            self.fallbacks["deployment"] += 1
            want = [m for m in self.intents.get(n, []) if obs.pods[(n, m)].state == INACTIVE and self.fits(obs, n, m)]
            return ([self.rng.choice(want)] if want and self.rng.random() < 0.5 else []), []


@register
class MultiAgentChurnAverse(MultiAgent):
    """``multi_agent`` with 0.2.0's planner: a flat churn penalty per changed pod and no overload
    term, which kept its first plan through every epoch (issue 29: 593 planner calls, no change).
    Kept as a row beside the adapting planner so the table shows what adapting changes."""

    name = "multi_agent_churn_averse"
    controllers = ("rules",)
    flat_planner = True
