"""Snakemake script: trajectories.csv -> Fig. 3 and Fig. 4 (PNG and PDF)."""

import sys

import pandas as pd

from e3.analysis.figures import fig3_warmup, fig4_dynamic

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
traj = pd.read_csv(sm.input.trajectories)
fig3_warmup(traj, sm.output.fig3_png.rsplit(".", 1)[0], every=sm.params.every, smooth=sm.params.smooth)
main = [(c["policy"], c.get("controller", "none")) for c in sm.params.cells if c.get("table", "main") == "main"]
fig4_dynamic(traj, sm.output.fig4_png.rsplit(".", 1)[0], smooth=sm.params.smooth, cells=main)
