"""Snakemake script: when migration pays (issue 30) -> results/tables/migration_sweep.{csv,md}."""

import sys

from e3.analysis.tables import to_markdown
from e3.config import load_config
from e3.io import write_text_atomic
from e3.placement.migration_sweep import run_sweep

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
cfg = load_config(sm.input.config)  # the effective config leaves the sweep's grid out; it comes as a param
df = run_sweep(cfg, dict(sm.params.spec), lambda line: print(f"[e3] migration_sweep {line}", file=sys.stderr, flush=True))
write_text_atomic(sm.output.csv, df.to_csv(index=False, float_format="%.4f"))
write_text_atomic(sm.output.md, to_markdown(df, floatfmt=".2f"))
