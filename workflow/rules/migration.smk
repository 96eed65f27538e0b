# The third seed system (issue 15): placing and migrating LLM agents across edge servers as users
# move (AntLLM), on the placement engine (e3/sim/placement.py). Its own target,
# `snakemake --cores 8 migration`; the outputs are frozen results (results/tables/migration.*,
# results/figures/fig10_migration.*, results/migration_comparison.md).
rule migration_config:
    output:
        MIGRATION_CONFIG,
    params:
        # placement.sweep only decides which runs exist: leaving it out re-runs nothing when it grows
        config={
            **{k: v for k, v in config.items() if k not in ("sweep", "scale", "fairness", "placement")},
            "placement": {k: v for k, v in config["placement"].items() if k != "sweep"},
        },
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=500,
        cpus_per_task=1,
    log:
        "logs/migration_config.log",
    benchmark:
        "logs/benchmarks/migration_config.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the agent placement system's effective configuration"
    script:
        "../scripts/write_config.py"


# One job per (scenario, policy, controller) cell runs all its seeds in one process (inputs loaded
# once), as the E3 sweep's batches do (`e3 simulate --seeds`).
rule simulate_migration:
    input:
        config=MIGRATION_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/agents/{scenario}.yaml",
        llm=llm_responses,
    output:
        summaries=expand(
            f"{MIGRATION_RUNS}/summary.json", seed=config["placement"]["sweep"]["seeds"], allow_missing=True
        ),
    params:
        out=lambda wc: MIGRATION_RUNS.format(seed="{seed}", **wc),
        seeds=" ".join(str(s) for s in config["placement"]["sweep"]["seeds"]),
    resources:
        runtime=120,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/placement/{scenario}/{policy}/{controller}.log",
    benchmark:
        "logs/benchmarks/placement/{scenario}/{policy}/{controller}.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Agent placement: {wildcards.scenario}, {wildcards.policy} ({wildcards.controller}), seeds {params.seeds}"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --seeds {params.seeds} --out '{params.out}' > {log} 2>&1"


rule migration_results:
    input:
        summaries=migration_runs(),
    output:
        csv=MIGRATION_OUTPUTS[0],
        md=MIGRATION_OUTPUTS[1],
        tex=MIGRATION_OUTPUTS[2],
        png=MIGRATION_OUTPUTS[3],
        pdf=MIGRATION_OUTPUTS[4],
        comparison=MIGRATION_OUTPUTS[5],
    params:
        placement=config["placement"],
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/migration_results.log",
    benchmark:
        "logs/benchmarks/migration_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the migration table, Fig. 10 and the comparison with the reported claims"
    script:
        "../scripts/migration.py"


rule migration:
    input:
        rules.migration_results.output,
