# The held-out event benchmark (issue 31): every row of config `agents` on the events scenario,
# LLM rows replayed from the committed replies (offline); part of the default target.


rule agents:
    input:
        config=EFFECTIVE_CONFIG,
        priors=config["priors"]["frozen"],
        scenario=f"config/scenarios/{config['agents']['scenario']}.yaml",
        catalogue="config/events/catalogue.yaml",
        responses=config["agents"]["responses"],
        record_runs=config["agents"]["record_runs"],
    output:
        csv="results/tables/agents.csv",
        md=report("results/tables/agents.md", category="Tables"),
        tex="results/tables/agents.tex",
        png=report("results/figures/fig12_agents.png", caption="../report/fig12.rst", category="Figures"),
        pdf="results/figures/fig12_agents.pdf",
        leaderboard="results/leaderboard.md",
    params:
        spec=config["agents"],  # the benchmark's grid: a row or seed edit re-runs the rule
        n=lambda wc: (len(config["agents"]["rows"]) + len(config["agents"]["oracles"])) * len(config["agents"]["seeds"]),
    resources:
        runtime=30,  # minutes (SLURM time limit)
        mem_mb=2000,
        cpus_per_task=1,
    log:
        "logs/agents.log",
    benchmark:
        "logs/benchmarks/agents.tsv"
    conda:
        "../envs/e3.yaml"
    message:
        "Held-out event benchmark: {params.n} runs, LLM rows replayed offline"
    script:
        "../scripts/agents.py"
