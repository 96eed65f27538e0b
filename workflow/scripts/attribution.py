"""Snakemake script: the ablation study of E3 (issue 28) -> results/tables/attribution.*."""

import sys

from e3.analysis.attribution import run_attribution, write_tables
from e3.config import load_config

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
cfg = load_config(sm.input.config)
df = run_attribution(cfg, spec=dict(sm.params.spec),
                     progress=lambda line: print(f"[e3] attribution {line}", file=sys.stderr, flush=True))
write_tables(df, sm.output.csv.removesuffix(".csv"))
