"""Snakemake script: runs.csv -> Table 5, Table 6 and the extended table (CSV, Markdown, LaTeX)."""

import sys

import pandas as pd

from e3.analysis.aggregate import write_csv
from e3.analysis.tables import (
    TABLE5_COLUMNS,
    TABLE6_COLUMNS,
    main_table_scenarios,
    table5,
    table6,
    to_latex,
    to_markdown,
)
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
runs = pd.read_csv(sm.input.runs)
cells = list(sm.params.cells)
main = [c for c in cells if c.get("table", "main") == "main"]
t5 = table5(runs, main, main_table_scenarios(list(sm.params.scenarios)))  # no stress cases
t6 = table6(runs, t5)
ext = table5(runs, cells, list(sm.params.scenarios))  # every cell and scenario, the stress cases included
for name, df, cols, caption in (
    ("table5", t5, TABLE5_COLUMNS, "Average end-to-end latency (ms), mean over seeds with 95\\% t-interval."),
    ("table6", t6, TABLE6_COLUMNS, "Stutter and control-plane cost under dynamic regimes (means per run)."),
    ("table_extended", ext, TABLE5_COLUMNS, "All policies, the classic online baselines and the stress scenarios included."),
):
    write_csv(df[["scenario", *cols]], sm.output[f"{name}_csv"])
    write_text_atomic(sm.output[f"{name}_md"], to_markdown(df[cols]))
    write_text_atomic(sm.output[f"{name}_tex"], to_latex(df[cols], caption, f"tab:{name}"))
