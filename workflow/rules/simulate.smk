# Simulation stage: one job per (scenario, policy, controller, seed). Adding a policy or a
# scenario is a config edit (sweep.cells / sweep.scenarios); no rule changes.


rule effective_config:
    output:
        EFFECTIVE_CONFIG,
    params:
        # the validated, default-filled config minus `sweep`: a change re-runs every simulation,
        # but the sweep only decides which runs exist, so adding a seed or a cell re-runs nothing
        # (nor do `traces`/`traces_mirror`: where trace files come from, not how runs behave)
        config={k: v for k, v in config.items() if k not in ("sweep", "traces", "traces_mirror")},
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


rule simulate:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/scenarios/{scenario}.yaml",
        llm=llm_responses,
        trace_file=scenario_trace_file,
    output:
        summary="resources/runs/{scenario}/{policy}/{controller}/seed{seed}/summary.json",
        trace="resources/runs/{scenario}/{policy}/{controller}/seed{seed}/tasks.parquet",
    params:
        out=lambda wc, output: os.path.dirname(output.summary),
        plugins=plugin_args,
    log:
        "logs/simulate/{scenario}/{policy}/{controller}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/simulate/{scenario}/{policy}/{controller}/seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    conda:
        "../envs/e3.yaml"
    message:
        "Simulating {wildcards.scenario} with {wildcards.policy} ({wildcards.controller}), seed {wildcards.seed}"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --seed {wildcards.seed} {params.plugins} "
        "--format parquet --out {params.out} > {log} 2>&1"
