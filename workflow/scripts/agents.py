"""Snakemake script: the held-out event benchmark (issue 31) -> results/tables/agents.*, fig12, leaderboard."""

import sys

from e3.analysis.agents import record_seconds, run_benchmark, table, write_outputs
from e3.config import load_config

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
cfg = load_config(sm.input.config)
spec = dict(sm.params.spec)
per_row, oracles = run_benchmark(cfg, spec, progress=lambda line: print(f"[e3] agents {line}", file=sys.stderr,
                                                                          flush=True))
df = table(spec, per_row, oracles, record_seconds(sm.input.record_runs))
write_outputs(df, spec, sm.output.csv.removesuffix(".csv"), sm.output.png.removesuffix(".png"), sm.output.leaderboard)
