# The third seed system (issue 15): placing and migrating LLM agents across edge servers as users
# move (AntLLM), on the placement engine (e3/placement/engine.py). Its own target,
# `snakemake --cores 8 migration`; the outputs are frozen results (results/tables/migration.*,
# results/figures/fig10_migration.*, results/migration_comparison.md).
rule migration_config:
    output:
        MIGRATION_CONFIG,
    params:
        # placement.sweep only decides which runs exist: leaving it out re-runs nothing when it grows
        config={
            **{k: v for k, v in config.items() if k not in ("sweep", "scale", "fairness", "placement", "attribution", "agents", "external")},
            "placement": {k: v for k, v in config["placement"].items() if k not in ("sweep", "migration_sweep")},
        },
    resources:
        runtime=5,  # minutes (SLURM time limit)
        mem_mb=500,
        cpus_per_task=1,
    log:
        "logs/migration_config.log",
    benchmark:
        "logs/benchmarks/migration_config.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the agent placement system's effective configuration"
    script:
        "../scripts/write_config.py"


# Batch jobs as in the E3 sweep (simulate.smk): per scenario, a few jobs each run a part of the
# cells that run there (common.smk: cell_parts) for every seed in one process
# (`e3 simulate --cells --seeds`). Outputs named in full.
for _sc in config["placement"]["sweep"]["scenarios"]:
    for _part, _cells in enumerate(cell_parts(migration_scenario_cells(_sc), len(config["placement"]["sweep"]["seeds"]))):

        rule:
            name:
                f"simulate_migration_{_sc}_part{_part}"
            input:
                config=MIGRATION_CONFIG,
                priors=config["priors"]["frozen"],
                scenario=f"config/agents/{_sc}.yaml",
                # the committed LLM responses, an input of a part with an llm-controller cell only
                llm=[config["controllers"]["llm"]["frozen"]] if any(c == "llm" for _, c in _cells) else [],
            output:
                summaries=[f"{MIGRATION_RUNS}/summary.json".format(scenario=_sc, policy=p, controller=c, seed=s)
                           for p, c in _cells for s in config["placement"]["sweep"]["seeds"]],
            params:
                # loop variables only in directives read when the rule is defined (simulate.smk)
                scenario=_sc,
                out=lambda wc, sc=_sc: MIGRATION_RUNS.format(scenario=sc, policy="{policy}", controller="{controller}",
                                                              seed="{seed}"),
                cells=" ".join(f"{p}:{c}" for p, c in _cells),
                seeds=" ".join(str(s) for s in config["placement"]["sweep"]["seeds"]),
                # sweep.plugins: policy files of any system (e3.registry), loaded by e3 simulate
                plugins=plugin_args,
            resources:
                runtime=120,  # minutes (SLURM time limit)
                mem_mb=2000,
                cpus_per_task=1,
            log:
                f"logs/placement/{_sc}/part{_part}.log",
            benchmark:
                f"logs/benchmarks/placement/{_sc}/part{_part}.tsv"
            conda:
                "../envs/e3.yaml"
            message:
                "Agent placement: {params.scenario}, {params.cells}, seeds {params.seeds}"
            shell:
                "e3 simulate --config {input.config} --scenario {params.scenario} --cells {params.cells} "
                "--seeds {params.seeds} {params.plugins} --out '{params.out}' > {log} 2>&1"


rule migration_results:
    input:
        summaries=migration_runs(),
        # the comparison quotes the objective check (issue 30, item 4)
        check="results/tables/objective_check.csv",
    output:
        csv=MIGRATION_OUTPUTS[0],
        md=MIGRATION_OUTPUTS[1],
        tex=MIGRATION_OUTPUTS[2],
        png=report(MIGRATION_OUTPUTS[3], caption="../report/fig10.rst", category="Figures"),
        pdf=MIGRATION_OUTPUTS[4],
        comparison=report(MIGRATION_OUTPUTS[5], category="Agent placement system"),
    params:
        placement=config["placement"],
        # the table's cells: the sweep's, then the external baselines' (workflow/rules/external.smk)
        cells=list(config["placement"]["sweep"]["cells"]) + external_cells("placement"),
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/migration_results.log",
    benchmark:
        "logs/benchmarks/migration_results.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Writing the migration table, Fig. 10 and the comparison with the reported claims"
    script:
        "../scripts/migration.py"


# Does the optimisers' objective predict the simulation? (issue 30 item 4; part of the default target)
rule objective_check:
    input:
        config=MIGRATION_CONFIG,
        priors=config["priors"]["frozen"],
    output:
        csv="results/tables/objective_check.csv",
        runs="results/tables/objective_check_runs.csv",
        png=report("results/figures/fig11_objective_check.png", caption="../report/fig11.rst", category="Figures"),
        pdf="results/figures/fig11_objective_check.pdf",
    params:
        seeds=" ".join(str(s) for s in config["placement"]["sweep"]["seeds"][:5]),
    resources:
        runtime=15,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/objective_check.log",
    benchmark:
        "logs/benchmarks/objective_check.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Checking the placement objective against the simulation (seeds {params.seeds})"
    shell:
        "python -m e3.placement.objective_check --config {input.config} --seeds {params.seeds} "
        "--out results/tables/objective_check --figure results/figures/fig11_objective_check > {log} 2>&1"


rule migration:
    input:
        rules.migration_results.output,


# When migration pays (issue 30, deliverable 5): its own target, `snakemake --cores 8
# migration_sweep` (config placement.migration_sweep; 240 runs, about 3 min on 2 cores).
rule migration_sweep:
    input:
        config=MIGRATION_CONFIG,
        priors=config["priors"]["frozen"],
    output:
        csv="results/tables/migration_sweep.csv",
        md=report("results/tables/migration_sweep.md", category="Agent placement system"),
    params:
        spec=config["placement"].get("migration_sweep", {}),
    resources:
        runtime=60,  # minutes (SLURM time limit)
        mem_mb=4000,
        cpus_per_task=1,
    log:
        "logs/migration_sweep.log",
    benchmark:
        "logs/benchmarks/migration_sweep.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Migration sweep: dwell {params.spec[dwell_mean_s]} s x utilisation {params.spec[utilisations]}"
    script:
        "../scripts/migration_sweep.py"
