"""The trace results: ``results/tables/trace.{csv,md,tex}`` and ``results/figures/fig8_trace.{png,pdf}``.

Inputs are the ``summary.json`` files of trace-scenario runs (``workload.arrivals: trace``), at one
or more pool sizes. One table row per (scenario, pool size, policy, controller): latency mean (with
its 95 % Student-t interval over seeds, as in :mod:`e3.analysis.tables`), p50 and p99 (means over
seeds of each run's percentile), the gaps of the mean and of the p99 to the Oracle on the same
seeds (common random numbers), the stutter rate, and the load the runs faced (``rho_pool`` and the
time scale from ``summary.json``). The pool size is the number of devices in the run's
``utilisation``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from e3.analysis.aggregate import run_row
from e3.analysis.tables import t_interval
from e3.errors import InputError

TRACE_COLUMNS = ["scenario", "n_devices", "rho_pool", "time_scale", "policy", "controller", "avg_latency_ms",
                 "ci95_low_ms", "ci95_high_ms", "p50_latency_ms", "p99_latency_ms", "vs_oracle_pct",
                 "p99_vs_oracle_pct", "stutter_pct", "n_seeds"]


def trace_run_row(summary_path: str | Path) -> dict:
    """:func:`e3.analysis.aggregate.run_row` plus the trace fields: pool size, ``rho_pool``,
    time scale, requests in the window and the trace file's sha256.

    Raises:
        InputError: missing file or field, or a run that is not a trace replay.
    """
    row = run_row(summary_path)
    s = json.loads(Path(summary_path).read_text())
    w = s.get("workload")
    if not w or w.get("arrivals") != "trace":
        raise InputError(summary_path, "workload", "not a trace-workload run (no workload.arrivals: trace)")
    row.update({"n_devices": len(s["utilisation"]), "rho_pool": w["rho_pool"], "time_scale": w["time_scale"],
                "requests_in_window": w["trace"]["requests_in_window"], "trace_sha256": w["trace"]["sha256"]})
    return row


def collect_trace_runs(summary_paths: list[str | Path]) -> pd.DataFrame:
    """All trace runs, sorted by (scenario, n_devices, policy, controller, seed)."""
    df = pd.DataFrame([trace_run_row(p) for p in summary_paths])
    keys = ["scenario", "n_devices", "policy", "controller", "seed"]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def trace_table(runs: pd.DataFrame, cells: list[dict] | None = None) -> pd.DataFrame:
    """One row per (scenario, n_devices, policy, controller); see the module docstring.

    Args:
        runs: :func:`collect_trace_runs` rows.
        cells: the sweep's cells (row order within a scenario and pool size); default: as in ``runs``.

    Returns:
        A frame with :data:`TRACE_COLUMNS`. A gap is NaN when the Oracle lacks one of the cell's seeds.
    """
    order = [(c["policy"], c.get("controller", "none")) for c in cells] if cells else None
    rows = []
    for (sc, n), r in runs.groupby(["scenario", "n_devices"], sort=False):
        oracle = r[r["policy"] == "oracle"]
        pairs = order or list(dict.fromkeys(zip(r["policy"], r["controller"], strict=True)))
        for pol, ctl in pairs:
            c = r[(r["policy"] == pol) & (r["controller"] == ctl)]
            if c.empty:
                continue
            lo, hi = t_interval(c["avg_latency_ms"])
            o = oracle[oracle["seed"].isin(c["seed"])]
            same = len(o) == len(c)
            rows.append({
                "scenario": sc, "n_devices": int(n), "rho_pool": c["rho_pool"].mean(),
                "time_scale": c["time_scale"].mean(), "policy": pol, "controller": ctl,
                "avg_latency_ms": c["avg_latency_ms"].mean(), "ci95_low_ms": lo, "ci95_high_ms": hi,
                "p50_latency_ms": c["p50_latency_ms"].mean(), "p99_latency_ms": c["p99_latency_ms"].mean(),
                "vs_oracle_pct": 100.0 * (c["avg_latency_ms"].mean() / o["avg_latency_ms"].mean() - 1.0)
                if same else math.nan,
                "p99_vs_oracle_pct": 100.0 * (c["p99_latency_ms"].mean() / o["p99_latency_ms"].mean() - 1.0)
                if same else math.nan,
                "stutter_pct": 100.0 * c["stutter_rate"].mean(), "n_seeds": len(c)})
    return pd.DataFrame(rows, columns=TRACE_COLUMNS)


def fig8_trace(table: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 8: gap of the mean (top row) and of the p99 latency (bottom row) to the Oracle, in %,
    per policy, against the pool size; one column per trace scenario. Writes PNG and PDF.

    Returns:
        The written paths.
    """
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save, label  # the house figure style and byte-stable writer

    t = table[table["policy"] != "oracle"].copy()
    t["cell"] = [label(p, c) for p, c in zip(t["policy"], t["controller"], strict=True)]
    scen = list(dict.fromkeys(t["scenario"]))
    fig, axes = plt.subplots(2, len(scen), figsize=(4.2 * len(scen), 6.0), squeeze=False, sharex="col")
    palette = dict(zip(dict.fromkeys(t["cell"]), sns.color_palette("tab20", t["cell"].nunique()), strict=True))
    for j, sc in enumerate(scen):
        d = t[t["scenario"] == sc]
        for i, (col, name) in enumerate((("vs_oracle_pct", "mean latency"), ("p99_vs_oracle_pct", "p99 latency"))):
            ax = axes[i][j]
            sns.lineplot(data=d, x="n_devices", y=col, hue="cell", palette=palette, marker="o", ax=ax,
                         legend=(i == 0 and j == len(scen) - 1))
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_yscale("symlog", linthresh=10.0)  # gaps span 0 % to thousands of %
            ax.set_ylabel(f"{name}: gap to Oracle (%)")
            ax.set_xlabel("devices in the pool")
            if i == 0:
                rho = d["rho_pool"].mean()
                ax.set_title(f"{sc} (rho_pool {rho:.2f})")
            sizes = sorted(d["n_devices"].unique())
            ax.set_xscale("log")  # pool sizes 4, 16, 100: evenly spread on a log axis
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.minorticks_off()
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0), title=None, frameon=False)
    fig.tight_layout()
    return _save(fig, Path(out_base))
