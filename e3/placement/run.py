"""Assemble and run one agent-placement simulation; write ``tasks.parquet``, ``migrations.parquet``,
``summary.json`` (deterministic) and ``timing.json`` (optimiser and run wall times).

Per cell (:func:`load_inputs`, once per batch of seeds): system, scenario, policy class. Per seed
(:func:`build_simulation`): the world (users, agents, tasks, moves: streams keyed by the seed only),
the policy (its own stream), the engine. Outputs go through a staging folder renamed into place.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from e3.config import REPO_ROOT, config_hash, load_schema, read_yaml, validate
from e3.errors import ConfigError
from e3.io import staged_run_dir, write_json_atomic
from e3.placement.engine import PlacementSimulation, PlacementStats, StepSpec
from e3.placement.model import Evaluator
from e3.placement.policies import get_policy
from e3.placement.system import DIMS, System, World, build_system, build_world, section
from e3.run_summary import check_run_summary, versions
from e3.scenario_files import ScenarioFolder
from e3.seeds import stream

SCENARIO_DIR = REPO_ROOT / "config" / "agents"


#: the placement system's scenario files (one home for the helpers: e3.scenario_files)
SCENARIOS = ScenarioFolder(SCENARIO_DIR, "placement")
scenario_path = SCENARIOS.path
available_scenarios = SCENARIOS.names
is_placement_scenario = SCENARIOS.holds


def load_scenario(name_or_path: str | Path, system: System) -> dict[str, Any]:
    """Read and validate a scenario. Raises ConfigError: missing file, schema violation, unknown
    server, a return before its leave, two leave windows of one server that overlap, or a moment
    at which every server is out (issue 33, defect 5: nothing could then serve or be evacuated)."""
    path = scenario_path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{path}: placement scenario not found; available: {available_scenarios()}")
    raw = validate(read_yaml(path), load_schema("placement_scenario.schema.yaml"), path)
    for i, e in enumerate(raw["server_events"]):
        if e["server"] not in system.servers:
            raise ConfigError(f"{path}: field 'server_events.{i}.server': unknown server {e['server']!r}; "
                              f"known: {list(system.servers)}")
        if e["return_s"] <= e["leave_s"]:
            raise ConfigError(f"{path}: field 'server_events.{i}': return_s {e['return_s']} must be > leave_s {e['leave_s']}")
        for j, f in enumerate(raw["server_events"][:i]):
            if f["server"] == e["server"] and f["leave_s"] < e["return_s"] and e["leave_s"] < f["return_s"]:
                raise ConfigError(f"{path}: field 'server_events.{i}': server {e['server']!r} is already out "
                                  f"[{f['leave_s']}, {f['return_s']}) s (server_events.{j}); its windows overlap")
    for e in raw["server_events"]:  # the set of servers out changes only at a leave
        t = e["leave_s"]
        out = {f["server"] for f in raw["server_events"] if f["leave_s"] <= t < f["return_s"]}
        if out >= set(system.servers):
            raise ConfigError(f"{path}: field 'server_events': every server is out at {t} s; at least one "
                              "must stay up to serve and to take evacuated agents")
    return raw


@dataclass(frozen=True)
class PlacementInputs:
    """What every run of one (scenario, policy, controller) cell reads, whatever its seed."""

    cfg: dict[str, Any]
    p: dict[str, Any]
    system: System
    scenario: dict[str, Any]
    policy_cls: type
    controller: str


def load_inputs(cfg: dict[str, Any], scenario: str, policy: str, controller: str | None) -> PlacementInputs:
    """Validate the config section, scenario, policy and controller once per cell."""
    p = section(cfg)
    system = build_system(cfg)
    sc = load_scenario(scenario, system)
    cls = get_policy(policy)
    ctl = controller or cls.controllers[0]
    if ctl not in cls.controllers:
        raise ConfigError(f"placement policy {policy!r}: --controller must be one of {list(cls.controllers)} (value: {ctl!r})")
    return PlacementInputs(cfg, p, system, sc, cls, ctl)


#: Worlds of this process. A world depends on the system, the placement section and the seed,
#: not on the policy, so the cells of a batch job replay the same worlds.
_WORLDS: dict[tuple, World] = {}


def _world(system: System, p: dict[str, Any], seed: int) -> World:
    """:func:`build_world`, remembered per process. Each run gets fresh lists and fresh demand
    dicts (the specs themselves are frozen), so nothing a run does reaches another run's world."""
    key = (repr(system), repr(p), seed)
    w = _WORLDS.get(key)
    if w is None:
        if len(_WORLDS) >= 64:  # a batch job cycles over at most its seeds per scenario
            _WORLDS.clear()
        w = _WORLDS[key] = build_world(system, p, seed)
    return World([replace(a, demand=dict(a.demand)) for a in w.agents], [list(c) for c in w.chains],
                 list(w.user_start), list(w.moves), list(w.tasks), w.rate_per_user_per_s, w.mean_step_ms)


def build_simulation(ri: PlacementInputs, seed: int) -> tuple[PlacementSimulation, World, Any]:
    """The engine of one replicate, its world and its policy."""
    p, system = ri.p, ri.system
    world = _world(system, p, seed)
    heavy = ri.policy_cls.migration == "heavy"
    ev = Evaluator(system, p, world.agents, world.chains, world.rate_per_user_per_s, heavy=heavy)
    # placement.ablation_stream: shared (0.5.0) draws the EAM ablations from antllm's stream
    # (PlacementPolicy.stream_of), so their initial placement is antllm's; own (0.4.0 and earlier,
    # the default when absent) draws every policy from its own name's stream
    shared = p.get("ablation_stream", "own") == "shared"
    stream_name = (ri.policy_cls.stream_of if shared else None) or ri.policy_cls.name
    policy = ri.policy_cls(ev, p, ri.controller, stream(seed, "placement", "policy", stream_name),
                           (ri.cfg.get("controllers") or {}).get("llm"))

    def service_ms(server: str, step: StepSpec) -> float:
        return system.prior_service_ms(server, step.input_tokens, step.output_tokens) * step.noise

    events = []
    for e in ri.scenario["server_events"]:
        events += [(e["leave_s"] * 1000.0, e["server"], "leave"), (e["return_s"] * 1000.0, e["server"], "return")]
    events.sort()
    sim = PlacementSimulation(system.nodes(), system.region, system.access_points, system.network(), world.agents,
                              world.tasks, world.moves, world.user_start, service_ms, policy, ri.policy_cls.migration,
                              p["init_warm_s"] * 1000.0, p["init_pull_s"] * 1000.0, p["epoch_s"] * 1000.0,
                              p["horizon_s"] * 1000.0, events, p["cost"], p.get("outage", "keep_serving"))
    return sim, world, policy


def metrics(st: PlacementStats, system: System, p: dict[str, Any], n_issued: int) -> dict[str, Any]:
    """The run's metrics (see docs/placement.md). Utilisation: time-sampled (every epoch) mean
    reserved fraction over the four dimensions, over the up servers that host at least one agent."""
    lat = np.array([t["latency_ms"] for t in st.tasks], dtype=float)
    met = sum(1 for t in st.tasks if t["met"])
    util, rcost = [], 0.0
    w = p["cost"]["weights"]
    for smp in st.epoch_samples:
        for s, used in smp["used"].items():
            cap = system.capacity[s]
            if smp["up"][s]:
                rcost += sum(w.get(d, 0.0) * used[d] / cap[d] for d in DIMS)
                if used["memory_gb"] > 0:
                    util.append(sum(used[d] / cap[d] for d in DIMS) / len(DIMS))
    mig_cost = sum(m["cost"] for m in st.migrations)
    return {
        "issued": n_issued, "completed": len(st.tasks),
        "task_latency_mean_ms": float(lat.mean()) if len(lat) else math.nan,
        "task_latency_p95_ms": float(np.percentile(lat, 95)) if len(lat) else math.nan,
        "qos_ratio": met / len(st.tasks) if st.tasks else math.nan,
        "deployment_latency_ms": float(np.mean([d["startup_ms"] for d in st.deployments])),
        "migrations": len(st.migrations), "migration_mb": sum(m["bytes"] for m in st.migrations) / 1e6,
        "migration_cost": mig_cost, "migration_downtime_s": sum(m["downtime_ms"] for m in st.migrations) / 1000.0,
        "refused_migrations": st.refused_migrations, "evacuation_failures": st.evacuation_failures,
        **({"stranded_agents": st.stranded_agents, "stranded_agent_s": round(st.stranded_agent_s, 3)}
           if p.get("outage", "keep_serving") == "strand" else {}),
        "utilisation": float(np.mean(util)) if util else 0.0,
        "busy_fraction": {s: b / st.makespan_ms if st.makespan_ms > 0 else 0.0 for s, b in st.busy_ms.items()},
        "resource_cost": rcost, "total_cost": rcost + mig_cost, "decisions": st.decisions,
    }


TASK_SCHEMA = pa.schema([("task", pa.int64()), ("user", pa.int64()), ("arrival_ms", pa.float64()),
                         ("end_ms", pa.float64()), ("latency_ms", pa.float64()), ("deadline_ms", pa.float64()),
                         ("met", pa.bool_()), ("steps", pa.int64())])
MIG_SCHEMA = pa.schema([("agent", pa.int64()), ("src", pa.string()), ("dst", pa.string()), ("start_ms", pa.float64()),
                        ("end_ms", pa.float64()), ("bytes", pa.float64()), ("downtime_ms", pa.float64()),
                        ("warm", pa.bool_()), ("kind", pa.string()), ("cost", pa.float64())])


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.table({f.name: pa.array([r[f.name] for r in rows], type=f.type) for f in schema}, schema=schema)


#: The files one run writes: a folder holding only these is a previous run that may be replaced.
RUN_FILES = frozenset(("summary.json", "timing.json", "tasks.parquet", "migrations.parquet"))


def simulate(cfg: dict[str, Any], scenario: str, policy: str, controller: str | None, seed: int, out_dir: str | Path,
             inputs: PlacementInputs | None = None) -> dict[str, Any]:
    """Run one simulation and write its files (byte-identical for the same inputs and seed, except
    ``timing.json``). Returns the summary with ``wall_s`` and ``optimizer_s`` added."""
    ri = inputs or load_inputs(cfg, scenario, policy, controller)
    # A private staging folder; only a previous run's files are ever replaced (e3.io, issue 13).
    with staged_run_dir(out_dir, RUN_FILES) as staging:
        t0 = time.perf_counter()
        sim, world, pol = build_simulation(ri, seed)
        st = sim.run()
        wall = time.perf_counter() - t0
        pq.write_table(_table(st.tasks, TASK_SCHEMA), staging / "tasks.parquet")
        pq.write_table(_table(st.migrations, MIG_SCHEMA), staging / "migrations.parquet")
        ps = pol.summary()
        summary = {
            "system": "placement", "scenario": ri.scenario["name"], "policy": ri.policy_cls.name,
            "controller": ri.controller, "seed": seed, "migration_mode": ri.policy_cls.migration,
            "agents": len(world.agents), "users": len(world.chains), "moves": len(world.moves),
            "rate_per_user_per_s": world.rate_per_user_per_s, "mean_step_ms": world.mean_step_ms,
            **metrics(st, ri.system, ri.p, len(world.tasks)),
            "llm_calls": ps["llm_calls"],
            "max_used": st.max_used, "capacity": ri.system.capacity, "policy_summary": ps,
            "priors": ri.system.priors_label,
            "config_hash": config_hash({"placement": ri.p, "priors": ri.cfg["priors"]}),
            "scenario_hash": config_hash(ri.scenario), "versions": versions(),
        }
        check_run_summary(summary, Path(out_dir) / "summary.json")
        write_json_atomic(staging / "summary.json", summary)
        optimizer_s = st.controller_wall_s + st.deploy_wall_s
        write_json_atomic(staging / "timing.json", {"wall_s": round(wall, 3), "optimizer_s": round(optimizer_s, 4),
                                                    "deploy_decision_s": round(st.deploy_wall_s, 4)})
    summary["wall_s"], summary["optimizer_s"] = wall, optimizer_s
    return summary


def simulate_batch(cfg: dict[str, Any], scenario: str, policy: str, controller: str | None, seeds: list[int],
                   out_pattern: str, progress=None) -> list[dict[str, Any]]:
    """Run one cell for several seeds in this process; ``out_pattern`` holds ``{seed}``.
    Raises E3Error on a missing placeholder or a repeated seed (:func:`e3.io.check_batch`)."""
    from e3.batch import run_seeds

    return run_seeds(seeds, out_pattern, lambda: load_inputs(cfg, scenario, policy, controller),
                     lambda ri, seed, out: simulate(cfg, scenario, policy, controller, seed, out, inputs=ri),
                     lambda s: (f"mean latency {s['task_latency_mean_ms'] / 1000:.2f} s, QoS {s['qos_ratio']:.3f}, "
                   f"{s['migrations']} migrations, {s['wall_s']:.2f} s"),
                     progress)


def summary_json(path: str | Path) -> dict[str, Any]:
    """A run's summary with its timing merged in (``optimizer_s``, ``wall_s``)."""
    path = Path(path)
    s = json.loads(path.read_text())
    t = path.with_name("timing.json")
    if t.exists():
        s.update(json.loads(t.read_text()))
    return s
