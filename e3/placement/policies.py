"""Placement and migration policies of the agent placement system (issue 15), in their own registry.

Every policy is a :class:`e3.placement.engine.PlacementController`: ``initial`` places every agent
(EAD), ``decide`` returns agent moves (EAM) at epochs, user moves and server departures. Policies
see the observation and the static facts (agents, chains, rates, priors) through
:class:`e3.placement.model.Evaluator`, never the engine or the tasks.

* ``antllm``: Ant System (:mod:`e3.placement.aco`) then a refinement of up to ``refine.max_moves``
  moves/swaps, each applied only if feasible and it lowers the objective; controller ``llm`` (the
  moves come from one LLM call via :class:`e3.llm.client.LLMClient`, replay cache) or
  ``local_search`` (first-improvement moves/swaps, same move budget, no LLM). EAM: every epoch
  re-optimises all agents (warm start, migration cost in the objective), a user's region change
  whose predicted latency exceeds ``migration_trigger`` x deadline re-optimises that user's agents
  (Ant System only); intra-region handovers (a few ms) trigger nothing.
* ``aco``: the same without refinement. ``llm_only``: refinement from a random feasible start.
* ``random_feasible``, ``greedy_nearest`` (owner's nearest feasible server), ``best_fit`` (least
  residual capacity), ``first_fit`` (first that fits; both try the owner's region first): the
  same rule re-places the agents of triggered users (at epochs and region changes).
* ``no_migration``, ``always_follow`` (every move sends the user's agents to the feasible server
  nearest to the new access server), ``antllm_heavy`` (migration moves the runtime image): the
  EAM ablations, all with AntLLM's initial placement.
"""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import numpy as np

from e3.errors import ConfigError, E3Error
from e3.placement.aco import ant_system
from e3.placement.engine import PlacementObservation
from e3.placement.model import Evaluator
from e3.placement.system import DIMS
from e3.registry import Registry

PROMPT_VERSION = "antllm-refine-v2"  # v2: bounded view (refine.prompt_users), compact rows
#: refine.prompt -> prompt version (part of every cache key). v3 (issue 30): each server's predicted
#: load and step time with queueing, and a feedback round that reports each change's effect.
PROMPT_VERSIONS = {"v2": PROMPT_VERSION, "v3": "antllm-refine-v3", "v4": "antllm-refine-v4"}
#: the objective's queueing factor (``cost.queueing``) each prompt states; v2 states none. v4
#: (release 0.5.0) is v3 with the M/G/1 sojourn the default objective now uses.
PROMPT_QUEUEING = {"v3": "mm1", "v4": "mg1"}


def check_prompt_queueing(p: dict[str, Any], source: str = "config") -> None:
    """The llm refinement's prompt states the queueing factor the objective uses: a prompt that
    states M/M/1 beside an M/G/1 objective (or the reverse) would mislead the model.

    Args:
        p: the ``placement`` section; ``source``: the config file named in the error.

    Raises:
        ConfigError: ``refine.prompt`` and ``cost.queueing`` disagree (names both values).
    """
    prompt = str(p.get("refine", {}).get("prompt", "v2"))
    queueing = p.get("cost", {}).get("queueing", "mm1")
    wanted = PROMPT_QUEUEING.get(prompt)
    if wanted is not None and wanted != queueing:
        raise ConfigError(f"{source}: field 'placement.refine.prompt': prompt {prompt!r} states the {wanted} "
                          f"queueing factor but placement.cost.queueing is {queueing!r}; use prompt "
                          f"{ {v: k for k, v in PROMPT_QUEUEING.items()}[queueing]!r} with it")


#: placement policies by name (:class:`e3.registry.Registry`; the built-ins are in this module)
POLICIES: Registry = Registry("placement policy")

MOVES_SCHEMA = {
    "type": "object", "required": ["moves"], "additionalProperties": False,
    "properties": {"moves": {"type": "array", "maxItems": 5, "items": {
        "type": "object", "required": ["op", "agent"], "additionalProperties": False,
        "properties": {"op": {"enum": ["move", "swap"]}, "agent": {"type": "string"},
                       "server": {"type": "string"}, "other": {"type": "string"}}}}},
}

SYSTEM_TEXT = (
    "You refine the placement of LLM agents on edge servers. An assignment maps every agent to a server; "
    "a server's summed agent demand must fit its capacity in memory_gb, compute, storage_gb and "
    "bandwidth_mbps. The objective (lower is better) adds the users' predicted mean task latency (s), a "
    "resource cost, 10 per user whose predicted latency exceeds its deadline, and the cost of migrating "
    "agents away from their current server. Input rows: servers {name: [region, mean LLM step s, free "
    "[memory_gb, compute, storage_gb, bandwidth_mbps]]} (servers in down take no agents); agents {name: "
    "[server, demand [memory_gb, compute, storage_gb, bandwidth_mbps]]}; users {id: [access server, "
    "predicted latency s, deadline s, chain of agents]}, the users worst off. "
    "Propose up to 5 changes that lower it: "
    '{"op": "move", "agent": A, "server": S} or {"op": "swap", "agent": A, "other": B}. Each is applied only '
    'if it fits and lowers the objective. Reply with JSON only: {"moves": [...]}.')

SYSTEM_TEXT_V3 = (
    "You refine the placement of LLM agents on edge servers. An assignment maps every agent to a server; "
    "a server's summed agent demand must fit its capacity in memory_gb, compute, storage_gb and "
    "bandwidth_mbps. The objective (lower is better) adds the users' predicted mean task latency (s), a "
    "resource cost, 10 per user whose predicted latency exceeds its deadline, and the cost of migrating "
    "agents away from their current server. A user's predicted latency is the sum, over its chain, of each "
    "agent's server step time with queueing (mean step / (1 - rho), rho = the server's predicted load from the "
    "agents it hosts), plus network delays between servers (small within a region, large across regions). "
    "Moving an agent to a server raises that server's rho and lowers its old server's. Input rows: servers "
    "{name: [region, mean LLM step s, rho, step with queueing s, free [memory_gb, compute, storage_gb, "
    "bandwidth_mbps]]} (servers in down take no agents); agents {name: [server, demand [memory_gb, compute, "
    "storage_gb, bandwidth_mbps]]}; users {id: [access server, predicted latency s, deadline s, chain of "
    "agents]}, the users worst off. Propose up to 5 changes that lower it: "
    '{"op": "move", "agent": A, "server": S} or {"op": "swap", "agent": A, "other": B}. Each is applied only '
    "if it fits and lowers the objective; you will be told what each change did and may propose more once. "
    'Reply with JSON only: {"moves": [...]}.')
SYSTEM_TEXT_V4 = SYSTEM_TEXT_V3.replace(
    "(mean step / (1 - rho), rho = the server's predicted load from the agents it hosts)",
    "(mean step x (1 + rho (1 + cv2) / (2 (1 - rho))), the M/G/1 mean sojourn; rho = the server's "
    "predicted load from the agents it hosts, cv2 ~ 0.1 the variability of a step)")
assert SYSTEM_TEXT_V4 != SYSTEM_TEXT_V3
#: refine.prompt -> system text
SYSTEM_TEXTS = {"v2": SYSTEM_TEXT, "v3": SYSTEM_TEXT_V3, "v4": SYSTEM_TEXT_V4}


#: the registry's methods under the names every system uses: ``register`` (class decorator; a
#: taken name is an error), ``get_policy(name, plugins=())`` and ``policy_names(plugins=())``
register = POLICIES.register
get_policy = POLICIES.get
policy_names = POLICIES.names


class PlacementPolicy:
    """Base class: the evaluator, the stream, helpers shared by every policy.

    Args:
        ev: the objective evaluator (static facts); ``p``: the ``placement`` section.
        controller: one of ``cls.controllers`` (``none`` for policies without one).
        rng: the policy's seeded stream; ``llm``: the ``controllers.llm`` config (llm controller).

    Raises:
        ConfigError: a controller the policy does not have.
    """

    name = "base"
    controllers: tuple[str, ...] = ("none",)
    migration = "light"
    #: the policy whose random stream this one draws (None: its own name). The EAM ablations draw
    #: antllm's, so their initial placement is antllm's and a paired comparison differs only in
    #: what happens after it (issue 30, item 5: 0.4.0 drew each from its own name's stream).
    stream_of: str | None = None

    def __init__(self, ev: Evaluator, p: dict[str, Any], controller: str, rng: random.Random,
                 llm: dict[str, Any] | None = None) -> None:
        if controller not in self.controllers:
            raise ConfigError(f"placement policy {self.name!r}: controller must be one of {list(self.controllers)} "
                              f"(value: {controller!r})")
        self.ev, self.p, self.controller, self.rng = ev, p, controller, rng
        self.n_servers = len(ev.servers)
        self.counts = {"aco_runs": 0, "aco_evaluations": 0, "refinements": 0, "refine_accepted": 0,
                       "refine_rejected": 0, "llm_calls": 0, "llm_fallbacks": 0, "local_evaluations": 0}
        self.client = None
        if controller == "llm":
            # the llm's rejected changes by reason (unknown names are rejected_unknown)
            self.counts.update(rejected_no_change=0, rejected_infeasible=0, rejected_not_better=0,
                               rejected_unknown=0)
            check_prompt_queueing(p)
            from e3.config import REPO_ROOT
            from e3.llm.client import LLMClient, LLMSettings

            fields = set(LLMSettings.__dataclass_fields__)
            s = {k: v for k, v in (llm or {}).items() if k in fields}
            s["max_tokens"] = int(p["refine"]["llm_max_tokens"])
            self.client = LLMClient(LLMSettings(**s), REPO_ROOT)

    # --- helpers ------------------------------------------------------------------------------------
    def _x(self, obs: PlacementObservation) -> list[int]:
        return [self.ev.idx[s] for s in obs.assignment]

    def _access(self, obs: PlacementObservation) -> list[int]:
        return [self.ev.idx[s] for s in obs.user_access]

    def _allowed(self, obs: PlacementObservation) -> list[bool]:
        return [bool(obs.up[s]) for s in self.ev.servers]

    def _used(self, x: list[int], skip: set[int]) -> list[list[float]]:
        used = [[0.0] * len(DIMS) for _ in range(self.n_servers)]
        for a, s in enumerate(x):
            if a not in skip and s >= 0:
                for k in range(len(DIMS)):
                    used[s][k] += self.ev.demand[a][k]
        return used

    def _fits(self, used: list[list[float]], a: int, s: int) -> bool:
        return all(u + n <= c + 1e-9 for u, n, c in zip(used[s], self.ev.demand[a], self.ev.capacity[s], strict=True))

    def _triggered(self, x: list[int], access: list[int], users: list[int]) -> list[int]:
        lat = self.ev.user_latency_ms(x, access)
        f = self.p["migration_trigger"]
        return [u for u in users if lat[u] > f * self.ev.deadline_ms(access[u], u)]

    def _changes(self, old: list[int], new: list[int]) -> dict[int, str]:
        return {a: self.ev.servers[s] for a, (o, s) in enumerate(zip(old, new, strict=True)) if o != s}

    # --- rule placement of a subset (baselines, fallbacks) --------------------------------------------
    def _rule_place(self, x: list[int], agents: list[int], access: list[int], allowed: list[bool]) -> list[int]:
        """Place ``agents`` one by one by :meth:`_choose` (others fixed); unplaceable ones stay."""
        x = list(x)
        used = self._used(x, set(agents))
        for a in agents:
            ok = [s for s in range(self.n_servers) if allowed[s] and self._fits(used, a, s)]
            if not ok:
                if x[a] < 0:
                    raise E3Error(f"placement policy {self.name!r}: no server fits agent {a}")
                ok = [x[a]]
            s = self._choose(a, ok, used, access)
            x[a] = s
            for k in range(len(DIMS)):
                used[s][k] += self.ev.demand[a][k]
        return x

    def _choose(self, a: int, ok: list[int], used: list[list[float]], access: list[int]) -> int:
        return self.rng.choice(ok)

    def _region_first(self, a: int, ok: list[int], access: list[int]) -> list[int]:
        reg = self.ev.system.region[self.ev.servers[access[self.ev.owner[a]]]]
        near = [s for s in ok if self.ev.system.region[self.ev.servers[s]] == reg]
        return near or ok

    # --- the controller interface --------------------------------------------------------------------
    def initial(self, obs: PlacementObservation) -> list[str]:
        """EAD: every agent placed by the rule, agents in index order."""
        access, allowed = self._access(obs), self._allowed(obs)
        x = self._rule_place([-1] * len(self.ev.agents), list(range(len(self.ev.agents))), access, allowed)
        return [self.ev.servers[s] for s in x]

    def decide(self, obs: PlacementObservation, reason: str, user: int | None) -> dict[int, str]:
        """EAM: re-place the agents of triggered users (all users at epochs, the mover on a move,
        the leaving server's agents on a departure) by the rule."""
        x, access, allowed = self._x(obs), self._access(obs), self._allowed(obs)
        if reason == "handover":  # a few ms inside a region: not worth a migration
            return {}
        if reason == "server_leave":
            agents = [a for a, s in enumerate(x) if not allowed[s]]
        else:
            users = [user] if reason == "region" else list(range(len(self.ev.chains)))
            agents = [a for u in self._triggered(x, access, users) for a in self.ev.chains[u]]
        if not agents:
            return {}
        return self._changes(x, self._rule_place(x, agents, access, allowed))

    def summary(self) -> dict[str, Any]:
        """Counters for the run summary (LLM cache statistics when the llm controller is used)."""
        out = dict(self.counts)
        if self.client is not None:
            out.update({"llm_requests": self.client.calls, "llm_cache_hits": self.client.cache_hits,
                        "prompt_tokens": self.client.prompt_tokens, "completion_tokens": self.client.completion_tokens})
        return out


@register
class RandomFeasible(PlacementPolicy):
    """A uniformly random server among those that fit."""

    name = "random_feasible"


@register
class GreedyNearest(PlacementPolicy):
    """The feasible server nearest (RTT) to the owner's access server; ties by name order."""

    name = "greedy_nearest"

    def _choose(self, a, ok, used, access):
        acc = access[self.ev.owner[a]]
        return min(ok, key=lambda s: (self.ev.rtt[acc][s], s))


@register
class BestFit(PlacementPolicy):
    """Least normalised residual capacity after placement, owner's region first."""

    name = "best_fit"

    def _choose(self, a, ok, used, access):
        def residual(s: int) -> float:
            return sum((c - u - n) / c for u, n, c in zip(used[s], self.ev.demand[a], self.ev.capacity[s], strict=True))
        return min(self._region_first(a, ok, access), key=lambda s: (residual(s), s))


@register
class FirstFit(PlacementPolicy):
    """The first server (config order) that fits, owner's region first."""

    name = "first_fit"

    def _choose(self, a, ok, used, access):
        return min(self._region_first(a, ok, access))


@register
class Aco(PlacementPolicy):
    """Ant System over the agents (see module docstring); no refinement."""

    name = "aco"
    refine = False

    def _optimise(self, x: list[int], agents: list[int], access: list[int], allowed: list[bool],
                  current: list[int] | None, iterations: int) -> list[int]:
        a = self.p["aco"]
        eta = self.ev.eta(access, current)
        base = [s if s >= 0 else 0 for s in x]
        res = ant_system(self.ev.demand, self.ev.capacity, base, agents, allowed, eta,
                         lambda y: self.ev.objective(y, access, current), a["alpha"], a["beta"], a["rho"], a["q"],
                         a["ants"], iterations, self.rng, warm_start=current is not None,
                         objective_many=lambda ys: self.ev.objective_many(ys, access, current),
                         variant=a.get("variant", "legacy"), p_best=a.get("p_best", 0.05))
        self.counts["aco_runs"] += 1
        self.counts["aco_evaluations"] += res.evaluations
        if res.assignment is None:  # no ant found room: the greedy rule (fails loudly at t = 0)
            return self._greedy(x, agents, access, allowed)
        return res.assignment

    def _greedy(self, x, agents, access, allowed):
        g = GreedyNearest(self.ev, self.p, "none", self.rng)
        return g._rule_place(x, agents, access, allowed)

    def _after(self, x: list[int], access: list[int], allowed: list[bool], current: list[int] | None,
               agents: list[int]) -> list[int]:
        return x

    def initial(self, obs):
        access, allowed = self._access(obs), self._allowed(obs)
        agents = list(range(len(self.ev.agents)))
        x = self._start(agents, access, allowed)
        x = self._after(x, access, allowed, None, agents)
        return [self.ev.servers[s] for s in x]

    def _start(self, agents, access, allowed):
        return self._optimise([-1] * len(agents), agents, access, allowed, None, self.p["aco"]["iterations"])

    def decide(self, obs, reason, user):
        x, access, allowed = self._x(obs), self._access(obs), self._allowed(obs)
        if reason == "handover":
            return {}
        if reason == "region":
            if not self._triggered(x, access, [user]):
                return {}
            agents = list(self.ev.chains[user])
        elif reason == "server_leave":
            agents = list(range(len(x)))
        else:
            agents = list(range(len(x)))
        cur = list(x)
        if not all(allowed[s] for s in cur):  # agents on a leaving server must go: no warm start there
            cur_ok = self._greedy(cur, [a for a, s in enumerate(cur) if not allowed[s]], access, allowed)
        else:
            cur_ok = cur
        y = self._optimise(cur_ok, agents, access, allowed, cur_ok, self.p["aco"]["eam_iterations"])
        if reason != "region":
            y = self._after(y, access, allowed, cur, agents)
        return self._changes(x, y)


@register
class AntLLM(Aco):
    """Ant System then refinement by the controller: ``local_search`` (first improvement, at most
    ``refine.max_evaluations`` candidates), ``llm`` (up to ``refine.max_moves`` proposed changes a
    request, ``1 + refine.feedback_rounds`` requests) or ``local_search_llm_budget`` (local search
    held to the llm's budget: ``max_moves x (1 + feedback_rounds)`` candidates and accepted changes
    a decision, the comparison with the llm at equal evaluations; issue 30)."""

    name = "antllm"
    controllers = ("local_search", "llm", "local_search_llm_budget")

    def _after(self, x, access, allowed, current, agents):
        return self.refine_moves(x, access, allowed, current, agents)

    # --- refinement ------------------------------------------------------------------------------------
    def _try(self, x: list[int], op: tuple, access, allowed, current, best: float) -> tuple[list[int], float] | None:
        """Apply one move/swap if it is feasible and lowers the objective; else None."""
        return self._try_why(x, op, access, allowed, current, best)[0]

    def _try_why(self, x: list[int], op: tuple, access, allowed, current,
                 best: float) -> tuple[tuple[list[int], float] | None, str]:
        """:meth:`_try` with the reason: ``accepted``, ``no_change`` (the agent is already there,
        or a swap of agents on one server), ``infeasible`` (a server's capacity or a down server)
        or ``not_better`` (feasible, but the objective does not fall)."""
        y = list(x)
        if op[0] == "move":
            y[op[1]] = op[2]
        else:
            y[op[1]], y[op[2]] = x[op[2]], x[op[1]]
        if y == x:
            return None, "no_change"
        if not self.ev.feasible(y, allowed):
            return None, "infeasible"
        c = self.ev.objective(y, access, current)
        return ((y, c), "accepted") if c < best - 1e-12 else (None, "not_better")

    def refine_moves(self, x, access, allowed, current, agents) -> list[int]:
        """Up to ``refine.max_moves`` accepted moves/swaps from the controller."""
        self.counts["refinements"] += 1
        best = self.ev.objective(x, access, current)
        budget = self.p["refine"]["max_moves"]
        if self.controller == "llm":
            ops, messages, content = self._llm_ops(x, access, allowed, current, agents)
            for round_ in range(1 + self._feedback_rounds()):
                outcomes = []
                for op in ops[:budget]:
                    r, why = self._try_why(x, op, access, allowed, current, best)
                    if r is None:
                        self.counts["refine_rejected"] += 1
                        self.counts[f"rejected_{why}"] += 1  # why the llm's changes fail (issue 30)
                        outcomes.append((op, None))
                        continue
                    outcomes.append((op, best - r[1]))
                    x, best = r
                    self.counts["refine_accepted"] += 1
                if round_ == self._feedback_rounds() or messages is None:
                    break
                # one feedback round (issue 30): what each change did, the new state, more changes
                messages = messages + [{"role": "assistant", "content": content},
                                       {"role": "user", "content": self._feedback_text(outcomes, x, access, allowed, current,
                                                                                      agents)}]
                ops, content = self._ask(messages)
            return x
        if self.controller == "local_search_llm_budget":
            # the llm's candidate budget: max_moves proposals a request, 1 + feedback_rounds requests
            matched = budget * (1 + self._feedback_rounds())
            return self.local_search(x, access, allowed, current, agents, matched, matched)
        return self.local_search(x, access, allowed, current, agents, budget, self.p["refine"]["max_evaluations"])

    def local_search(self, x, access, allowed, current, agents, max_moves: int, limit: int) -> list[int]:
        """First-improvement local search over single moves and swaps of ``agents`` (candidates in
        a random order from the policy's stream): at most ``max_moves`` accepted changes and
        ``limit`` objective evaluations."""
        best = self.ev.objective(x, access, current)
        budget = max_moves
        accepted, evals = 0, 0
        while accepted < budget and evals < limit:
            cands = [("move", a, s) for a in agents for s in range(self.n_servers) if s != x[a] and allowed[s]]
            cands += [("swap", a, b) for i, a in enumerate(agents) for b in agents[i + 1:] if x[a] != x[b]]
            self.rng.shuffle(cands)
            found = False
            for op in cands:
                if evals >= limit:
                    break
                evals += 1
                r = self._try(x, op, access, allowed, current, best)
                if r is not None:
                    x, best = r
                    accepted += 1
                    found = True
                    break
            if not found:
                break
        self.counts["local_evaluations"] += evals
        self.counts["refine_accepted"] += accepted
        return x

    def _feedback_rounds(self) -> int:
        return int(self.p["refine"].get("feedback_rounds", 0))

    def _prompt(self) -> str:
        return str(self.p["refine"].get("prompt", "v2"))

    def _server_rows(self, x, allowed) -> dict[str, list]:
        """Server rows of the prompt: v2 [region, mean LLM step s, free capacity]; v3 and v4 add the
        predicted load rho (the input of the queueing factor) and the step time with queueing
        (s), the two numbers that drive the predicted latency (issue 30)."""
        ev = self.ev
        used = self._used(x, set())
        rows = {}
        loads = ev.loads(x) if self._prompt() != "v2" else None
        # the step time with queueing: the objective's own (cost.queueing), per server
        step_ms = ev.sojourn_ms(np.minimum(np.asarray(loads), ev.load_cap)) if loads is not None else None
        for i, s in enumerate(ev.servers):
            if not allowed[i]:
                continue
            free = [round(c - u, 1) for c, u in zip(ev.capacity[i], used[i], strict=True)]
            if loads is None:
                rows[s] = [ev.system.region[s], round(ev.svc_ms[i] / 1000.0, 2), free]
            else:
                rho = loads[i]
                step = float(step_ms[i]) / 1000.0
                rows[s] = [ev.system.region[s], round(ev.svc_ms[i] / 1000.0, 2), round(rho, 2), round(step, 2), free]
        return rows

    def _feedback_text(self, outcomes, x, access, allowed, current, agents) -> str:
        """The feedback round's user text: each proposed change's effect on the objective (lower is
        better; rejected ones say why not), the new objective and server rows."""
        ev = self.ev
        names = [ev.agents[a].name for a in range(len(ev.agents))]
        res = []
        for op, gain in outcomes:
            what = (f"move {names[op[1]]} -> {ev.servers[op[2]]}" if op[0] == "move"
                    else f"swap {names[op[1]]} <-> {names[op[2]]}")
            res.append([what, f"accepted, objective -{gain:.3f}" if gain is not None
                        else "rejected (does not fit, no change, or does not lower the objective)"])
        body = {"results": res, "objective": round(ev.objective(x, access, current), 3),
                "servers": self._server_rows(x, allowed)}
        return ("Feedback on your changes: " + json.dumps(body, sort_keys=True, separators=(",", ":"))
                + '\nPropose up to 5 further changes that lower the objective, or {"moves": []}.')

    def _ask(self, messages) -> tuple[list[tuple], str | None]:
        """One request; its moves as ops and the reply text (None and [] on a fallback)."""
        from e3.llm.client import LLMProviderError

        ev = self.ev
        self.counts["llm_calls"] += 1
        version = PROMPT_VERSIONS[self._prompt()]
        try:
            reply = self.client.complete(messages, None, {"type": "json_object", "schema": MOVES_SCHEMA}, version)
            obj = json.loads((reply.content or "").strip())
            jsonschema.validate(obj, MOVES_SCHEMA)
        except (LLMProviderError, json.JSONDecodeError, jsonschema.ValidationError):
            self.counts["llm_fallbacks"] += 1
            return [], None
        names = {ag.name: i for i, ag in enumerate(ev.agents)}
        ops = []
        for m in obj["moves"]:
            a = names.get(m["agent"])
            if m["op"] == "move" and a is not None and m.get("server") in ev.idx:
                ops.append(("move", a, ev.idx[m["server"]]))
            elif m["op"] == "swap" and a is not None and names.get(m.get("other")) is not None:
                ops.append(("swap", a, names[m["other"]]))
            else:
                self.counts["refine_rejected"] += 1
                self.counts["rejected_unknown"] += 1
        return ops, reply.content

    def _llm_ops(self, x, access, allowed, current, agents) -> tuple[list[tuple], list[dict] | None, str | None]:
        """One LLM call; its moves as ``("move", a, s)`` / ``("swap", a, b)``. Malformed replies and
        unknown names are counted as fallbacks (no-op). The prompt shows every server, and of the
        candidate ``agents`` only those whose owners are the ``refine.prompt_users`` worst off by
        predicted latency / deadline (ties by user index), with those users' chains.

        Returns:
            (ops, the request's messages, the reply text); messages and text are None on a fallback.
        """
        ev = self.ev
        lat = ev.user_latency_ms(x, access)
        # A bounded view: the whole state (~80 agents, 40 users) overflows a small local model's
        # 4,096-token context, so the prompt holds the owners of the candidate agents that are
        # worst off (predicted latency / deadline), at most refine.prompt_users of them.
        owners = {ev.owner[a] for a in agents}
        slack = {u: lat[u] / ev.deadline_ms(access[u], u) for u in owners}
        shown = set(sorted(owners, key=lambda u: (-slack[u], u))[: int(self.p["refine"]["prompt_users"])])
        agents = [a for a in agents if ev.owner[a] in shown]
        # Compact rows (field order in SYSTEM_TEXT): JSON with named numbers costs ~4x the tokens.
        user = {
            "servers": self._server_rows(x, allowed),
            "down": [s for i, s in enumerate(ev.servers) if not allowed[i]],
            "agents": {ev.agents[a].name: [ev.servers[x[a]], [round(v, 1) for v in ev.demand[a]]] for a in agents},
            "users": {str(u): [ev.servers[access[u]], round(lat[u] / 1000.0, 1),
                               round(ev.deadline_ms(access[u], u) / 1000.0, 1), [ev.agents[a].name for a in ch]]
                      for u, ch in enumerate(ev.chains) if u in shown},
            "objective": round(ev.objective(x, access, current), 3),
        }
        system = SYSTEM_TEXTS[self._prompt()]
        messages = [{"role": "system", "content": system},
                    {"role": "user", "content": json.dumps(user, sort_keys=True, separators=(",", ":"))}]
        ops, content = self._ask(messages)
        return ops, (messages if content is not None else None), content


@register
class LLMOnly(AntLLM):
    """Refinement alone from a random feasible start (no ACO)."""

    name = "llm_only"

    def _start(self, agents, access, allowed):
        return RandomFeasible(self.ev, self.p, "none", self.rng)._rule_place([-1] * len(agents), agents, access, allowed)

    def decide(self, obs, reason, user):
        x, access, allowed = self._x(obs), self._access(obs), self._allowed(obs)
        if reason in ("region", "handover"):
            return {}
        cur = list(x)
        if reason == "server_leave":
            cur = self._start_leave(cur, access, allowed)
        y = self.refine_moves(cur, access, allowed, list(x), list(range(len(x))))
        return self._changes(x, y)

    def _start_leave(self, x, access, allowed):
        out = [a for a, s in enumerate(x) if not allowed[s]]
        return RandomFeasible(self.ev, self.p, "none", self.rng)._rule_place(x, out, access, allowed)


@register
class NoMigration(AntLLM):
    """AntLLM's initial placement; never migrates (departing servers are evacuated by the engine)."""

    name = "no_migration"
    stream_of = "antllm"

    def decide(self, obs, reason, user):
        return {}


@register
class AlwaysFollow(AntLLM):
    """AntLLM's initial placement; every user move sends the user's agents to the feasible server
    nearest to the new access server (no epoch re-optimisation)."""

    name = "always_follow"
    stream_of = "antllm"

    def decide(self, obs, reason, user):
        x, access, allowed = self._x(obs), self._access(obs), self._allowed(obs)
        if reason in ("region", "handover"):
            agents = list(self.ev.chains[user])
        elif reason == "server_leave":
            agents = [a for a, s in enumerate(x) if not allowed[s]]
        else:
            return {}
        g = GreedyNearest(self.ev, self.p, "none", self.rng)
        return self._changes(x, g._rule_place(x, agents, access, allowed))


@register
class AntLLMHeavy(AntLLM):
    """AntLLM with heavy migration (the runtime image moves with the state)."""

    name = "antllm_heavy"
    stream_of = "antllm"
    migration = "heavy"


@register
class GreedyLocalSearch(AntLLM):
    """Greedy nearest placement improved by first-improvement local search with the ACO's own
    evaluation budget (issue 30: the comparison at equal evaluations): ``aco.ants x
    aco.iterations`` objective evaluations for the initial placement, ``aco.ants x
    aco.eam_iterations`` per EAM decision; no move limit within the budget."""

    name = "greedy_local_search"
    controllers = ("local_search",)

    def _optimise(self, x, agents, access, allowed, current, iterations):
        a = self.p["aco"]
        # the initial placement starts from the greedy rule; an EAM decision from the running one
        # (decide() has already re-placed the agents of a leaving server)
        start = self._greedy(x, agents, access, allowed) if current is None else list(x)
        self.counts["aco_runs"] += 1
        budget = a["ants"] * iterations
        self.counts["aco_evaluations"] += budget
        return self.local_search(start, access, allowed, current, agents, 10**9, budget)

    def _after(self, x, access, allowed, current, agents):
        return x
