# Shared helpers: config validation (before any rule runs) and named input/param functions.
import functools
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from e3.checks import check_sweep
from e3.config import load_schema, validate as validate_config
from e3.mirrors import mlperf_mirror, traces_mirror
from e3.errors import E3Error

CONFIG_SOURCE = "config (config/config.yaml and any --configfile)"
try:
    # The CLI's validator and schema (defaults filled in place, NaN refused by field name), so the
    # two can never disagree and errors read the same.
    validate_config(config, load_schema("config.schema.yaml"), CONFIG_SOURCE)
    # Every name in the sweep must match something before the DAG exists: a missing scenario
    # file would otherwise drop its jobs silently when committed outputs are present (issue 13).
    check_sweep(config, root=".", source=CONFIG_SOURCE)
except E3Error as exc:
    raise WorkflowError(f"the config does not check out, nothing was run: {exc}") from None


def oversubscription_note(cores, cpus):
    """The note printed at start when local `--cores` exceeds the CPUs this process may use, or
    None. More simultaneous jobs than CPUs cost CPU time here (benchmarks/PROFILE.md, "The whole
    run, job by job": on 2 CPUs, `--cores 2` took 5-10 % less than `--cores 8`); the run goes on
    with what was asked."""
    if cores is None or cores <= cpus:
        return None
    return (f"e3: note: --cores {cores} runs up to {cores} jobs at once on {cpus} CPUs; "
            f"--cores {cpus} is usually faster on this machine (same results)")


onstart:
    try:
        _cores = workflow.cores if workflow.local_exec else None
    except WorkflowError:  # no --cores given (e.g. --jobs on a cluster)
        _cores = None
    _cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if (_note := oversubscription_note(_cores, _cpus)) is not None:
        print(_note, file=sys.stderr)


def mlperf_mirror_arg(wildcards):
    """`--mirror PATH` when a local MLPerf mirror is configured, else '' (download)."""
    mirror = mlperf_mirror(config)
    return f"--mirror {mirror}" if mirror else ""


def mlperf_mirror_sha256(wildcards):
    """Content hash of the mirror's selected rounds ('' when downloading): a param of
    fetch_mlperf, so a changed mirror re-runs the refresh."""
    from e3.mlperf.fetch import mirror_digest

    return mirror_digest(mlperf_mirror(config), config["mlperf"]["rounds"])


REFRESH_REPORT = "resources/priors/refresh_report.txt"


def mlperf_selection_args(wildcards):
    """`--rounds ... --benchmarks ...` from the validated config."""
    return "--rounds {} --benchmarks {}".format(
        " ".join(config["mlperf"]["rounds"]), " ".join(config["mlperf"]["benchmarks"])
    )


# --- the sweep (issue 5) ---------------------------------------------------------------------
RUNS = "resources/runs/{scenario}/{policy}/{controller}/seed{seed}"


def sweep_cells(table=None):
    """(policy, controller) cells of the config's sweep, optionally of one table."""
    return [
        (c["policy"], c.get("controller", "none"))
        for c in config["sweep"]["cells"]
        if table is None or c.get("table", "main") == table
    ]


def cell_seeds(controller):
    """Seeds of a cell: sweep.llm_seeds for the llm controller, sweep.seeds otherwise."""
    return config["sweep"]["llm_seeds"] if controller == "llm" else config["sweep"]["seeds"]


def sweep_runs(kind, table=None):
    """Paths of `kind` (summary.json or tasks.parquet) of every run of the sweep, in a fixed order."""
    return [
        f"{RUNS}/{kind}".format(scenario=sc, policy=p, controller=c, seed=s)
        for sc in config["sweep"]["scenarios"]
        for p, c in sweep_cells(table)
        for s in cell_seeds(c)
    ]


def llm_rules_seeds():
    """Seeds run by both the e3/llm and the e3/rules cells (the llm-vs-rules comparison)."""
    return [s for s in config["sweep"]["llm_seeds"] if s in config["sweep"]["seeds"]]


def llm_rules_runs(name):
    """Paths of file `name` of every e3/llm and e3/rules run of those seeds, in a fixed order."""
    return [
        f"{RUNS}/{name}".format(scenario=sc, policy="e3", controller=c, seed=s)
        for sc in config["sweep"]["scenarios"]
        for c in ("llm", "rules")
        for s in llm_rules_seeds()
    ]


def seed_shards():
    """(kind, index, seeds) of every simulation batch: kind 'llm' for llm-controller cells
    (sweep.llm_seeds), 'other' for the rest (sweep.seeds); batches of sweep.batch_size seeds
    (null: all seeds of a cell in one job)."""
    out = []
    for kind, seeds in (("other", config["sweep"]["seeds"]), ("llm", config["sweep"]["llm_seeds"])):
        size = config["sweep"].get("batch_size") or max(1, len(seeds))
        out += [(kind, i, seeds[j : j + size]) for i, j in enumerate(range(0, len(seeds), size))]
    return out


def batch_by():
    """sweep.batch_by: 'scenario' (absent: the default) runs the non-llm cells of each sweep
    scenario in parts (scenario_cell_parts), one job per part and seed shard; 'cell' runs one job
    per (scenario, policy, controller) cell and seed shard."""
    return config["sweep"].get("batch_by") or "scenario"


def scenario_batch_cells():
    """The non-llm (policy, controller) cells the scenario batch jobs run, in sweep order."""
    return [(p, c) for p, c in sweep_cells() if c != "llm"]


# Snakemake keeps the metadata records it reads in a functools.lru_cache of 128 entries: a job
# with more output files than that makes every re-run re-read each record from disk (measured: a
# no-op re-run went from 3.6 s to 4.5 s with 280 outputs per job). A batch job writes at most this
# many outputs...
SCENARIO_BATCH_MAX_OUTPUTS = 120
# ... and runs at most this many cells: about three jobs per scenario keep the 8 job slots busy on
# 2 cores until the end of the run, where one long job would leave a core idle.
MAX_CELLS_PER_JOB = 5


def cell_parts(cells, files_per_cell):
    """`cells` split into consecutive, nearly equal parts, one batch job each: at most
    MAX_CELLS_PER_JOB cells and SCENARIO_BATCH_MAX_OUTPUTS output files (`files_per_cell` each),
    but always at least one cell per part (a cell with more files gets a part of its own).
    No cells, no parts."""
    if not cells:
        return []
    per_job = max(1, min(MAX_CELLS_PER_JOB, SCENARIO_BATCH_MAX_OUTPUTS // files_per_cell))
    n_parts = -(-len(cells) // per_job)
    bounds = [round(i * len(cells) / n_parts) for i in range(n_parts + 1)]
    return [cells[a:b] for a, b in zip(bounds, bounds[1:])]


def scenario_cell_parts(shard_size):
    """The E3 sweep's non-llm cells in parts, one job each per (sweep scenario, seed shard of
    `shard_size` seeds; two files per run)."""
    return cell_parts(scenario_batch_cells(), 2 * shard_size)


# A sweep scenario's non-llm runs belong to its scenario batch jobs (one rule each, outputs named
# in full, so Snakemake's output lookup is exact); any other scenario's runs (the trace results'
# scenarios) to the per-cell jobs. Scenario names are [a-z0-9_]+ (config schema).
SWEEP_SCENARIOS = "|".join(re.escape(s) for s in config["sweep"]["scenarios"])
PER_CELL_SCENARIO = f"(?!(?:{SWEEP_SCENARIOS})/)[a-z0-9_]+" if batch_by() == "scenario" else "[a-z0-9_]+"


def batch_out_pattern(wildcards):
    """The run folder of a cell with a literal '{seed}' left in: `e3 simulate --seeds --out`."""
    return RUNS.format(seed="{seed}", **wildcards)


# Which controller wildcard each kind of batch rule matches (llm cells replay their own seeds).
CONTROLLER_CONSTRAINT = {"llm": "llm", "other": "(?!llm/)[a-z0-9_]+"}


def llm_responses(wildcards):
    """The committed LLM responses, an input of llm-controller runs only."""
    return [config["controllers"]["llm"]["frozen"]] if wildcards.controller == "llm" else []


def plugin_args(wildcards=None):
    return " ".join(f"--plugin {p}" for p in config["sweep"]["plugins"])


EFFECTIVE_CONFIG = "resources/config/effective.yaml"


# --- the operating-point study (issue 10; workflow/rules/operating_points.smk) ------------------
from e3.analysis.op_grid import point_sets, sets_leave_config_unchanged, study_shards

OP_SHARD = "resources/operating_points/{study}/{point}/{scenario}.jsonl"
# Laid out once: the config is fixed once parsed, and the input and params functions below are
# called for every job of the DAG (recomputing the grid each time made up most of a no-op re-run).
_OP_SHARDS = (
    {(sh["study"], sh["point"], sh["scenario"]): sh
     for sh in study_shards(config["sweep"]["operating_points"], config["sweep"]["cells"])}
    if config["sweep"].get("operating_points") else {}
)


def op_shards(wildcards=None):
    """JSONL row files of every shard of the study, in a fixed order ([] when not configured)."""
    return [OP_SHARD.format(study=st, point=pt, scenario=sc) for st, pt, sc in _OP_SHARDS]


# One job per (study, point) runs its cells on each of the study's scenarios: the scenarios of a
# study are the same at every point (e3.analysis.op_grid.study_points), so a rule per study can
# name its outputs.
_OP_POINTS = {}
for (_st, _pt, _sc), _sh in _OP_SHARDS.items():
    _OP_POINTS.setdefault((_st, _pt), {"scenarios": [], "cells": _sh["cells"]})["scenarios"].append(_sc)
OP_STUDY_SCENARIOS = {}
for (_st, _pt), _p in _OP_POINTS.items():
    if OP_STUDY_SCENARIOS.setdefault(_st, _p["scenarios"]) != _p["scenarios"]:
        raise WorkflowError(f"operating points: study {_st!r} has other scenarios at point {_pt!r}")


_SWEEP_SUMMARIES = None


@functools.cache
def op_reuse_inputs(study, point):
    """Inputs that order one (study, point) job after the main sweep jobs whose runs it reads
    instead of simulating them, when the point runs the config as it is
    (e3.analysis.op_grid.sets_leave_config_unchanged, e.g. the rate study at
    workload.arrival_rate_per_s, the penalty study's ref); else none. One summary.json per
    (scenario, cell, seed shard) names each such job: a sweep job writes all its runs at once, and
    900 inputs instead of 84 cost a no-op re-run 3 %. The job itself reads every run folder, uses a
    summary only when its config hash, policy, controller, seed and versions match, and simulates
    any other run (`e3 operating-points --reuse-runs`)."""
    global _SWEEP_SUMMARIES
    p = _OP_POINTS.get((study, point))
    if p is None or not all(sets_leave_config_unchanged(config, point_sets(study, point, pol)) for pol, _ in p["cells"]):
        return []
    if _SWEEP_SUMMARIES is None:
        _SWEEP_SUMMARIES = set(sweep_runs("summary.json"))
    op_seeds = config["sweep"]["operating_points"]["seeds"]
    # the first of the study's seeds in each seed shard of the sweep (seed_shards)
    seeds = [next(x for x in shard if x in op_seeds) for kind, _, shard in seed_shards()
             if kind == "other" and any(x in op_seeds for x in shard)]
    paths = [f"{RUNS}/summary.json".format(scenario=sc, policy=pol, controller=ctl, seed=seed)
             for sc in p["scenarios"] for pol, ctl in p["cells"] for seed in seeds]
    return [x for x in paths if x in _SWEEP_SUMMARIES]


def op_reuse_arg(study, point):
    """`--reuse-runs PATTERN` for a job with op_reuse_inputs, else ''."""
    return f"--reuse-runs '{RUNS}'" if op_reuse_inputs(study, point) else ""


def op_cells_arg(study, point):
    """`POLICY:CONTROLLER ...` of one (study, point) of the study."""
    p = _OP_POINTS.get((study, point))
    if p is None:
        raise ValueError(f"no operating-point job {study}/{point}")
    return " ".join(f"{pol}:{ctl}" for pol, ctl in p["cells"])


# --- the scale study (issue 11) ----------------------------------------------------------
SCALE_RUNS = "resources/scale/{devices}/{scenario}/{policy}/{controller}/seed{seed}"


def scale_horizon(devices):
    """Tasks per run: the rule `every device sees work`, max(min_tasks, tasks_per_device * devices)."""
    s = config["scale"]
    return max(s["min_tasks"], s["tasks_per_device"] * int(devices))


def scale_runs():
    s = config["scale"]
    return [
        f"{SCALE_RUNS}/summary.json".format(
            devices=n, scenario=sc, policy=c["policy"], controller=c.get("controller", "none"), seed=seed
        )
        for n in s["devices"]
        for sc in s["scenarios"]
        for c in s["cells"]
        for seed in s["seeds"]
    ]


# --- trace workloads (issue 12; rules in traces.smk) -----------------------------------------
def traces_mirror_arg(wildcards):
    """`--mirror PATH` when a local traces mirror is configured, else '' (download)."""
    mirror = traces_mirror(config)
    return f"--mirror {mirror}" if mirror else ""


def scenario_trace_file(wildcards):
    """The trace file a scenario replays (its `workload.trace.path`), or [] for the others, so
    that a trace scenario's simulations wait for `fetch_traces`."""
    return list(_scenario_trace_path(wildcards.scenario))


@functools.lru_cache(maxsize=None)
def _scenario_trace_path(scenario):
    # Read once per scenario: every simulation job of the DAG asks (120 YAML parses were 0.75 s
    # of a no-op re-run).
    import yaml

    path = f"config/scenarios/{scenario}.yaml"
    if not os.path.isfile(path):
        return ()
    with open(path, encoding="utf-8") as fh:
        sc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    trace = (sc.get("workload") or {}).get("trace") or {}
    return (trace["path"],) if trace.get("path") else ()


TRACE_SCENARIOS = ["azure_conv", "azure_code"]


def trace_cells():
    """Cells of the trace results: the sweep's cells but the llm controller's (not recorded)."""
    return [c for c in config["sweep"]["cells"] if c.get("controller", "none") != "llm"]


TRACE_POOL_RUNS = "resources/trace_pools/{devices}/{scenario}/{policy}/{controller}/seed{seed}"


def trace_pool_sizes():
    """Generated pool sizes of the trace results (`traces.generated_devices`, default [16]); the
    config's named pool is always included, through the simulate rule's runs."""
    return list((config.get("traces") or {}).get("generated_devices", [16]))


def trace_run_summaries():
    """summary.json of every trace run: `traces.scenarios` (default azure_conv, azure_code) x
    trace_cells() x sweep.seeds, on the config's pool (the simulate rule's layout) and on each
    generated pool of trace_pool_sizes() (simulate_trace_pool's layout)."""
    scenarios = (config.get("traces") or {}).get("scenarios", TRACE_SCENARIOS)
    cells = [(c["policy"], c.get("controller", "none")) for c in trace_cells()]
    named = [
        f"{RUNS}/summary.json".format(scenario=sc, policy=p, controller=c, seed=s)
        for sc in scenarios
        for p, c in cells
        for s in config["sweep"]["seeds"]
    ]
    generated = [
        f"{TRACE_POOL_RUNS}/summary.json".format(devices=n, scenario=sc, policy=p, controller=c, seed=s)
        for n in trace_pool_sizes()
        for sc in scenarios
        for p, c in cells
        for s in config["sweep"]["seeds"]
    ]
    return named + generated


# The study tables the report cites when they exist (the operating-point, scale and trace studies
# have their own targets); a table that is missing gives placeholder macros, never a job.
REPORT_STUDIES = {
    "operating_points": "results/tables/operating_points.csv",
    "scale": "results/tables/scale.csv",
    "trace": "results/tables/trace.csv",
}


def existing_study_tables(wildcards):
    """Study tables the report takes as inputs: the operating points (in the default target, so it
    is built first). The scale and trace tables have their own targets and need their own data:
    the report reads them when present (params) but never makes the default target rebuild them;
    after refreshing one, run `snakemake -R paper_context`."""
    return [REPORT_STUDIES["operating_points"]]


# --- the fairness system (issue 14) -------------------------------------------------------
FAIRNESS_RUNS = "resources/fairness/{scenario}/{policy}/{controller}/seed{seed}"
FAIRNESS_CONFIG = "resources/config/fairness_effective.yaml"
FAIRNESS_OUTPUTS = [
    f"results/tables/fairness.{ext}" for ext in ("csv", "md", "tex")
] + [f"results/figures/fig9_fairness.{ext}" for ext in ("png", "pdf")] + ["results/fairness_comparison.md"]


def fairness_scenario_cells():
    """(policy, controller) cells of fairness.sweep, in order (every scenario runs them all)."""
    return [(c["policy"], c.get("controller", "none")) for c in config["fairness"]["sweep"]["cells"]]


def external_baselines(system):
    """external.baselines entries of ``system`` (runs written by the user's own command, issue 32)."""
    return [b for b in config.get("external", {}).get("baselines", []) if b["system"] == system]


def external_cells(system):
    """Table cells of ``system``'s external baselines, after the built-in ones."""
    return [{"policy": b["name"], "controller": b.get("controller", "none")} for b in external_baselines(system)]


def fairness_runs():
    """summary.json of every fairness run: scenarios x cells x seeds of fairness.sweep, and of every
    external fairness baseline."""
    s = config["fairness"]["sweep"]
    return [
        f"{FAIRNESS_RUNS}/summary.json".format(scenario=sc, policy=p, controller=c, seed=seed)
        for sc in s["scenarios"]
        for p, c in fairness_table_cells()
        for seed in s["seeds"]
    ]


def fairness_table_cells():
    """(policy, controller) cells of the fairness table: fairness.sweep's, then the external
    baselines' (every scenario holds them all)."""
    return fairness_scenario_cells() + [(c["policy"], c["controller"]) for c in external_cells("fairness")]


# --- the agent placement system (issue 15) ------------------------------------------------
MIGRATION_RUNS = "resources/placement/{scenario}/{policy}/{controller}/seed{seed}"
MIGRATION_CONFIG = "resources/config/placement_effective.yaml"
MIGRATION_OUTPUTS = [
    f"results/tables/migration.{ext}" for ext in ("csv", "md", "tex")
] + [f"results/figures/fig10_migration.{ext}" for ext in ("png", "pdf")] + ["results/migration_comparison.md"]


def migration_scenario_cells(scenario):
    """(policy, controller) cells of placement.sweep that run in `scenario`, in order (a cell with
    its own `scenarios` runs only those)."""
    s = config["placement"]["sweep"]
    return [(c["policy"], c.get("controller", "none")) for c in s["cells"]
            if scenario in c.get("scenarios", s["scenarios"])]


def migration_runs():
    """summary.json of every placement run: scenarios x cells x seeds of placement.sweep (a cell
    with its own `scenarios` runs only those)."""
    s = config["placement"]["sweep"]
    return [
        f"{MIGRATION_RUNS}/summary.json".format(scenario=sc, policy=p, controller=c, seed=seed)
        for sc in s["scenarios"]
        for p, c in migration_table_cells(sc)
        for seed in s["seeds"]
    ]


def migration_table_cells(scenario):
    """(policy, controller) cells of the placement table in `scenario`: placement.sweep's that run
    there, then the external baselines'."""
    return migration_scenario_cells(scenario) + [(c["policy"], c["controller"]) for c in external_cells("placement")]
