# The operating-point study (issue 10): its own target, `snakemake --cores 8 operating_points`.
# Grids in config sweep.operating_points; one `e3 simulate --set ...` per run (the llm cells are
# left out: their responses are recorded for the default operating point only). Helpers in common.smk.


rule op_simulate:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/scenarios/{scenario}.yaml",
    output:
        summary=f"{OP_RUNS}/summary.json",
    params:
        out=lambda wc, output: os.path.dirname(output.summary),
        sets=op_set_args,
        plugins=plugin_args,
    log:
        "logs/operating_points/{study}/{point}/{scenario}/{policy}/{controller}/seed{seed}.log",
    wildcard_constraints:
        study="rate|penalty|mismatch",
        point=r"ref|(rate|pen|mis)[0-9.e+-]+",
        seed=r"\d+",
    conda:
        "../envs/e3.yaml"
    message:
        "Operating point {wildcards.study}/{wildcards.point}: {wildcards.scenario}, {wildcards.policy} "
        "({wildcards.controller}), seed {wildcards.seed}"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --seed {wildcards.seed} {params.sets} {params.plugins} "
        "--format parquet --quiet --out {params.out} > {log} 2>&1"


rule operating_points:
    input:
        summaries=op_summaries,
    output:
        csv="results/tables/operating_points.csv",
        md="results/tables/operating_points.md",
        tex="results/tables/operating_points.tex",
        fig5_png="results/figures/fig5_operating_points.png",
        fig5_pdf="results/figures/fig5_operating_points.pdf",
        fig6_png="results/figures/fig6_stutter_frontier.png",
        fig6_pdf="results/figures/fig6_stutter_frontier.pdf",
    params:
        default_rate=config["workload"]["arrival_rate_per_s"],
    log:
        "logs/operating_points.log",
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the operating-point tables and Figs. 5 and 6"
    script:
        "../scripts/operating_points.py"
