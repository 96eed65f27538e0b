"""Run one simulation (or a batch of seeds) from the validated config and write its outputs atomically.

Outputs in ``out_dir``: ``tasks.parquet`` (or ``.csv``), one row per task; ``summary.json``
(latency statistics, oracle-free metrics, stutter rate, utilisation, policy counters, provenance);
``audit.jsonl`` for policies with a control surface. Everything is written into a staging
folder first and renamed into place, so an interrupted run leaves no partial outputs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from e3.agent.controllers import fallback_warning
from e3.config import REPO_ROOT, config_hash
from e3.errors import ConfigError, E3Error, InputError
from e3.io import sha256_file, staged_run_dir, write_json_atomic
from e3.mlperf.pool import DevicePrior, generate_pool, generated_mismatch, resolve_pool
from e3.mlperf.priors import load_priors
from e3.policies.base import get_policy
from e3.run_summary import check_run_summary, versions
from e3.sim.engine import Simulation
from e3.sim.jain import jain_index
from e3.sim.load import offered_load, scenario_loads, time_scale_for
from e3.sim.scenario import (
    RANK_TASK_TOKENS,
    Scenario,
    horizon_warnings,
    load_scenario,
    scenario_workload,
)
from e3.sim.truth import TruthSpec
from e3.sim.workload import TraceWorkload, WorkloadSpec
from e3.workload.fetch import pinned_sha256


@dataclass(frozen=True)
class RunInputs:
    """What every run of one (scenario, policy, controller) cell reads, whatever its seed.

    Loaded once per process by :func:`load_run_inputs`, so a batch of seeds pays for parsing the
    priors, resolving the pool, loading the scenario and looking up the policy only once. Every
    field is read-only during a run (the policy gets a copy of ``params``).
    """

    cfg: dict[str, Any]
    pool: list[DevicePrior]
    scenario: Scenario
    workload: WorkloadSpec
    truth: TruthSpec
    policy_cls: type
    params: dict[str, Any]
    n_tasks: int = 0
    workload_info: dict[str, Any] | None = None


def load_run_inputs(cfg: dict[str, Any], scenario: str, policy: str,
                    policy_overrides: dict[str, Any] | None = None, plugins: tuple[str, ...] = (),
                    n_tasks: int | None = None) -> RunInputs:
    """Resolve pool, priors, scenario, workload, truth and policy class from the validated config.

    With ``pool_generator`` set, the pool is generated (:func:`e3.mlperf.pool.generate_pool`), the
    truth mismatch follows each device's MLPerf record (:func:`generated_mismatch`), and the
    arrival rate is scaled by (generated devices / named devices): the same load per device.
    A scenario's ``workload`` section overrides the config's; a trace workload
    (:func:`trace_workload`) sets the horizon to its window unless ``n_tasks`` is smaller.

    Raises:
        ConfigError / InputError: unknown policy or scenario, bad scenario file, pool mismatch,
            ``n_tasks`` below 1.
    """
    horizon = cfg["simulation"]["horizon_tasks"] if n_tasks is None else n_tasks
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ConfigError(f"n_tasks: the horizon must be a whole number of tasks >= 1, got {horizon!r}")
    priors_path = Path(cfg["priors"]["frozen"])
    if not priors_path.is_absolute() and not priors_path.exists():
        priors_path = REPO_ROOT / priors_path
    records = load_priors(priors_path)
    ref_tokens = cfg["priors"]["reference_input_tokens"]
    pool = resolve_pool(records, cfg["pool"], ref_tokens)
    t = cfg["truth"]
    scale = t.get("mismatch_scale", 1.0)  # the severity sweep: f -> f**scale (1: as configured)
    mismatch = {k: ({f: x ** scale for f, x in v.items()} if scale != 1.0 else dict(v)) for k, v in t["mismatch"].items()}
    gen = cfg.get("pool_generator")
    named = pool
    if gen:
        pool = generate_pool(records, gen, ref_tokens)
        mismatch = generated_mismatch(pool, named, mismatch)
    truth = TruthSpec(mismatch, t["mismatch_sigma"], t["noise_sigma"])
    kinds, rank_ms = {d.name: d.kind for d in pool}, {d.name: d.prior_service_ms(*RANK_TASK_TOKENS) for d in pool}
    if scenario in cfg.get("scenario_files", {}):  # a variant's own plan for this name
        scenario = str(REPO_ROOT / cfg["scenario_files"][scenario])
    sc = load_scenario(scenario, kinds, horizon, rank_ms)
    trace_cfg = cfg["workload"].get("arrivals") == "trace"
    w = scenario_workload(cfg["workload"], sc) if sc.workload or trace_cfg else cfg["workload"]
    wl = WorkloadSpec(w["arrival_rate_per_s"], w["arrivals"], w["mix"], tuple(w["input_token_bins"]),
                      tuple(w["output_token_bins"]))
    info = None
    if w["arrivals"] == "trace":
        tw, info = trace_workload(w["trace"], pool, truth)
        wl = replace(wl, trace=tw)
        n_window = info["trace"]["requests_in_window"]
        if n_tasks is not None and n_tasks > n_window:
            raise E3Error(f"--tasks {n_tasks}: the trace window of scenario {sc.name!r} holds only {n_window} requests")
        horizon = n_tasks or n_window  # a trace's horizon is its window, not simulation.horizon_tasks
        # The event plan was rescaled to simulation.horizon_tasks above, before the window was
        # known: rescale it again, to the trace's horizon (the workload section is unaffected).
        sc = load_scenario(scenario, kinds, horizon, rank_ms)
    elif gen:
        # Rule: the same load per device as the named pool, so utilisation stays comparable.
        wl = replace(wl, arrival_rate_per_s=wl.arrival_rate_per_s * len(pool) / len(named))
    for line in horizon_warnings(sc, horizon):  # a no-op event is never silent
        print(f"e3: warning: {line}", file=sys.stderr, flush=True)
    cls = get_policy(policy, plugins)
    params = {**cfg.get("policies", {}).get(policy, {}), **(policy_overrides or {})}
    return RunInputs(cfg, pool, sc, wl, truth, cls, params, horizon, info)


def build_simulation(cfg: dict[str, Any], scenario: str, policy: str, seed: int, n_tasks: int | None,
                     trace_path: Path | None, policy_overrides: dict[str, Any] | None = None,
                     plugins: tuple[str, ...] = (), progress=None, audit_sink=None,
                     inputs: RunInputs | None = None) -> Simulation:
    """Assemble a :class:`Simulation` from the config (pool, priors, workload, truth, policy).

    Args:
        inputs: the cell's pre-loaded inputs (:func:`load_run_inputs`); loaded here when None.

    Raises:
        ConfigError / InputError: unknown policy or scenario, bad scenario file, pool mismatch.
    """
    ri = inputs or load_run_inputs(cfg, scenario, policy, policy_overrides, plugins, n_tasks)
    simulation = Simulation(ri.pool, ri.scenario, ri.workload, ri.truth, ri.policy_cls, dict(ri.params), seed,
                            ri.n_tasks, trace_path, progress=progress, controllers=cfg.get("controllers"),
                            audit_sink=audit_sink)
    simulation.workload_info = ri.workload_info  # reported in summary.json for trace workloads only
    return simulation


def workload_spec(cfg: dict[str, Any]) -> WorkloadSpec:
    """The config's ``workload`` section as a :class:`WorkloadSpec`."""
    w = cfg["workload"]
    return WorkloadSpec(w["arrival_rate_per_s"], w["arrivals"], w["mix"], tuple(w["input_token_bins"]),
                        tuple(w["output_token_bins"]))


def _finite(x: Any) -> Any:
    """``x`` with infinite floats (no device left) as None, so summary.json stays strict JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return None if isinstance(x, float) and not np.isfinite(x) else x


TRACE_HINT = ("fetch the trace files first: `snakemake fetch_traces --cores 1` or `e3 fetch-traces` "
              "(offline: add `--config traces_mirror=PATH`, set `traces: {mirror: PATH}` in the config or "
              "E3_TRACES_MIRROR=PATH, PATH holding azure-llm-inference-2023/, e.g. ../shared/traces)")


def trace_workload(tcfg: dict[str, Any], pool: list, truth: TruthSpec) -> tuple[TraceWorkload, dict[str, Any]]:
    """The :class:`TraceWorkload` of a validated ``workload.trace`` section, and its provenance
    for ``summary.json`` (file sha256, window, time scale and the rule that set it, SDXL rule,
    offered load ``rho_pool`` from :mod:`e3.sim.load`).

    ``time_scale: auto`` resolves to the scale that puts the pool at ``target_rho_pool``.

    Raises:
        InputError: the trace file is missing (the message says how to fetch it) or has bad rows.
        ConfigError: the window is empty, or a kind with arrivals has no device.
    """
    path = Path(tcfg["path"])
    if not path.is_absolute() and not path.exists():
        path = REPO_ROOT / path
    if not path.is_file():
        raise InputError(tcfg["path"], "workload.trace.path", f"trace file not found; {TRACE_HINT}")
    digest = sha256_file(path)
    pinned = pinned_sha256(path)
    if pinned is not None and digest != pinned:  # a truncated or edited copy of a pinned data set
        raise InputError(tcfg["path"], "workload.trace.path",
                         f"sha256 {digest} is not the pinned {pinned} of this file (truncated, edited or "
                         f"another version); fetch it again: {TRACE_HINT}")
    base = TraceWorkload(str(path), tcfg["format"], 1.0, tcfg["sdxl_fraction"], tcfg["start_s"], tcfg["duration_s"])
    req = base.requests()
    if len(req) == 0:
        raise ConfigError(f"workload.trace: no request of {tcfg['path']} falls in the window "
                          f"start_s={tcfg['start_s']}, duration_s={tcfg['duration_s']}")
    span_s = tcfg["duration_s"] if tcfg["duration_s"] is not None else req.span_s
    if tcfg["time_scale"] == "auto":
        scale = time_scale_for(tcfg["target_rho_pool"], req, span_s, tcfg["sdxl_fraction"], pool, truth)
        rule = f"auto: rho_pool {tcfg['target_rho_pool']} on this pool (e3.sim.load)"
    else:
        scale, rule = float(tcfg["time_scale"]), "config"
    load = offered_load(req, span_s, scale, tcfg["sdxl_fraction"], pool, truth)
    info = {
        "arrivals": "trace",
        "trace": {"path": tcfg["path"], "sha256": digest, "format": tcfg["format"],
                  "start_s": tcfg["start_s"], "duration_s": tcfg["duration_s"], "span_s": span_s,
                  "requests_in_window": len(req)},
        "time_scale": scale, "time_scale_rule": rule,
        "sdxl_fraction": tcfg["sdxl_fraction"],
        "sdxl_rule": "each arrival is an SDXL task with probability sdxl_fraction (seeded workload stream)",
        "tokens": "trace counts as they are, beyond the token bins too (never clipped)",
        **load,
    }
    return replace(base, time_scale=scale), info


def summarize(simulation: Simulation, cfg: dict[str, Any], seed: int,
              workload: WorkloadSpec | None = None) -> dict[str, Any]:
    """The ``summary.json`` content of a finished run.

    Latency statistics come from :attr:`Simulation.latency_ms`, the trace's ``latency_ms`` column
    as the writer built it (equal to reading it back from the file; not read back).

    Args:
        workload: the run's workload (with a generated pool its rate is scaled); default: the
            config's ``workload`` section. Feeds the offered-load figures (``load``).
    """
    s = simulation.stats
    lat = simulation.latency_ms  # the trace's latency_ms column, kept by the writer (no read-back)
    p50_p95_p99 = np.percentile(lat, (50, 95, 99))  # one call; the same values as three calls
    util = {d: (b / s.makespan_ms if s.makespan_ms > 0 else 0.0) for d, b in s.busy_ms.items()}
    pol = simulation.policy
    ps = pol.summary()
    if "controller_calls" in ps:  # control-plane cost scales with regime shifts, not task count
        ps["controller_calls_per_1000_tasks"] = 1000.0 * ps["controller_calls"] / s.n_tasks
    return {
        "system": "e3", "scenario": simulation.scenario.name, "policy": pol.name,
        "controller": ps.get("controller", "none"), "seed": seed, "n_tasks": s.n_tasks,
        "warmup_budget_tasks": simulation.scenario.warmup_budget_tasks,
        "latency_ms": {"mean": float(lat.mean()), "p50": float(p50_p95_p99[0]), "p95": float(p50_p95_p99[1]),
                       "p99": float(p50_p95_p99[2]), "max": float(lat.max())},
        "oracle_free": {"mean_wait_ms": s.wait_sum_ms / s.n_tasks, "mean_service_ms": s.service_sum_ms / s.n_tasks,
                        "makespan_ms": s.makespan_ms, "throughput_tasks_per_s": 1000.0 * s.n_tasks / s.makespan_ms,
                        "jain_fairness_utilisation": jain_index(list(util.values())),
                        "redispatches": s.redispatches},
        "stutter_rate": s.stutter_count / s.n_tasks, "stutter_count": s.stutter_count,
        "utilisation": util, "tasks_per_device": s.tasks_per_device,
        # mean queueing delay of the tasks each device served (ms; 0 for a device that served none)
        "mean_wait_ms_per_device": {d: (s.wait_ms_per_device.get(d, 0.0) / n if n else 0.0)
                                    for d, n in s.tasks_per_device.items()},
        # offered load at this replicate's true base parameters (e3.sim.load): rho_pool and
        # rho_safe per semantic window; analysis only (runs.csv does not read it)
        "load": _finite(scenario_loads(simulation.pool, simulation._truth.base, workload or workload_spec(cfg),
                                       simulation.scenario)),
        "decisions": pol.decisions, "policy_summary": ps,
        "config_hash": config_hash(cfg), "scenario_hash": simulation.scenario.content_hash(),
        "versions": versions(), "wall_s": round(s.wall_s, 3),
        **({"workload": simulation.workload_info} if getattr(simulation, "workload_info", None) else {}),
        # a drawn event family's events with their hidden effects (ground truth, written after the run)
        **({"drawn_events": [e.to_dict() for e in simulation.drawn_events]} if simulation.drawn_events else {}),
    }


def _warn_fallbacks(summary: dict[str, Any]) -> None:
    """Print :func:`e3.agent.controllers.fallback_warning`'s warning, if any, to stderr (the
    run's log under Snakemake)."""
    if (warning := fallback_warning(summary)) is not None:
        print(f"e3: warning: {warning}", file=sys.stderr, flush=True)


def simulate(cfg: dict[str, Any], scenario: str, policy: str, seed: int, out_dir: str | Path,
             n_tasks: int | None = None, trace_format: str | None = None,
             policy_overrides: dict[str, Any] | None = None, plugins: tuple[str, ...] = (),
             progress=None, inputs: RunInputs | None = None) -> dict[str, Any]:
    """Run one simulation and write ``tasks.{parquet,csv}``, ``summary.json`` (and ``audit.jsonl``).

    Args:
        inputs: pre-loaded cell inputs (:func:`load_run_inputs`), shared by a batch of seeds.

    Returns:
        The summary dict. ``wall_s`` is the only field that differs between identical runs; it
        is kept out of ``summary.json`` (written to ``timing.json``) so same inputs give
        byte-identical files.
    """
    fmt = trace_format or cfg["simulation"]["trace_format"]
    # A private staging folder; only a previous run's files are ever replaced (e3.io).
    inputs = inputs or load_run_inputs(cfg, scenario, policy, policy_overrides, plugins, n_tasks)
    with staged_run_dir(out_dir) as staging:
        trace = staging / f"tasks.{fmt}"
        audit_path = staging / "audit.jsonl"
        with open(audit_path, "w") as audit_file:  # streamed: memory stays flat in the horizon
            simulation = build_simulation(cfg, scenario, policy, seed, n_tasks, trace, policy_overrides, plugins,
                                          progress, lambda rec: audit_file.write(json.dumps(rec, sort_keys=True) + "\n"),
                                          inputs=inputs)
            simulation.run()
        if audit_path.stat().st_size == 0:
            audit_path.unlink()
        summary = summarize(simulation, cfg, seed, inputs.workload)
        wall = summary.pop("wall_s")
        check_run_summary(summary, Path(out_dir) / "summary.json")
        write_json_atomic(staging / "summary.json", summary)
        write_json_atomic(staging / "timing.json", {"wall_s": wall, "tasks_per_s": summary["n_tasks"] / max(wall, 1e-9)})
    _warn_fallbacks(summary)
    summary["wall_s"] = wall
    return summary


def simulate_batch(cfg: dict[str, Any], scenario: str, policy: str, seeds: list[int], out_pattern: str,
                   n_tasks: int | None = None, trace_format: str | None = None,
                   policy_overrides: dict[str, Any] | None = None, plugins: tuple[str, ...] = (),
                   progress=None) -> list[dict[str, Any]]:
    """Run one cell for several seeds in this process, one output folder per seed.

    The cell's inputs are loaded once (:func:`load_run_inputs`); each seed then runs exactly as
    :func:`simulate` runs it alone, so a batched run and a one-at-a-time run write byte-identical
    files (tested). This is what one Snakemake ``simulate`` job does: starting Python and importing
    costs more than a 300-task simulation.

    Args:
        seeds: replicate seeds, run in the given order.
        out_pattern: output folder with a ``{seed}`` placeholder, e.g. ``runs/semantic/e3/rules/seed{seed}``.

    Returns:
        One summary dict per seed, in order.

    Raises:
        E3Error: ``out_pattern`` lacks ``{seed}``, duplicate seeds; and whatever :func:`simulate` raises.
    """
    from e3.batch import run_seeds

    return run_seeds(
        seeds, out_pattern,
        lambda: load_run_inputs(cfg, scenario, policy, policy_overrides, plugins, n_tasks),
        lambda inputs, seed, out: simulate(cfg, scenario, policy, seed, out, n_tasks, trace_format,
                                           policy_overrides, plugins, None, inputs=inputs),
        lambda s: (f"mean latency {s['latency_ms']['mean']:.1f} ms, stutter {100 * s['stutter_rate']:.2f} %, "
                   f"{s['wall_s']:.2f} s"),
        progress)


def reusable_summary(folder: str | Path, cfg_hash: str, scenario: str, policy: str, controller: str,
                     seed: int) -> dict[str, Any] | None:
    """The summary.json of a finished run in ``folder`` when it is this run: the same config hash
    (``cfg_hash``, :func:`e3.config.config_hash` of the run's config), scenario, policy, controller
    ('none' for a policy without one), seed and :func:`versions`; None when the file is missing or
    any of these differ.
    The operating-point study reads the runs its default point shares with the main sweep this
    way instead of simulating them again (issue 11).

    Raises:
        InputError: the file exists but is not a JSON object.
    """
    path = Path(folder) / "summary.json"
    if not path.is_file():
        return None
    try:
        s = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from None
    if not isinstance(s, dict):
        raise InputError(f"{path}: not a JSON object")
    ctl = (s.get("policy_summary") or {}).get("controller", "none")
    same = (s.get("config_hash") == cfg_hash and s.get("scenario") == scenario and s.get("policy") == policy
            and ctl == controller and s.get("seed") == seed and s.get("versions") == versions())
    return s if same else None


def simulate_summaries(cfg: dict[str, Any], scenario: str, policy: str, seeds: list[int],
                       policy_overrides: dict[str, Any] | None = None, plugins: tuple[str, ...] = (),
                       n_tasks: int | None = None) -> list[dict[str, Any]]:
    """Run one cell for several seeds and return their summaries, writing no files.

    Each seed runs as :func:`simulate` runs it, with two differences that change no figure: the
    trace keeps only its latency column in memory (:class:`e3.sim.trace.LatencyColumn`, the
    values the trace file would hold), and audit records are dropped as they come. So the
    summaries equal those of separate ``e3 simulate`` runs (tested, ``wall_s`` aside). Studies
    that read only summaries (the operating points) batch their runs this way.

    Returns:
        One summary dict per seed, in order (``wall_s`` included).
    """
    inputs = load_run_inputs(cfg, scenario, policy, policy_overrides, plugins, n_tasks)
    out = []
    for seed in seeds:
        simulation = build_simulation(cfg, scenario, policy, seed, n_tasks, None, policy_overrides, plugins,
                                      None, lambda rec: None, inputs=inputs)
        simulation.run()
        summary = summarize(simulation, cfg, seed, inputs.workload)
        _warn_fallbacks(summary)
        out.append(summary)
    return out
