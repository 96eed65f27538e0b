"""Snakemake script: the study's summaries -> results/tables/operating_points.* and Figs. 5, 6."""

import sys

from e3.analysis.aggregate import write_csv
from e3.analysis.operating_points import (
                                             fig5_operating_points,
                                             fig6_stutter_frontier,
                                             operating_points_table,
    read_shards,
)
from e3.analysis.tables import to_latex, to_markdown
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
t = operating_points_table(read_shards(list(sm.input.shards)), sm.params.default_rate)
write_csv(t, sm.output.csv)
write_text_atomic(sm.output.md, to_markdown(t))
write_text_atomic(sm.output.tex, to_latex(t, "Operating points: gaps to both Oracles and stutter against the arrival "
                                             "rate, the soft risk penalty and the mismatch scale.", "tab:operating_points"))
fig5_operating_points(t, sm.output.fig5_png.rsplit(".", 1)[0])
fig6_stutter_frontier(t, sm.output.fig6_png.rsplit(".", 1)[0])
