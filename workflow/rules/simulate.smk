# Simulation stage: one job per (scenario, policy, controller, seed). Adding a policy or a
# scenario is a config edit (sweep.cells / sweep.scenarios); no rule changes.


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


# One job simulates a batch: the seeds of one (scenario, policy, controller) cell, or a shard of
# `sweep.batch_size` of them, in one process that loads config, priors, pool and scenario once
# (`e3 simulate --seeds`). Starting Python costs more than a 300-task run, and Snakemake ignores
# `group:` when executing locally, so batching is done here. Outputs stay one folder per run.
# A rule per shard: an output list must be known when the rule is defined.
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
        conda:
            "../envs/e3.yaml"
        message:
            "Simulating {wildcards.scenario} with {wildcards.policy} ({wildcards.controller}), seeds {params.seeds}"
        shell:
            "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
            "--controller {wildcards.controller} --seeds {params.seeds} {params.plugins} "
            "--format parquet --out '{params.out}' > {log} 2>&1"
