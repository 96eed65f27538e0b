"""Snakemake script: agent placement run summaries -> results/tables/migration.*, fig10_migration.*
and results/migration_comparison.md."""

import sys

import pandas as pd

from e3.analysis.aggregate import write_csv
from e3.analysis.tables import to_latex, to_markdown
from e3.io import write_text_atomic
from e3.placement.analysis import (
    TABLE_COLUMNS,
    comparison_markdown,
    migration_figure,
    migration_row,
    migration_table,
)

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
p = sm.params.placement
runs = pd.DataFrame([migration_row(f) for f in sm.input.summaries])
t = migration_table(runs, list(sm.params.cells), list(p["sweep"]["scenarios"]))
write_csv(t, sm.output.csv)
shown = t[TABLE_COLUMNS].copy()
write_text_atomic(sm.output.md, to_markdown(shown, floatfmt=".3g"))
write_text_atomic(sm.output.tex, to_latex(shown, "Agent placement and migration on the simulated global edge "
                                                 "(mean over seeds).", "tab:migration"))
migration_figure(t, sm.output.png[: -len(".png")])
check = pd.read_csv(sm.input.check)
write_text_atomic(sm.output.comparison, comparison_markdown(t, check, p["cost"].get("queueing", "mm1"), runs))
