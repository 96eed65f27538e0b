"""Snakemake script: summaries and traces -> results/aggregate/{runs,trajectories}.csv."""

import sys

from e3.analysis.aggregate import collect_runs, trajectories, write_csv

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
runs = collect_runs(list(sm.input.summaries))
# the trace list follows the summaries' order; re-order it like the sorted runs
order = {p.rsplit("/", 1)[0]: t for p, t in zip(sm.input.summaries, sm.input.traces, strict=True)}
traces = [order[f"resources/runs/{r.scenario}/{r.policy}/{r.controller}/seed{r.seed}"] for r in runs.itertuples()]
write_csv(runs, sm.output.runs)
write_csv(trajectories(traces, runs), sm.output.trajectories)
print(f"{len(runs)} runs aggregated", file=sys.stderr)
