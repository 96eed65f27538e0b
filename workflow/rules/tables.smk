# Tables 5 and 6 (and the extended baselines table) from the aggregate runs.


rule tables:
    input:
        runs="results/aggregate/runs.csv",
    output:
        **{
            f"{name}_{ext}": f"results/tables/{name}.{ext}"
            for name in ("table5", "table6", "table_extended")
            for ext in ("csv", "md", "tex")
        },
    params:
        cells=config["sweep"]["cells"],
        scenarios=config["sweep"]["scenarios"],
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/tables.log",
    benchmark:
        "logs/benchmarks/tables.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing Table 5, Table 6 and the extended baselines table"
    script:
        "../scripts/tables.py"
