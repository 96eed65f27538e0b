"""Snakemake script: scale-study run summaries -> results/tables/scale.* and fig7_scale.*."""

import sys

import pandas as pd

from e3.analysis.aggregate import write_csv
from e3.analysis.scale import SCALE_COLUMNS, scale_figure, scale_row, scale_table
from e3.analysis.tables import to_latex, to_markdown
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
runs = pd.DataFrame([scale_row(p) for p in sm.input.summaries])
t = scale_table(runs, list(sm.params.cells), list(sm.params.scenarios), list(sm.params.sizes))
write_csv(t[SCALE_COLUMNS], sm.output.csv)
write_text_atomic(sm.output.md, to_markdown(t[SCALE_COLUMNS]))
write_text_atomic(sm.output.tex, to_latex(t[SCALE_COLUMNS], "Oracle gap and stutter on generated pools (mean over seeds).",
                                          "tab:scale"))
scale_figure(t, sm.output.png[: -len(".png")])
