# Shared helpers: config validation (before any rule runs) and named input/param functions.
import os

from snakemake.utils import validate

# The CLI validates with the same schema, so the two can never disagree.
validate(config, "../../e3/schemas/config.schema.yaml")


def mlperf_mirror_arg(wildcards):
    """`--mirror PATH` when a local MLPerf mirror is configured, else '' (download)."""
    mirror = (
        config.get("mlperf_mirror")
        or config["mlperf"].get("mirror")
        or os.environ.get("E3_MLPERF_MIRROR")
    )
    return f"--mirror {mirror}" if mirror else ""


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


def llm_responses(wildcards):
    """The committed LLM responses, an input of llm-controller runs only."""
    return [config["controllers"]["llm"]["frozen"]] if wildcards.controller == "llm" else []


def plugin_args(wildcards=None):
    return " ".join(f"--plugin {p}" for p in config["sweep"]["plugins"])


EFFECTIVE_CONFIG = "resources/config/effective.yaml"


# --- trace workloads (issue 12; rules in traces.smk) -----------------------------------------
def traces_mirror_arg(wildcards):
    """`--mirror PATH` when a local traces mirror is configured, else '' (download)."""
    mirror = (
        config.get("traces_mirror")
        or (config.get("traces") or {}).get("mirror")
        or os.environ.get("E3_TRACES_MIRROR")
    )
    return f"--mirror {mirror}" if mirror else ""


def scenario_trace_file(wildcards):
    """The trace file a scenario replays (its `workload.trace.path`), or [] for the others, so
    that a trace scenario's simulations wait for `fetch_traces`."""
    import yaml

    path = f"config/scenarios/{wildcards.scenario}.yaml"
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as fh:
        sc = yaml.safe_load(fh) or {}
    trace = (sc.get("workload") or {}).get("trace") or {}
    return [trace["path"]] if trace.get("path") else []


TRACE_SCENARIOS = ["azure_conv", "azure_code"]


def trace_cells():
    """Cells of the trace results: the sweep's cells but the llm controller's (not recorded)."""
    return [c for c in config["sweep"]["cells"] if c.get("controller", "none") != "llm"]


def trace_run_summaries():
    """summary.json of every trace run: `traces.scenarios` (default azure_conv, azure_code) x
    trace_cells() x sweep.seeds, in the simulate rule's layout (the config's pool)."""
    scenarios = (config.get("traces") or {}).get("scenarios", TRACE_SCENARIOS)
    return [
        f"{RUNS}/summary.json".format(scenario=sc, policy=c["policy"], controller=c.get("controller", "none"), seed=s)
        for sc in scenarios
        for c in trace_cells()
        for s in config["sweep"]["seeds"]
    ]
