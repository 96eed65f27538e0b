# The operating-point study (issue 10): its own target, `snakemake --cores 8 operating_points`.
# Grids in config sweep.operating_points; one job per (study, point, scenario) runs all its cells
# and seeds in one process (`e3 operating-points`) and writes one JSONL file of rows (the llm cells
# are left out: their responses are recorded for the default operating point only). Helpers in
# common.smk.


rule op_simulate:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/scenarios/{scenario}.yaml",
    output:
        rows=OP_SHARD,
    params:
        cells=op_cells_arg,
        seeds=" ".join(str(s) for s in config["sweep"]["operating_points"]["seeds"]),
        plugins=plugin_args,
    resources:
        runtime=60,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/operating_points/{study}/{point}/{scenario}.log",
    benchmark:
        "logs/benchmarks/operating_points/{study}/{point}/{scenario}.tsv"
    wildcard_constraints:
        study="rate|penalty|mismatch",
        point=r"ref|(rate|pen|mis)[0-9.e+-]+",
    conda:
        "../envs/e3.yaml"
    message:
        "Operating points {wildcards.study}/{wildcards.point}: {wildcards.scenario}, {params.cells}"
    shell:
        "e3 operating-points --config {input.config} --study {wildcards.study} --point {wildcards.point} "
        "--scenario {wildcards.scenario} --cells {params.cells} --seeds {params.seeds} {params.plugins} "
        "--out {output.rows} > {log} 2>&1"


rule operating_points:
    input:
        shards=op_shards,
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
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/operating_points.log",
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the operating-point tables and Figs. 5 and 6"
    script:
        "../scripts/operating_points.py"
