# Baselines run by your own command (issue 32, item 4; docs/external-baselines.md). Each entry of
# `external.baselines` in the config names a system (fairness or placement) and a shell command in
# any language or container; it runs once per scenario and seed of that system's sweep, writes
# {out}/summary.json in the run-summary schema (e3/schemas/run_summary.schema.yaml), and its runs
# join the system's table, figure and comparison as one more cell (common.smk: external_cells).
# `e3 check-summary` refuses a run the tables could not use, naming the file and the field.
import shlex

EXTERNAL_RUNS = {"fairness": FAIRNESS_RUNS, "placement": MIGRATION_RUNS}


def _external_script(b, runs):
    """The shell script of one external baseline: its command per (scenario, seed), then the check."""
    lines = ["set -e"]
    for sc, seed, out in runs:
        cmd = b["command"].format(scenario=shlex.quote(sc), seed=seed, out=shlex.quote(out))
        lines.append(f"echo '[external] {b['name']} {sc} seed {seed}'")
        lines.append(cmd)
    outs = " ".join(shlex.quote(f"{out}/summary.json") for _, _, out in runs)
    lines.append(f"e3 check-summary --system {b['system']} --policy {shlex.quote(b['name'])} "
                 f"--controller {shlex.quote(b.get('controller', 'none'))} {outs}")
    # Snakemake formats the shell string: the user's braces must reach bash as written
    return "\n".join(lines).replace("{", "{{").replace("}", "}}")


for _b in config.get("external", {}).get("baselines", []):
    _sweep = config[_b["system"]]["sweep"]
    _runs = [(sc, seed, EXTERNAL_RUNS[_b["system"]].format(scenario=sc, policy=_b["name"],
                                                            controller=_b.get("controller", "none"), seed=seed))
             for sc in _sweep["scenarios"] for seed in _sweep["seeds"]]

    rule:
        name:
            f"external_{_b['system']}_{_b['name']}"
        input:
            _b.get("inputs", []),
        output:
            summaries=[f"{out}/summary.json" for _, _, out in _runs],
        resources:
            runtime=120,  # minutes (SLURM time limit)
            mem_mb=2000,
            cpus_per_task=1,
        log:
            f"logs/external/{_b['system']}/{_b['name']}.log",
        benchmark:
            f"logs/benchmarks/external/{_b['system']}/{_b['name']}.tsv"
        conda:
            # e3 check-summary runs in e3's environment; the command brings its own (a container...)
            "../envs/e3.yaml"
        message:
            f"External {_b['system']} baseline {_b['name']}: {len(_runs)} runs by its own command"
        shell:
            f"(\n{_external_script(_b, _runs)}\n) > {{log}} 2>&1"
