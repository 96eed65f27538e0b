# Trace workloads (issue 12): the public LLM request traces the trace scenarios replay
# (config/scenarios/azure_{conv,code}.yaml). They are not committed: `fetch_traces` downloads them
# at the pinned commit, or copies them from a local mirror (offline), checking every sha256.
# Helpers (traces_mirror_arg, scenario_trace_file) live in common.smk.


rule fetch_traces:
    output:
        "resources/traces/azure-llm-inference-2023/AzureLLMInferenceTrace_conv.csv",
        "resources/traces/azure-llm-inference-2023/AzureLLMInferenceTrace_code.csv",
        "resources/traces/azure-llm-inference-2023/AzureLLMInferenceDataset2023.md",
        "resources/traces/azure-llm-inference-2023/LICENSE",
        manifest="resources/traces/FETCH_MANIFEST.json",
    params:
        mirror=traces_mirror_arg,
        dest=lambda wc, output: os.path.dirname(output.manifest),
    resources:
        runtime=30,  # minutes (SLURM time limit)
        mem_mb=1000,
        cpus_per_task=1,
    log:
        "logs/traces/fetch_traces.log",
    benchmark:
        "logs/benchmarks/fetch_traces.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Fetching the Azure LLM inference trace 2023 (CC-BY 4.0) at its pinned commit"
    shell:
        "e3 fetch-traces --dest {params.dest} {params.mirror} > {log} 2>&1 || (cat {log} >&2; exit 1)"


# A trace scenario on a generated pool of N devices (`e3 simulate --devices N`: devices drawn from
# every MLPerf edge record, the named pool's load per device; time_scale auto keeps rho_pool at
# the scenario's target), all sweep seeds of one cell in one job.
rule simulate_trace_pool:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario="config/scenarios/{scenario}.yaml",
        trace_file=scenario_trace_file,
    output:
        summaries=expand(f"{TRACE_POOL_RUNS}/summary.json", seed=config["sweep"]["seeds"], allow_missing=True),
    params:
        out=lambda wc: TRACE_POOL_RUNS.format(seed="{seed}", **wc),
        seeds=" ".join(str(s) for s in config["sweep"]["seeds"]),
    resources:
        runtime=120,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/trace_pools/{devices}/{scenario}/{policy}/{controller}.log",
    benchmark:
        "logs/benchmarks/trace_pools/{devices}/{scenario}/{policy}/{controller}.tsv"
    wildcard_constraints:
        devices=r"\d+",
    conda:
        "../envs/e3.yaml"
    message:
        "Trace replay on {wildcards.devices} devices: {wildcards.scenario}, {wildcards.policy} ({wildcards.controller})"
    shell:
        "e3 simulate --config {input.config} --scenario {wildcards.scenario} --policy {wildcards.policy} "
        "--controller {wildcards.controller} --devices {wildcards.devices} --seeds {params.seeds} "
        "--format parquet --out '{params.out}' > {log} 2>&1"


# The trace results (issue 12): every cell of the sweep except the llm controller (its replies
# for trace scenarios are not recorded) on each trace scenario, sweep seeds, on the config's pool
# and on the generated pools of `traces.generated_devices`. Not part of the default target:
# `snakemake --cores 8 traces`.
rule trace_results:
    input:
        summaries=trace_run_summaries(),
    output:
        csv="results/tables/trace.csv",
        md="results/tables/trace.md",
        tex="results/tables/trace.tex",
        fig_png=report("results/figures/fig8_trace.png", caption="../report/fig8.rst", category="Figures"),
        fig_pdf="results/figures/fig8_trace.pdf",
    params:
        cells=trace_cells(),
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/trace_results.log",
    benchmark:
        "logs/benchmarks/trace_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the trace table and Fig. 8 from {input.summaries}"
    script:
        "../scripts/trace_results.py"


rule traces:
    input:
        rules.trace_results.output,
