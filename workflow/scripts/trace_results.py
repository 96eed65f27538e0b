"""Snakemake script: trace-run summaries -> results/tables/trace.{csv,md,tex} and fig8_trace.{png,pdf}."""

import sys

from e3.analysis.aggregate import write_csv
from e3.analysis.tables import to_latex, to_markdown
from e3.analysis.trace_results import TRACE_COLUMNS, collect_trace_runs, fig8_trace, trace_table
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
table = trace_table(collect_trace_runs(list(sm.input.summaries)), list(sm.params.cells))
write_csv(table, sm.output.csv)
shown = [c for c in TRACE_COLUMNS if c not in ("ci95_low_ms", "ci95_high_ms")]
write_text_atomic(sm.output.md, to_markdown(table[shown]))
caption = ("Trace replay (Azure LLM inference trace 2023): latency (ms, mean over seeds), gaps to the Oracle "
           "(\\%) and stutter (\\%) per pool size.")
write_text_atomic(sm.output.tex, to_latex(table[shown], caption, "tab:trace"))
fig8_trace(table, sm.output.fig_png.rsplit(".", 1)[0])
