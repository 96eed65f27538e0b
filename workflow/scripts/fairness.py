"""Snakemake script: fairness-system run summaries -> results/tables/fairness.* and fig9_fairness.*."""

import sys

import pandas as pd

from e3.analysis.aggregate import write_csv
from e3.analysis.tables import to_latex, to_markdown
from e3.fairness.analysis import (
    TABLE_COLUMNS,
    comparison_markdown,
    epoch_rows,
    fairness_figure,
    fairness_row,
    fairness_table,
    with_objective,
)
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
f = sm.params.fairness
runs = with_objective(pd.DataFrame([fairness_row(p) for p in sm.input.summaries]),
                      f["objective"]["reference_policy"], f["objective"]["fairness_weight"])
t = fairness_table(runs, list(sm.params.cells), list(f["sweep"]["scenarios"]), list(f["models"]))
write_csv(t, sm.output.csv)
shown = t[TABLE_COLUMNS].copy()
write_text_atomic(sm.output.md, to_markdown(shown, floatfmt=".3g"))
write_text_atomic(sm.output.tex, to_latex(shown, "Latency and inter-model fairness on the simulated city MEC network "
                                                 "(mean over seeds; latency censored at the timeout).", "tab:fairness"))
fairness_figure(pd.DataFrame([r for p in sm.input.summaries for r in epoch_rows(p)]), sm.output.png[: -len(".png")])
write_text_atomic(sm.output.comparison, comparison_markdown(t))
