# The operating-point study (issue 10): its own target, `snakemake --cores 8 operating_points`.
# Grids in config sweep.operating_points; one job per (study, point) runs all its cells and seeds
# on each of the study's scenarios in one process (`e3 operating-points`) and writes one JSONL file
# of rows per scenario (the llm cells are left out: their responses are recorded for the default
# operating point only). A rule per study: its scenarios name the outputs. Helpers in common.smk.
# A point that runs the config unchanged (the rate study at the config's rate, the penalty study's
# ref) reads the main sweep's runs instead of simulating them again (`--reuse-runs`, checked by
# config hash), so on its own the `operating_points` target also runs those sweep jobs.
for _study, _scenarios in OP_STUDY_SCENARIOS.items():

    rule:
        name:
            f"op_simulate_{_study}"
        input:
            config=EFFECTIVE_CONFIG,
            priors=config["priors"]["frozen"],
            scenarios=[f"config/scenarios/{sc}.yaml" for sc in _scenarios],
            # the main sweep's runs of a point that runs the config as it is (read, not re-run)
            reuse=lambda wc, study=_study: op_reuse_inputs(study, wc.point),
        output:
            rows=[OP_SHARD.format(study=_study, point="{point}", scenario=sc) for sc in _scenarios],
        params:
            # the loop variable only in directives read when the rule is defined (name, output,
            # log, params); `shell` and `message` are read at run time, when it holds the last study
            study=_study,
            cells=lambda wc, study=_study: op_cells_arg(study, wc.point),
            scenarios=" ".join(_scenarios),
            out=lambda wc, study=_study: OP_SHARD.format(study=study, point=wc.point, scenario="{scenario}"),
            seeds=" ".join(str(s) for s in config["sweep"]["operating_points"]["seeds"]),
            plugins=plugin_args,
            reuse=lambda wc, study=_study: op_reuse_arg(study, wc.point),
        resources:
            runtime=120,  # minutes (SLURM time limit)
            mem_mb=2000,
            cpus_per_task=1,
        log:
            f"logs/operating_points/{_study}/{{point}}.log",
        benchmark:
            f"logs/benchmarks/operating_points/{_study}/{{point}}.tsv"
        wildcard_constraints:
            point=r"ref|(rate|pen|mis)[0-9.e+-]+",
        conda:
            "../envs/e3.yaml"
        message:
            "Operating points {params.study}/{wildcards.point}: {params.scenarios}, {params.cells}"
        shell:
            "e3 operating-points --config {input.config} --study {params.study} --point {wildcards.point} "
            "--scenario {params.scenarios} --cells {params.cells} --seeds {params.seeds} {params.plugins} "
            "{params.reuse} --out '{params.out}' > {log} 2>&1"


rule operating_points:
    input:
        shards=op_shards,
    output:
        csv="results/tables/operating_points.csv",
        md="results/tables/operating_points.md",
        tex="results/tables/operating_points.tex",
        fig5_png=report("results/figures/fig5_operating_points.png", caption="../report/fig5.rst", category="Figures"),
        fig5_pdf="results/figures/fig5_operating_points.pdf",
        fig6_png=report("results/figures/fig6_stutter_frontier.png", caption="../report/fig6.rst", category="Figures"),
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
