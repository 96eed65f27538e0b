"""Snakemake script: tables -> paper/generated/{numbers,table5,table6}.tex, results/paper_comparison.md."""

import shutil
import sys

import pandas as pd

from e3.analysis.paper import comparison_markdown, load_paper_values, numbers_tex, write_text

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
t5 = pd.read_csv(sm.input.table5, dtype={"setting": str})
t6 = pd.read_csv(sm.input.table6, dtype={"setting": str})
ext = pd.read_csv(sm.input.extended, dtype={"setting": str})
write_text(sm.output.numbers, numbers_tex(t5, t6, sm.params.paper_controller, extended=ext))
for name in ("table5", "table6"):
    shutil.copyfile(f"results/tables/{name}.tex", sm.output[f"{name}_tex"])
write_text(sm.output.comparison,
           comparison_markdown(t5, t6, load_paper_values(sm.input.paper_values), sm.params.paper_controller))
