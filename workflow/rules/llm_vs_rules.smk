# Where the llm controller decides differently from rules, whether it helps, and its cost
# (issue 28, deliverable 6): the sweep's e3/llm and e3/rules runs, seed by seed; default target.

rule llm_vs_rules:
    input:
        # each run's audit.jsonl is read beside its summary.json (the batch jobs write it without
        # declaring it, so it cannot be an input here)
        summaries=llm_rules_runs("summary.json"),
    output:
        csv="results/tables/llm_vs_rules.csv",
        md=report("results/tables/llm_vs_rules.md", category="Tables"),
    params:
        scenarios=" ".join(config["sweep"]["scenarios"]),
        seeds=" ".join(str(s) for s in llm_rules_seeds()),
        # resources/runs, the folder above {scenario}/e3/{controller}/seed{seed}/summary.json
        runs=lambda wc, input: str(Path(input.summaries[0]).parents[4]),
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/llm_vs_rules.log",
    benchmark:
        "logs/benchmarks/llm_vs_rules.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Comparing the llm and rules controllers over {params.seeds} seeds"
    shell:
        "python -m e3.analysis.llm_vs_rules --runs {params.runs} --scenarios {params.scenarios} "
        "--seeds {params.seeds} --out results/tables/llm_vs_rules > {log} 2>&1"
