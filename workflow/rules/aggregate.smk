# Aggregation: every run's summary and trace -> two small tables that figures and tables read.


rule aggregate:
    input:
        summaries=sweep_runs("summary.json"),
        traces=sweep_runs("tasks.parquet"),
    output:
        runs="results/aggregate/runs.csv",
        trajectories="results/aggregate/trajectories.csv",
    params:
        n_runs=lambda wc, input: len(input.summaries),
    resources:
        runtime=30,  # minutes (SLURM time limit)
        mem_mb=8000,
        cpus_per_task=1,
    log:
        "logs/aggregate.log",
    benchmark:
        "logs/benchmarks/aggregate.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Aggregating {params.n_runs} runs"
    script:
        "../scripts/aggregate.py"
