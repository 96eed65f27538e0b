# Figures from the aggregate trajectories only: plotting never re-runs a simulation.


rule figures:
    input:
        trajectories="results/aggregate/trajectories.csv",
        scenarios=expand("config/scenarios/{scenario}.yaml", scenario=config["sweep"]["scenarios"]),
    output:
        fig3_png=report("results/figures/fig3_warmup.png", caption="../report/fig3.rst", category="Figures"),
        fig3_pdf="results/figures/fig3_warmup.pdf",
        fig4_png=report("results/figures/fig4_dynamic.png", caption="../report/fig4.rst", category="Figures"),
        fig4_pdf="results/figures/fig4_dynamic.pdf",
    params:
        every=5,
        smooth=20,
        cells=config["sweep"]["cells"],
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/figures.log",
    benchmark:
        "logs/benchmarks/figures.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Drawing Fig. 3 (warmup) and Fig. 4 (dynamic regimes, stutter)"
    script:
        "../scripts/figures.py"
