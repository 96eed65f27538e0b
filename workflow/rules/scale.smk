# The scale study (issue 11): generated pools of config scale.devices, its own target
# (`snakemake --cores 8 scale`), so the default target stays the paper's evaluation.
rule simulate_scale:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/scenarios/{scenario}.yaml",
    output:
        summaries=expand(f"{SCALE_RUNS}/summary.json", seed=config["scale"]["seeds"], allow_missing=True),
    params:
        out=lambda wc: SCALE_RUNS.format(seed="{seed}", **wc),
        seeds=" ".join(str(s) for s in config["scale"]["seeds"]),
        tasks=lambda wc: scale_horizon(wc.devices),
    resources:
        runtime=120,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/scale/{devices}/{scenario}/{policy}/{controller}.log",
    benchmark:
        "logs/benchmarks/scale/{devices}/{scenario}/{policy}/{controller}.tsv"
    wildcard_constraints:
        devices=r"\d+",
    conda:
        "../envs/e3.yaml"
    message:
        "Scale study: {wildcards.devices} devices, {wildcards.scenario}, {wildcards.policy} ({wildcards.controller})"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --devices {wildcards.devices} --tasks {params.tasks} "
        "--seeds {params.seeds} --format parquet --out '{params.out}' > {log} 2>&1"


rule scale_results:
    input:
        summaries=scale_runs(),
    output:
        csv="results/tables/scale.csv",
        md="results/tables/scale.md",
        tex="results/tables/scale.tex",
        png=report("results/figures/fig7_scale.png", caption="../report/fig7.rst", category="Figures"),
        pdf="results/figures/fig7_scale.pdf",
    params:
        cells=config["scale"]["cells"],
        scenarios=config["scale"]["scenarios"],
        sizes=config["scale"]["devices"],
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/scale_results.log",
    benchmark:
        "logs/benchmarks/scale_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the scale table and Fig. 7"
    script:
        "../scripts/scale.py"


rule scale:
    input:
        rules.scale_results.output,
