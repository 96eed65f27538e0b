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


def seed_shards():
    """(kind, index, seeds) of every simulation batch: kind 'llm' for llm-controller cells
    (sweep.llm_seeds), 'other' for the rest (sweep.seeds); batches of sweep.batch_size seeds
    (null: all seeds of a cell in one job)."""
    out = []
    for kind, seeds in (("other", config["sweep"]["seeds"]), ("llm", config["sweep"]["llm_seeds"])):
        size = config["sweep"].get("batch_size") or max(1, len(seeds))
        out += [(kind, i, seeds[j : j + size]) for i, j in enumerate(range(0, len(seeds), size))]
    return out


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


# --- the fairness system (issue 14) -------------------------------------------------------
FAIRNESS_RUNS = "resources/fairness/{scenario}/{policy}/{controller}/seed{seed}"
FAIRNESS_CONFIG = "resources/config/fairness_effective.yaml"
FAIRNESS_OUTPUTS = [
    f"results/tables/fairness.{ext}" for ext in ("csv", "md", "tex")
] + [f"results/figures/fig9_fairness.{ext}" for ext in ("png", "pdf")] + ["results/fairness_comparison.md"]


def fairness_runs():
    """summary.json of every fairness run: scenarios x cells x seeds of fairness.sweep."""
    s = config["fairness"]["sweep"]
    return [
        f"{FAIRNESS_RUNS}/summary.json".format(
            scenario=sc, policy=c["policy"], controller=c.get("controller", "none"), seed=seed
        )
        for sc in s["scenarios"]
        for c in s["cells"]
        for seed in s["seeds"]
    ]


# --- the agent placement system (issue 15) ------------------------------------------------
MIGRATION_RUNS = "resources/placement/{scenario}/{policy}/{controller}/seed{seed}"
MIGRATION_CONFIG = "resources/config/placement_effective.yaml"
MIGRATION_OUTPUTS = [
    f"results/tables/migration.{ext}" for ext in ("csv", "md", "tex")
] + [f"results/figures/fig10_migration.{ext}" for ext in ("png", "pdf")] + ["results/migration_comparison.md"]


def migration_runs():
    """summary.json of every placement run: scenarios x cells x seeds of placement.sweep."""
    s = config["placement"]["sweep"]
    return [
        f"{MIGRATION_RUNS}/summary.json".format(
            scenario=sc, policy=c["policy"], controller=c.get("controller", "none"), seed=seed
        )
        for sc in s["scenarios"]
        for c in s["cells"]
        for seed in s["seeds"]
    ]
