"""Snakemake script: the study's summaries -> results/tables/operating_points.* and Figs. 5, 6."""

import sys

from e3.analysis.aggregate import write_csv
from e3.analysis.operating_points import (
                                             fig5_operating_points,
                                             fig6_stutter_frontier,
                                             operating_points_table,
    read_shards,
)
from e3.analysis.tables import to_latex
from e3.io import write_text_atomic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
t = operating_points_table(read_shards(list(sm.input.shards)), sm.params.default_rate)
write_csv(t, sm.output.csv)
# The grid values need more digits than the latencies' one decimal (0.125 tasks/s is not 0.1).
fmt = {"arrival_rate_per_s": ".3f", "risk_penalty_ms": ".0f", "mismatch_scale": ".2f", "rho_pool": ".3f",
       "rho_safe": ".3f", "n_seeds": "d"}


def _cell(x, f: str) -> str:
    return "" if x != x else format(x, f)  # NaN (not applicable to this study) shows empty


shown = t.assign(**{c: t[c].map(lambda x, c=c: _cell(x, fmt.get(c, ".1f"))) for c in t.columns if t[c].dtype.kind in "fi"})
write_text_atomic(sm.output.md, shown.to_markdown(index=False, disable_numparse=True) + "\n")
write_text_atomic(sm.output.tex, to_latex(shown, "Operating points: gaps to both Oracles and stutter against the arrival "
                                             "rate, the soft risk penalty and the mismatch scale.", "tab:operating_points"))
fig5_operating_points(t, sm.output.fig5_png.rsplit(".", 1)[0])
fig6_stutter_frontier(t, sm.output.fig6_png.rsplit(".", 1)[0])
