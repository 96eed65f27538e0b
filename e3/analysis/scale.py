"""The scale result (issue 11): oracle gap and stutter of the main policies on generated pools.

Input: one ``summary.json`` per run of the scale study (``resources/scale/{devices}/...``).
Output: ``results/tables/scale.{csv,md,tex}`` (one row per pool size, scenario and cell) and
``results/figures/fig7_scale.{png,pdf}``. Gaps use common random numbers: a cell's mean latency
over its seeds against the Oracle's over the same seeds and pool size,
``gap_vs_oracle_pct = 100 * (mean_cell / mean_oracle - 1)``; the interval is the Student-t 95 %
interval of the mean latency (:func:`e3.analysis.tables.t_interval`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

SCALE_COLUMNS = ["devices", "scenario", "policy", "controller", "n_tasks", "avg_latency_ms", "ci95_low_ms",
                 "ci95_high_ms", "p99_latency_ms", "gap_vs_oracle_pct", "stutter_pct", "min_device_tasks", "n_seeds"]


def scale_row(summary_path: str | Path) -> dict:
    """One run of the scale study as a flat row (devices, cell, seed, latency, stutter).

    The cell comes from the summary itself, the controller from ``policy_summary`` ('none' when
    the policy has none), and the pool size from ``tasks_per_device``.

    Raises:
        InputError: the file is missing or not a run summary.
    """
    from e3.errors import InputError

    p = Path(summary_path)
    try:
        s = json.loads(p.read_text())
        return {"devices": len(s["tasks_per_device"]), "scenario": s["scenario"], "policy": s["policy"],
                "controller": s["policy_summary"].get("controller", "none"), "seed": s["seed"],
                "n_tasks": s["n_tasks"], "avg_latency_ms": s["latency_ms"]["mean"],
                "p99_latency_ms": s["latency_ms"]["p99"], "stutter_rate": s["stutter_rate"],
                "min_device_tasks": min(s["tasks_per_device"].values())}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{p}: not a readable run summary ({exc})") from exc


def scale_table(runs: pd.DataFrame, cells: list[dict], scenarios: list[str], sizes: list[int]) -> pd.DataFrame:
    """One row per (devices, scenario, cell) in config order; columns :data:`SCALE_COLUMNS`."""
    from e3.analysis.tables import t_interval

    rows = []
    for n in sizes:
        for sc in scenarios:
            r = runs[(runs["devices"] == n) & (runs["scenario"] == sc)]
            oracle = r[r["policy"] == "oracle"]
            for cell in cells:
                pol, ctl = cell["policy"], cell.get("controller", "none")
                c = r[(r["policy"] == pol) & (r["controller"] == ctl)]
                if c.empty:
                    continue
                o = oracle[oracle["seed"].isin(c["seed"])]["avg_latency_ms"]
                lo, hi = t_interval(c["avg_latency_ms"])
                rows.append({"devices": n, "scenario": sc, "policy": pol, "controller": ctl,
                             "n_tasks": int(c["n_tasks"].iloc[0]), "avg_latency_ms": c["avg_latency_ms"].mean(),
                             "ci95_low_ms": lo, "ci95_high_ms": hi, "p99_latency_ms": c["p99_latency_ms"].mean(),
                             "gap_vs_oracle_pct": (100.0 * (c["avg_latency_ms"].mean() / o.mean() - 1.0)
                                                   if len(o) == len(c) else math.nan),
                             "stutter_pct": 100.0 * c["stutter_rate"].mean(),
                             "min_device_tasks": c["min_device_tasks"].mean(), "n_seeds": len(c)})
    return pd.DataFrame(rows, columns=SCALE_COLUMNS)


def scale_figure(table: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 7: oracle gap (top row) and stutter (bottom row) against the pool size, one column per
    scenario, one line per cell (log x axis). Returns the PNG and PDF paths."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save, label

    t = table.copy()
    t["cell"] = [label(p, c) for p, c in zip(t["policy"], t["controller"], strict=True)]
    scenarios = list(dict.fromkeys(t["scenario"]))
    fig, axes = plt.subplots(2, len(scenarios), figsize=(4.2 * len(scenarios), 6.4), squeeze=False, sharex=True)
    for j, sc in enumerate(scenarios):
        d = t[t["scenario"] == sc]
        for i, (col, ylab) in enumerate((("gap_vs_oracle_pct", "gap to Oracle (%)"), ("stutter_pct", "stutter (%)"))):
            ax = axes[i][j]
            sns.lineplot(data=d, x="devices", y=col, hue="cell", marker="o", ax=ax, legend=(i == 0 and j == 0))
            ax.set_xscale("log")
            sizes = sorted(d["devices"].unique())
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.xaxis.set_minor_locator(plt.NullLocator())
            ax.set_ylabel(ylab if j == 0 else "")
            ax.set_xlabel("devices" if i == 1 else "")
            if i == 0:
                ax.set_title(sc)
            if col == "gap_vs_oracle_pct":
                ax.set_yscale("symlog", linthresh=10)
                ax.set_ylim(bottom=-1)
            else:
                ax.set_ylim(bottom=-0.5, top=max(1.0, 1.1 * float(d[col].max())))
    if axes[0][0].get_legend() is not None:
        sns.move_legend(axes[0][0], "upper left", fontsize=7, title=None)
    return _save(fig, Path(out_base))
