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
        # fairness.smk and migration.smk: E3 runs never read them)
        config={k: v for k, v in config.items()
                if k not in ("sweep", "scale", "traces", "traces_mirror", "fairness", "placement")},
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
# - sweep.batch_by: scenario (the default): one job runs every non-llm cell of a sweep scenario
#   for a shard of seeds (`e3 simulate --cells --seeds`); adding a cell re-runs the scenario's job.
# - per cell (batch_by: cell, llm-controller cells, and scenarios outside the sweep such as the
#   trace results'): one job runs a cell for a shard of seeds (`e3 simulate --seeds`).
# Shards hold `sweep.batch_size` seeds (null: all). A rule per shard: an output list must be known
# when the rule is defined.
if batch_by() == "scenario" and scenario_batch_cells():
    for _shard_index, _shard in [(i, seeds) for kind, i, seeds in seed_shards() if kind == "other"]:

        rule:
            name:
                f"simulate_scenario_batch{_shard_index}"
            input:
                config=EFFECTIVE_CONFIG,
                priors=config["priors"]["frozen"],
                scenario="config/scenarios/{scenario}.yaml",
                trace_file=scenario_trace_file,
            output:
                summaries=[RUNS.format(scenario="{scenario}", policy=p, controller=c, seed=s) + "/summary.json"
                           for p, c in scenario_batch_cells() for s in _shard],
                traces=[RUNS.format(scenario="{scenario}", policy=p, controller=c, seed=s) + "/tasks.parquet"
                        for p, c in scenario_batch_cells() for s in _shard],
            params:
                out=scenario_batch_out_pattern,
                cells=" ".join(f"{p}:{c}" for p, c in scenario_batch_cells()),
                seeds=" ".join(str(s) for s in _shard),
                plugins=plugin_args,
            resources:
                runtime=60,  # minutes (SLURM time limit)
                mem_mb=2000,
                cpus_per_task=1,
            log:
                f"logs/simulate/{{scenario}}/batch{_shard_index}.log",
            benchmark:
                f"logs/benchmarks/simulate/{{scenario}}/batch{_shard_index}.tsv"
            wildcard_constraints:
                scenario=SCENARIO_CONSTRAINT["scenario"],
            conda:
                "../envs/e3.yaml"
            message:
                "Simulating {wildcards.scenario}: every non-llm cell, seeds {params.seeds}"
            shell:
                "e3 simulate --config {input.config} --scenario {wildcards.scenario} --cells {params.cells} "
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
            scenario=SCENARIO_CONSTRAINT["cell"] if _kind == "other" else "[a-z0-9_]+",
        conda:
            "../envs/e3.yaml"
        message:
            "Simulating {wildcards.scenario} with {wildcards.policy} ({wildcards.controller}), seeds {params.seeds}"
        shell:
            "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
            "--controller {wildcards.controller} --seeds {params.seeds} {params.plugins} "
            "--format parquet --out '{params.out}' > {log} 2>&1"
