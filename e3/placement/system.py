"""The agent placement system (issue 15): servers, device priors, network, and the seeded world.

:func:`build_system` reads the validated ``placement`` config section (schema
``e3/schemas/placement.schema.yaml``) and the frozen MLPerf priors; :func:`build_world` draws one
replicate's users, agents, tasks and moves from streams keyed by the replicate seed only, so every
policy faces the same world. What is known of AntLLM (arXiv 2508.03345) and the defaults chosen:
docs/placement.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean as mean
from typing import Any

from e3.config import REPO_ROOT, load_schema, validate
from e3.errors import ConfigError
from e3.mlperf.pool import match_record
from e3.mlperf.priors import load_priors
from e3.placement.engine import AgentSpec, StepSpec, TaskSpec
from e3.placement.mobility import Move, great_circle_rtt_matrix, markov_mobility
from e3.seeds import stream
from e3.sim.network import Network
from e3.sim.nodes import Node

DIMS = ("memory_gb", "compute", "storage_gb", "bandwidth_mbps")


@dataclass(frozen=True)
class System:
    """Static facts of the system.

    Attributes:
        servers: names in config order; ``region``: server -> region; ``access_points``: region ->
        its servers in config order (cell index = position).
        capacity: server -> dimension -> capacity; ``device``: server -> device class.
        alpha_ms_per_token / beta_ms_per_token: Eq. 1 coefficients per server (from its class).
        rtt_ms: unordered pair -> RTT; ``bandwidth_bps``: path bandwidth.
        priors_label: device class -> the MLPerf record used.
    """

    servers: tuple[str, ...]
    region: dict[str, str]
    access_points: dict[str, list[str]]
    capacity: dict[str, dict[str, float]]
    device: dict[str, str]
    alpha_ms_per_token: dict[str, float]
    beta_ms_per_token: dict[str, float]
    rtt_ms: dict[tuple[str, str], float]
    bandwidth_bps: float
    priors_label: dict[str, str]

    def network(self) -> Network:
        """A fresh :class:`Network` over the servers."""
        return Network(list(self.servers), self.rtt_ms, self.bandwidth_bps)

    def nodes(self) -> list[Node]:
        """Fresh nodes (nothing reserved) with the four-dimensional capacities."""
        return [Node(s, self.device[s], dict(self.capacity[s])) for s in self.servers]

    def prior_service_ms(self, server: str, input_tokens: float, output_tokens: float) -> float:
        """Eq. 1 on the server's device priors: ``alpha * L_in + beta * L_out`` (ms)."""
        return self.alpha_ms_per_token[server] * input_tokens + self.beta_ms_per_token[server] * output_tokens


def section(cfg: dict[str, Any]) -> dict[str, Any]:
    """The validated ``placement`` section. Raises ConfigError when missing or invalid."""
    p = cfg.get("placement")
    if not p:
        raise ConfigError("config: field 'placement' is missing (the agent placement system's section)")
    _no_nan(p, "placement")
    return validate(p, load_schema("placement.schema.yaml"), "config.yaml: placement")


def _no_nan(v: Any, where: str) -> None:
    """Raise ConfigError naming the field when a number is NaN (JSON Schema bounds let NaN through)."""
    if isinstance(v, float) and math.isnan(v):
        raise ConfigError(f"config.yaml: field {where!r}: NaN is not a number (value: {v!r})")
    if isinstance(v, dict):
        for k, x in v.items():
            _no_nan(x, f"{where}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _no_nan(x, f"{where}.{i}")


def build_system(cfg: dict[str, Any]) -> System:
    """The :class:`System` of the config. Raises ConfigError on unknown device classes or tiers,
    duplicate server names, or a prior record without TTFT/TPOT."""
    p = section(cfg)
    path = Path(cfg["priors"]["frozen"])
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    records = load_priors(path)
    ref_in = cfg["priors"]["reference_input_tokens"]
    coef, label = {}, {}
    for name, dc in p["device_classes"].items():
        r = match_record(records, {"name": f"placement.device_classes.{name}", "benchmark": "llama3.1-8b-edge", **dc})
        m = r["metrics"]
        if "ttft_ms_p99" not in m or "tpot_ms_p99" not in m:
            raise ConfigError(f"placement.device_classes.{name}: record {r['system']!r} has no ttft/tpot p99")
        coef[name] = (m["ttft_ms_p99"] / ref_in, m["tpot_ms_p99"])
        label[name] = f"{r['system']} ({r['round']})"
    servers, region, access, cap, dev, sites = [], {}, {}, {}, {}, {}
    for i, s in enumerate(p["servers"]):
        n = s["name"]
        if n in region:
            raise ConfigError(f"placement.servers.{i}.name: duplicate server {n!r}")
        if s["device"] not in coef:
            raise ConfigError(f"placement.servers.{i}.device: unknown class {s['device']!r}; known: {sorted(coef)}")
        if s["tier"] not in p["tiers"]:
            raise ConfigError(f"placement.servers.{i}.tier: unknown tier {s['tier']!r}; known: {sorted(p['tiers'])}")
        servers.append(n)
        region[n] = s["region"]
        access.setdefault(s["region"], []).append(n)
        cap[n] = {d: float(p["tiers"][s["tier"]][d]) for d in DIMS}
        dev[n] = s["device"]
        sites[n] = (s["region"], s["lat"], s["lon"])
    net = p["network"]
    rtt = great_circle_rtt_matrix(sites, net["intra_region_rtt_ms"], net["km_per_ms"], net["path_stretch"], net["base_rtt_ms"])
    return System(tuple(servers), region, access, cap, dev, {n: coef[dev[n]][0] for n in servers},
                  {n: coef[dev[n]][1] for n in servers}, rtt, net["bandwidth_mbps"] * 1e6, label)


@dataclass(frozen=True)
class World:
    """One replicate: agents, chains (user -> agent indices), starts, moves, tasks, rate."""

    agents: list[AgentSpec]
    chains: list[list[int]]
    user_start: list[tuple[str, int]]
    moves: list[Move]
    tasks: list[TaskSpec]
    rate_per_user_per_s: float
    mean_step_ms: float


def mean_tokens(p: dict[str, Any]) -> tuple[float, float]:
    """Mean input and output tokens of a step (uniform ranges)."""
    t = p["tasks"]
    return sum(t["input_tokens"]) / 2.0, sum(t["output_tokens"]) / 2.0


def task_rate_per_user(system: System, p: dict[str, Any], mean_chain: float) -> tuple[float, float]:
    """The spec's rate rule: tasks per second per user such that, with every step at the pool's mean
    prior service, the servers' mean utilisation is ``tasks.target_mean_utilisation``.
    Returns ``(rate_per_s, mean_step_ms)``."""
    lin, lout = mean_tokens(p)
    step_ms = sum(system.prior_service_ms(s, lin, lout) for s in system.servers) / len(system.servers)
    work_per_task_s = mean_chain * step_ms / 1000.0
    n_users = p["users"]["count"]
    return p["tasks"]["target_mean_utilisation"] * len(system.servers) / (n_users * work_per_task_s), step_ms


def build_world(system: System, p: dict[str, Any], seed: int) -> World:
    """Draw one replicate's world from streams keyed by ``seed`` (not by policy)."""
    ug, ag_cfg, tc = p["users"], p["agents"], p["tasks"]
    rng = stream(seed, "placement", "agents")
    regions = sorted(system.access_points)
    agents, chains, starts = [], [], []
    for u in range(ug["count"]):
        r = regions[u % len(regions)]  # users spread evenly over regions at t = 0
        starts.append((r, rng.randrange(len(system.access_points[r]))))
        chain = []
        for _ in range(rng.randint(*ug["chain_length"])):
            demand = {d: rng.uniform(*ag_cfg[d]) for d in DIMS}
            state = min(ag_cfg["state_median_kb"] * 1e3 * math.exp(rng.gauss(0.0, ag_cfg["state_sigma"])),
                        ag_cfg["state_cap_mb"] * 1e6)
            chain.append(len(agents))
            agents.append(AgentSpec(f"u{u}a{len(chain) - 1}", u, rng.choice(ag_cfg["kinds"]), demand, state,
                                    ag_cfg["image_gb"] * 1e9))
        chains.append(chain)
    mean_chain = sum(len(c) for c in chains) / len(chains)
    rate, step_ms = task_rate_per_user(system, p, mean_chain)
    horizon_ms = p["horizon_s"] * 1000.0
    counts = {r: len(v) for r, v in system.access_points.items()}
    moves: list[Move] = []
    for u in range(ug["count"]):
        moves += markov_mobility(u, counts, starts[u][0], starts[u][1], horizon_ms, ug["dwell_mean_s"] * 1000.0,
                                 ug["handover_mean_s"] * 1000.0, stream(seed, "placement", "mobility", u))
    moves.sort(key=lambda m: (m.t_ms, m.user))
    # the user's location at any time, for the deadline rule (access server at arrival)
    per_user: dict[int, list[Move]] = {}
    for m in moves:
        per_user.setdefault(m.user, []).append(m)
    raw = []
    sigma = tc["noise_sigma"]
    for u in range(ug["count"]):
        trng = stream(seed, "placement", "tasks", u)
        t, k, loc = 0.0, 0, starts[u]
        um = per_user.get(u, [])
        while True:
            t += trng.expovariate(rate) * 1000.0
            if t >= horizon_ms:
                break
            while k < len(um) and um[k].t_ms <= t:
                loc = (um[k].region, um[k].cell)
                k += 1
            steps = tuple(StepSpec(a, trng.randint(*tc["input_tokens"]), trng.randint(*tc["output_tokens"]),
                                   math.exp(trng.gauss(-sigma * sigma / 2.0, sigma))) for a in chains[u])
            lo, hi = tc["input_file_kb"]
            in_bytes = math.exp(trng.uniform(math.log(lo), math.log(hi))) * 1e3
            access = system.access_points[loc[0]][loc[1]]
            # the deadline's reference speed (issue 30): the pool's mean prior, so QoS does not
            # depend on how fast the access server happens to be; 0.1.0 used the access server's
            if tc.get("deadline_reference", "pool_mean") == "pool_mean":
                unloaded = sum(mean(system.prior_service_ms(srv, s.input_tokens, s.output_tokens) for srv in system.servers)
                               for s in steps)
            else:
                unloaded = sum(system.prior_service_ms(access, s.input_tokens, s.output_tokens) for s in steps)
            deadline = tc["deadline_factor"] * unloaded + tc["deadline_slack_s"] * 1000.0
            raw.append((t, u, steps, in_bytes, deadline))
    raw.sort(key=lambda x: (x[0], x[1]))
    tasks = [TaskSpec(i, u, t, steps, b, tc["message_kb"] * 1e3, d) for i, (t, u, steps, b, d) in enumerate(raw)]
    return World(agents, chains, starts, moves, tasks, rate, step_ms)
