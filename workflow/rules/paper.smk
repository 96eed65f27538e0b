# Paper inputs: cited numbers as LaTeX macros, the comparison with the paper, the manifest, the PDF.


rule paper_numbers:
    input:
        table5="results/tables/table5.csv",
        table6="results/tables/table6.csv",
        extended="results/tables/table_extended.csv",
        paper_values="paper/paper_values.yaml",
    output:
        numbers="paper/generated/numbers.tex",
        table5_tex="paper/generated/table5.tex",
        table6_tex="paper/generated/table6.tex",
        comparison=report("results/paper_comparison.md", category="Comparison with the paper"),
    params:
        paper_controller="llm",
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/paper_numbers.log",
    benchmark:
        "logs/benchmarks/paper_numbers.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing paper/generated/numbers.tex and results/paper_comparison.md"
    script:
        "../scripts/paper_numbers.py"


rule paper_context:
    input:
        scenarios=[f"config/scenarios/{n}.yaml" for n in
                   ("warmup_0", "warmup_30", "warmup_100", "semantic", "semantic_overload", "churn", "drift",
                    "drift_no_reversal")],
        paper_values="paper/paper_values.yaml",
        studies=existing_study_tables,
    output:
        setting="paper/generated/setting.tex",
        operating_points="paper/generated/operating_points.tex",
        studies="paper/generated/studies.tex",
    params:
        config=config,
        operating_points=REPORT_STUDIES["operating_points"],
        scale=REPORT_STUDIES["scale"],
        trace=REPORT_STUDIES["trace"],
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/paper_context.log",
    benchmark:
        "logs/benchmarks/paper_context.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing paper/generated/{{setting,operating_points,studies}}.tex (config, study ranges)"
    script:
        "../scripts/paper_context.py"


FROZEN = [
    "results/aggregate/runs.csv",
    "results/aggregate/trajectories.csv",
    *[f"results/tables/{n}.{e}" for n in ("table5", "table6", "table_extended") for e in ("csv", "md", "tex")],
    *[f"results/figures/{f}" for f in ("fig3_warmup.png", "fig3_warmup.pdf", "fig4_dynamic.png", "fig4_dynamic.pdf")],
    "results/paper_comparison.md",
    "paper/generated/numbers.tex",
    *[f"paper/generated/{n}.tex" for n in ("setting", "operating_points", "studies")],
    # the fairness system (issue 14), part of the default target
    *FAIRNESS_OUTPUTS,
    # the agent placement system (issue 15), part of the default target
    *MIGRATION_OUTPUTS,
    # what each part of E3 earns (issue 28), part of the default target
    *[f"results/tables/attribution.{e}" for e in ("csv", "md", "tex")],
    *[f"results/tables/llm_vs_rules.{e}" for e in ("csv", "md")],
    # the held-out event benchmark (issue 31), part of the default target
    *[f"results/tables/agents.{e}" for e in ("csv", "md", "tex")],
    *[f"results/figures/fig12_agents.{e}" for e in ("png", "pdf")],
    "results/leaderboard.md",
    # the placement objective against the simulation (issue 30)
    "results/tables/objective_check.csv", "results/tables/objective_check_runs.csv",
    *[f"results/figures/fig11_objective_check.{e}" for e in ("png", "pdf")],
    # the operating-point study (issue 10), part of the default target
    *[f"results/tables/operating_points.{e}" for e in ("csv", "md", "tex")],
    *[f"results/figures/{f}.{e}" for f in ("fig5_operating_points", "fig6_stutter_frontier") for e in ("png", "pdf")],
]


rule manifest:
    input:
        frozen=FROZEN,
        priors=config["priors"]["frozen"],
        pool="resources/pool.json",
        effective=EFFECTIVE_CONFIG,
    output:
        "results/MANIFEST.json",
    params:
        config=config,
        llm=config["controllers"]["llm"]["frozen"],
        agents_llm=[config["agents"]["responses"], config["agents"]["record_runs"]],
        # the runs the aggregate must hold: (scenario, policy, controller, seed) of this sweep
        runs=[(sc, p, c, s) for sc in config["sweep"]["scenarios"] for p, c in sweep_cells() for s in cell_seeds(c)],
        # the cells the fairness and placement tables must hold, external baselines included
        fairness_cells=[(sc, p, c) for sc in config["fairness"]["sweep"]["scenarios"] for p, c in fairness_table_cells()],
        fairness_seeds=len(config["fairness"]["sweep"]["seeds"]),
        migration_cells=[(sc, p, c) for sc in config["placement"]["sweep"]["scenarios"]
                         for p, c in migration_table_cells(sc)],
        migration_seeds=len(config["placement"]["sweep"]["seeds"]),
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/manifest.log",
    benchmark:
        "logs/benchmarks/manifest.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing results/MANIFEST.json (sha256 of every frozen file, config hash, versions, commit)"
    script:
        "../scripts/manifest.py"


rule paper_pdf:
    input:
        tex="paper/main.tex",
        numbers="paper/generated/numbers.tex",
        tables=["paper/generated/table5.tex", "paper/generated/table6.tex"],
        context=rules.paper_context.output,
        figures=["results/figures/fig3_warmup.pdf", "results/figures/fig4_dynamic.pdf"],
        studies=existing_study_tables,
    output:
        "paper/build/main.status",
    params:
        engine="latexmk",
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/paper_pdf.log",
    benchmark:
        "logs/benchmarks/paper_pdf.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Building paper/build/main.pdf if a TeX engine and the packages main.tex uses are present"
    script:
        "../scripts/paper_pdf.py"
