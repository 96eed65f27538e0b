# What each part of E3 earns (issue 28, deliverable 7): one component removed at a time from e3
# (rules controller) on the main regimes, config `attribution`; part of the default target.


rule attribution:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenarios=[f"config/scenarios/{sc}.yaml" for sc in config["attribution"]["scenarios"]],
    output:
        csv="results/tables/attribution.csv",
        md=report("results/tables/attribution.md", category="Tables"),
        tex="results/tables/attribution.tex",
    resources:
        runtime=30,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/attribution.log",
    benchmark:
        "logs/benchmarks/attribution.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Attribution: e3 (rules) with one component removed at a time, {params.n} runs"
    params:
        spec=config["attribution"],
        n=lambda wc: len(config["attribution"]["scenarios"]) * (len(config["attribution"]["ablations"]) + 2)
        * len(config["attribution"]["seeds"]),
    script:
        "../scripts/attribution.py"
