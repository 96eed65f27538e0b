# The second seed system (issue 14): latency- and fairness-aware multi-model edge inference on
# the serving engine (e3/sim/serving.py). Its own target, `snakemake --cores 8 fairness`; the
# outputs are frozen results (results/tables/fairness.*, results/figures/fig9_fairness.*).
rule fairness_config:
    output:
        FAIRNESS_CONFIG,
    params:
        # fairness.sweep only decides which runs exist: leaving it out re-runs nothing when it grows
        config={
            **{k: v for k, v in config.items() if k not in ("sweep", "scale", "fairness", "placement")},
            "fairness": {k: v for k, v in config["fairness"].items() if k != "sweep"},
        },
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=500,
        cpus_per_task=1,
    log:
        "logs/fairness_config.log",
    benchmark:
        "logs/benchmarks/fairness_config.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the fairness system's effective configuration"
    script:
        "../scripts/write_config.py"


# One job per (scenario, policy, controller) cell runs all its seeds in one process (inputs,
# priors and the best static plan loaded once), as the E3 sweep's batches do.
rule simulate_fairness:
    input:
        config=FAIRNESS_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/fairness/{scenario}.yaml",
    output:
        summaries=expand(
            f"{FAIRNESS_RUNS}/summary.json", seed=config["fairness"]["sweep"]["seeds"], allow_missing=True
        ),
    params:
        out=lambda wc: FAIRNESS_RUNS.format(seed="{seed}", **wc),
        seeds=" ".join(str(s) for s in config["fairness"]["sweep"]["seeds"]),
    resources:
        runtime=120,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/fairness/{scenario}/{policy}/{controller}.log",
    benchmark:
        "logs/benchmarks/fairness/{scenario}/{policy}/{controller}.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Fairness system: {wildcards.scenario}, {wildcards.policy} ({wildcards.controller}), seeds {params.seeds}"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --seeds {params.seeds} --out '{params.out}' > {log} 2>&1"


rule fairness_results:
    input:
        summaries=fairness_runs(),
    output:
        csv=FAIRNESS_OUTPUTS[0],
        md=FAIRNESS_OUTPUTS[1],
        tex=FAIRNESS_OUTPUTS[2],
        png=FAIRNESS_OUTPUTS[3],
        pdf=FAIRNESS_OUTPUTS[4],
        comparison=FAIRNESS_OUTPUTS[5],
    params:
        fairness=config["fairness"],
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/fairness_results.log",
    benchmark:
        "logs/benchmarks/fairness_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the fairness table, Fig. 9 and the paper comparison"
    script:
        "../scripts/fairness.py"


rule fairness:
    input:
        rules.fairness_results.output,
