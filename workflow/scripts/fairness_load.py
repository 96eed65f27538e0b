"""Snakemake script: the fairness load sweep (issue 29) -> results/tables/fairness_load.{csv,md}."""

import sys

from e3.analysis.tables import to_markdown
from e3.config import load_config
from e3.fairness.load_sweep import run_sweep
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
df = run_sweep(load_config(sm.input.config), dict(sm.params.spec), list(sm.params.scenarios),
               progress=lambda line: print(f"[e3] fairness load {line}", file=sys.stderr, flush=True))
write_text_atomic(sm.output.csv, df.to_csv(index=False, float_format="%.4f"))
cols = ["target_static_utilisation", "scenario", "policy", "controller", "mean_latency_s", "jain_normalized",
        "worst_model_latency_s", "min_model_success_ratio", "censored_pct", "pareto_vs_static_sect", "objective"]
write_text_atomic(sm.output.md, to_markdown(df[cols], floatfmt=".2f"))
