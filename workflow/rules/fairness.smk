# The second seed system (issue 14): latency- and fairness-aware multi-model edge inference on
# the serving engine (e3/fairness/engine.py). Its own target, `snakemake --cores 8 fairness`; the
# outputs are frozen results (results/tables/fairness.*, results/figures/fig9_fairness.*).
rule fairness_config:
    output:
        FAIRNESS_CONFIG,
    params:
        # fairness.sweep only decides which runs exist: leaving it out re-runs nothing when it grows
        config={
            **{k: v for k, v in config.items() if k not in ("sweep", "scale", "fairness", "placement", "attribution", "agents", "external")},
            "fairness": {k: v for k, v in config["fairness"].items() if k not in ("sweep", "load_sweep")},
        },
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=500,
        cpus_per_task=1,
    log:
        "logs/fairness_config.log",
    benchmark:
        "logs/benchmarks/fairness_config.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the fairness system's effective configuration"
    script:
        "../scripts/write_config.py"


# Batch jobs as in the E3 sweep (simulate.smk): per scenario, a few jobs each run a part of the
# cells (common.smk: cell_parts) for every seed in one process (`e3 simulate --cells --seeds`;
# inputs, priors and the best static plan loaded once per cell). Outputs named in full.
for _sc in config["fairness"]["sweep"]["scenarios"]:
    for _part, _cells in enumerate(cell_parts(fairness_scenario_cells(), len(config["fairness"]["sweep"]["seeds"]))):

        rule:
            name:
                f"simulate_fairness_{_sc}_part{_part}"
            input:
                config=FAIRNESS_CONFIG,
                priors=config["priors"]["frozen"],
                scenario=f"config/fairness/{_sc}.yaml",
                # the committed LLM responses, an input of a part with an llm-controller cell only
                llm=[config["controllers"]["llm"]["frozen"]] if any(c == "llm" for _, c in _cells) else [],
            output:
                summaries=[f"{FAIRNESS_RUNS}/summary.json".format(scenario=_sc, policy=p, controller=c, seed=s)
                           for p, c in _cells for s in config["fairness"]["sweep"]["seeds"]],
            params:
                # loop variables only in directives read when the rule is defined (simulate.smk)
                scenario=_sc,
                out=lambda wc, sc=_sc: FAIRNESS_RUNS.format(scenario=sc, policy="{policy}", controller="{controller}",
                                                             seed="{seed}"),
                cells=" ".join(f"{p}:{c}" for p, c in _cells),
                seeds=" ".join(str(s) for s in config["fairness"]["sweep"]["seeds"]),
                # sweep.plugins: policy files of any system (e3.registry), loaded by e3 simulate
                plugins=plugin_args,
            resources:
                runtime=120,  # minutes (SLURM time limit)
                mem_mb=2000,
                cpus_per_task=1,
            log:
                f"logs/fairness/{_sc}/part{_part}.log",
            benchmark:
                f"logs/benchmarks/fairness/{_sc}/part{_part}.tsv"
            conda:
                "../envs/e3.yaml"
            message:
                "Fairness system: {params.scenario}, {params.cells}, seeds {params.seeds}"
            shell:
                "e3 simulate --config {input.config} --scenario {params.scenario} --cells {params.cells} "
                "--seeds {params.seeds} {params.plugins} --out '{params.out}' > {log} 2>&1"


rule fairness_results:
    input:
        summaries=fairness_runs(),
    output:
        csv=FAIRNESS_OUTPUTS[0],
        md=FAIRNESS_OUTPUTS[1],
        tex=FAIRNESS_OUTPUTS[2],
        png=report(FAIRNESS_OUTPUTS[3], caption="../report/fig9.rst", category="Figures"),
        pdf=FAIRNESS_OUTPUTS[4],
        comparison=report(FAIRNESS_OUTPUTS[5], category="Fairness system"),
    params:
        fairness=config["fairness"],
        # the table's cells: the sweep's, then the external baselines' (workflow/rules/external.smk)
        cells=list(config["fairness"]["sweep"]["cells"]) + external_cells("fairness"),
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/fairness_results.log",
    benchmark:
        "logs/benchmarks/fairness_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the fairness table, Fig. 9 and the paper comparison"
    script:
        "../scripts/fairness.py"


rule fairness:
    input:
        rules.fairness_results.output,


# The fairness comparison at other operating points (issue 29): its own target, `snakemake --cores 8
# fairness_load` (config fairness.load_sweep; about 480 runs, 3 min on 2 cores).
rule fairness_load:
    input:
        config=FAIRNESS_CONFIG,
        priors=config["priors"]["frozen"],
    output:
        csv="results/tables/fairness_load.csv",
        md=report("results/tables/fairness_load.md", category="Fairness system"),
    params:
        spec=config["fairness"].get("load_sweep", {}),
        scenarios=config["fairness"]["sweep"]["scenarios"],
    resources:
        runtime=60,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/fairness_load.log",
    benchmark:
        "logs/benchmarks/fairness_load.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Fairness load sweep: target_static_utilisation {params.spec[utilisations]}"
    script:
        "../scripts/fairness_load.py"
