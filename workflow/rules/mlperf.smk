# MLPerf stage: raw LoadGen logs -> validated priors records -> resolved device pool.
# The default target reads the committed, frozen priors; `snakemake refresh_priors` re-fetches,
# re-filters and reports how a fresh parse differs from the frozen file.


rule fetch_mlperf:
    output:
        directory("resources/mlperf"),
    params:
        mirror=mlperf_mirror_arg,
        selection=mlperf_selection_args,
        timeout_s=config["mlperf"]["download_timeout_s"],
        mirror_sha256=mlperf_mirror_sha256,  # a changed mirror re-runs the refresh
        stale=REFRESH_REPORT,
    resources:
        runtime=60,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/mlperf/fetch_mlperf.log",
    benchmark:
        "logs/benchmarks/fetch_mlperf.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Fetching MLPerf round summaries and LoadGen logs"
    shell:
        # a failed refresh must not leave the previous report looking current
        "rm -f {params.stale} && "
        "e3 fetch-mlperf --dest {output} {params.mirror} {params.selection} "
        "--timeout-s {params.timeout_s} > {log} 2>&1"


rule filter_mlperf:
    input:
        "resources/mlperf",
    output:
        "resources/priors/edge_mobile_generative.jsonl",
    params:
        selection=mlperf_selection_args,
        stale=REFRESH_REPORT,
    resources:
        runtime=30,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/mlperf/filter_mlperf.log",
    benchmark:
        "logs/benchmarks/filter_mlperf.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Parsing LoadGen logs into validated priors records"
    shell:
        "rm -f {params.stale} && "
        "e3 filter-mlperf --root {input} --out {output} {params.selection} > {log} 2>&1"


rule refresh_priors:
    input:
        fresh="resources/priors/edge_mobile_generative.jsonl",
        frozen=config["priors"]["frozen"],
    output:
        REFRESH_REPORT,
    params:
        rounds=config["mlperf"]["rounds"],  # a changed selection re-runs the comparison
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/mlperf/refresh_priors.log",
    benchmark:
        "logs/benchmarks/refresh_priors.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Comparing freshly parsed priors with the frozen {input.frozen}"
    shell:
        "e3 diff-priors {input.frozen} {input.fresh} --report {output} > {log} 2>&1 && cat {output}"


rule resolve_pool:
    input:
        priors=config["priors"]["frozen"],
        config=EFFECTIVE_CONFIG,
    output:
        "resources/pool.json",
    params:
        pool=config["pool"],  # a pool edit re-runs the rule
    resources:
        runtime=10,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/mlperf/resolve_pool.log",
    benchmark:
        "logs/benchmarks/resolve_pool.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Resolving the device pool against {input.priors}"
    shell:
        "e3 pool --config {input.config} --priors {input.priors} --out {output} > {log} 2>&1"
