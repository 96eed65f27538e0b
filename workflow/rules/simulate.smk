# Simulation stage: batches of runs, one folder per (scenario, policy, controller, seed). Adding a
# policy or a scenario is a config edit (sweep.cells / sweep.scenarios); no rule changes.


rule effective_config:
    output:
        EFFECTIVE_CONFIG,
    params:
        # the validated, default-filled config minus `sweep` and `scale`: a change re-runs every
        # simulation, but these only decide which runs exist, so adding a seed or a cell re-runs
        # nothing (nor do `traces`/`traces_mirror`: where trace files come from, not how runs
        # behave; `fairness` and `placement` are the second and third systems' sections,
        # fairness.smk and migration.smk: E3 runs never read them; `attribution` and `agents` are
        # studies' grids, like `sweep`)
        config={k: v for k, v in config.items()
                if k not in ("sweep", "scale", "traces", "traces_mirror", "fairness", "placement", "attribution", "agents", "external")},
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=500,
        cpus_per_task=1,
    log:
        "logs/effective_config.log",
    benchmark:
        "logs/benchmarks/effective_config.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the effective (validated, default-filled) configuration"
    script:
        "../scripts/write_config.py"


# One job simulates a batch, in one process that loads config, priors and pool once: starting
# Python and importing (~1.3 s of CPU) costs more than a 300-task run, and Snakemake ignores
# `group:` when executing locally, so batching is done here. Outputs stay one folder per run.
# - sweep.batch_by: scenario (the default): one job runs a part of the non-llm cells of a sweep
#   scenario (at most SCENARIO_BATCH_MAX_OUTPUTS outputs, common.smk) for a shard of seeds
#   (`e3 simulate --cells --seeds`); adding a cell re-runs that scenario's jobs.
# - per cell (batch_by: cell, llm-controller cells, and scenarios outside the sweep such as the
#   trace results'): one job runs a cell for a shard of seeds (`e3 simulate --seeds`).
# Shards hold `sweep.batch_size` seeds (null: all). A rule per shard: an output list must be known
# when the rule is defined.
if batch_by() == "scenario":
    for _sc in config["sweep"]["scenarios"]:
        for _shard_index, _shard in [(i, seeds) for kind, i, seeds in seed_shards() if kind == "other"]:
            for _part, _cells in enumerate(scenario_cell_parts(len(_shard))):

                rule:
                    name:
                        f"simulate_{_sc}_part{_part}_batch{_shard_index}"
                    input:
                        config=EFFECTIVE_CONFIG,
                        priors=config["priors"]["frozen"],
                        scenario=f"config/scenarios/{_sc}.yaml",
                        trace_file=list(_scenario_trace_path(_sc)),
                    output:
                        summaries=[f"{RUNS}/summary.json".format(scenario=_sc, policy=p, controller=c, seed=s)
                                   for p, c in _cells for s in _shard],
                        traces=[f"{RUNS}/tasks.parquet".format(scenario=_sc, policy=p, controller=c, seed=s)
                                for p, c in _cells for s in _shard],
                    params:
                        # loop variables only in directives read when the rule is defined; `shell`
                        # and `message` are read at run time, when they hold the last values
                        scenario=_sc,
                        # a function: Snakemake would expand the placeholders of a string
                        out=lambda wc, sc=_sc: RUNS.format(scenario=sc, policy="{policy}", controller="{controller}",
                                                           seed="{seed}"),
                        cells=" ".join(f"{p}:{c}" for p, c in _cells),
                        seeds=" ".join(str(s) for s in _shard),
                        plugins=plugin_args,
                    resources:
                        runtime=60,  # minutes (SLURM time limit)
                        mem_mb=2000,
                        cpus_per_task=1,
                    log:
                        f"logs/simulate/{_sc}/part{_part}_batch{_shard_index}.log",
                    benchmark:
                        f"logs/benchmarks/simulate/{_sc}/part{_part}_batch{_shard_index}.tsv"
                    conda:
                        "../envs/e3.yaml"
                    message:
                        "Simulating {params.scenario}: {params.cells}, seeds {params.seeds}"
                    shell:
                        "e3 simulate --config {input.config} --scenario {params.scenario} --cells {params.cells} "
                        "--seeds {params.seeds} {params.plugins} --format parquet --out '{params.out}' > {log} 2>&1"


for _kind, _shard_index, _shard in seed_shards():

    rule:
        name:
            f"simulate_{_kind}_batch{_shard_index}"
        input:
            config=EFFECTIVE_CONFIG,
            priors=config["priors"]["frozen"],
            scenario="config/scenarios/{scenario}.yaml",
            llm=llm_responses,
            trace_file=scenario_trace_file,
        output:
            summaries=expand(f"{RUNS}/summary.json", seed=_shard, allow_missing=True),
            traces=expand(f"{RUNS}/tasks.parquet", seed=_shard, allow_missing=True),
        params:
            out=batch_out_pattern,
            seeds=" ".join(str(s) for s in _shard),
            plugins=plugin_args,
        resources:
            runtime=60,  # minutes (SLURM time limit)
            mem_mb=2000,
            cpus_per_task=1,
        log:
            f"logs/simulate/{{scenario}}/{{policy}}/{{controller}}/batch{_shard_index}.log",
        benchmark:
            f"logs/benchmarks/simulate/{{scenario}}/{{policy}}/{{controller}}/batch{_shard_index}.tsv"
        wildcard_constraints:
            controller=CONTROLLER_CONSTRAINT[_kind],
            scenario=PER_CELL_SCENARIO if _kind == "other" else "[a-z0-9_]+",
        conda:
            "../envs/e3.yaml"
        message:
            "Simulating {wildcards.scenario} with {wildcards.policy} ({wildcards.controller}), seeds {params.seeds}"
        shell:
            "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
            "--controller {wildcards.controller} --seeds {params.seeds} {params.plugins} "
            "--format parquet --out '{params.out}' > {log} 2>&1"
