"""The fairness table and Fig. 9 from the runs' ``summary.json`` files.

* ``fairness_row``: one run as a flat row (metrics of :func:`e3.fairness.run.request_metrics`).
* ``fairness_table``: one row per (scenario, policy, controller) cell: means over seeds, 95 %
  Student-t intervals (:func:`e3.analysis.tables.t_interval`), per-model means, and the composite
  objective ``Phi = L_mean / L_ref + w (1 - J')`` with ``L_ref`` the reference policy's mean
  latency on the same scenario and seed (config ``fairness.objective``), averaged over seeds.
* ``fairness_figure``: mean latency and normalised Jain per epoch (by arrival), one column per
  scenario, one line per cell (mean over seeds): how fast each policy adapts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from e3.analysis.tables import t_interval
from e3.errors import InputError

TABLE_COLUMNS = ["scenario", "policy", "controller", "mean_latency_s", "p95_latency_s", "jain_raw",
                 "jain_normalized", "success_ratio", "pod_activations", "objective", "n_seeds"]
EXTRA_COLUMNS = ["mean_latency_ci95_low_s", "mean_latency_ci95_high_s", "jain_normalized_ci95_low",
                 "jain_normalized_ci95_high", "objective_ci95_low", "objective_ci95_high",
                 "jain_inverse_latency", "mean_latency_served_s", "failed", "timed_out", "llm_fallbacks"]


def fairness_row(summary_path: str | Path) -> dict:
    """Flatten one fairness ``summary.json``. Raises InputError on a missing file or field."""
    p = Path(summary_path)
    try:
        s = json.loads(p.read_text())
        row = {k: s[k] for k in ("scenario", "policy", "controller", "seed", "issued", "served", "timed_out", "failed",
                                 "mean_latency_s", "p95_latency_s", "mean_latency_served_s", "jain_raw",
                                 "jain_normalized", "jain_inverse_latency", "success_ratio", "pod_activations")}
        row.update({f"latency_{m}_s": v for m, v in s["per_model_mean_latency_s"].items()})
        row["llm_fallbacks"] = s["policy_summary"].get("fallbacks_total", 0)
        return row
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(p, getattr(exc, "args", ["?"])[0] if isinstance(exc, KeyError) else "summary",
                         f"not a readable fairness summary: {exc}") from None


def epoch_rows(summary_path: str | Path) -> list[dict]:
    """Per-epoch rows (scenario, policy, controller, seed, epoch, mean_latency_s, jain_normalized)."""
    s = json.loads(Path(summary_path).read_text())
    return [{"scenario": s["scenario"], "policy": s["policy"], "controller": s["controller"], "seed": s["seed"],
             "epoch": e["epoch"], "mean_latency_s": e["mean_latency_s"], "jain_normalized": e["jain_normalized"]}
            for e in s["per_epoch"]]


def with_objective(runs: pd.DataFrame, reference_policy: str, weight: float) -> pd.DataFrame:
    """Add ``objective`` per run: ``L / L_ref(scenario, seed) + weight * (1 - J')``; NaN where the
    reference run is missing."""
    ref = runs[runs["policy"] == reference_policy].groupby(["scenario", "seed"])["mean_latency_s"].mean()
    lref = [ref.get((sc, sd), math.nan) for sc, sd in zip(runs["scenario"], runs["seed"], strict=True)]
    return runs.assign(objective=runs["mean_latency_s"] / pd.Series(lref, index=runs.index)
                       + weight * (1.0 - runs["jain_normalized"]))


def fairness_table(runs: pd.DataFrame, cells: list[dict], scenarios: list[str], models: list[str]) -> pd.DataFrame:
    """One row per cell in config order (scenario, then cell); see the module docstring."""
    rows = []
    for sc in scenarios:
        for cell in cells:
            pol, ctl = cell["policy"], cell.get("controller", "none")
            c = runs[(runs["scenario"] == sc) & (runs["policy"] == pol) & (runs["controller"] == ctl)]
            if c.empty:
                continue
            lo, hi = t_interval(c["mean_latency_s"])
            jlo, jhi = t_interval(c["jain_normalized"])
            olo, ohi = t_interval(c["objective"].dropna())
            r = {"scenario": sc, "policy": pol, "controller": ctl, "mean_latency_s": c["mean_latency_s"].mean(),
                 "p95_latency_s": c["p95_latency_s"].mean(), "jain_raw": c["jain_raw"].mean(),
                 "jain_normalized": c["jain_normalized"].mean(), "success_ratio": c["success_ratio"].mean(),
                 "pod_activations": c["pod_activations"].mean(), "objective": c["objective"].mean(),
                 "n_seeds": len(c), "mean_latency_ci95_low_s": lo, "mean_latency_ci95_high_s": hi,
                 "jain_normalized_ci95_low": jlo, "jain_normalized_ci95_high": jhi,
                 "objective_ci95_low": olo, "objective_ci95_high": ohi,
                 "jain_inverse_latency": c["jain_inverse_latency"].mean(),
                 "mean_latency_served_s": c["mean_latency_served_s"].mean(), "failed": c["failed"].mean(),
                 "timed_out": c["timed_out"].mean(), "llm_fallbacks": c["llm_fallbacks"].mean()}
            r.update({f"latency_{m}_s": c[f"latency_{m}_s"].mean() for m in models})
            rows.append(r)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS + EXTRA_COLUMNS + [f"latency_{m}_s" for m in models])


def label(policy: str, controller: str) -> str:
    """Legend label of a cell."""
    if policy == "lyapunov_dpp":
        return f"lyapunov_dpp V={controller[1:]}"
    return policy if controller == "none" else f"{policy} ({controller})"


def fairness_figure(epochs: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 9: mean latency (top, log scale) and normalised Jain (bottom) per epoch; one column per
    scenario, one line per cell (mean over seeds). Returns the PNG and PDF paths."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save

    e = epochs.copy()
    e["cell"] = [label(p, c) for p, c in zip(e["policy"], e["controller"], strict=True)]
    e = e.groupby(["scenario", "cell", "epoch"], sort=False, as_index=False)[["mean_latency_s", "jain_normalized"]].mean()
    scenarios = list(dict.fromkeys(e["scenario"]))
    fig, axes = plt.subplots(2, len(scenarios), figsize=(4.4 * len(scenarios), 6.6), squeeze=False, sharex=True)
    for j, sc in enumerate(scenarios):
        d = e[e["scenario"] == sc]
        for i, (col, ylab) in enumerate((("mean_latency_s", "mean latency (s, censored)"),
                                         ("jain_normalized", "normalised Jain J'"))):
            ax = axes[i][j]
            sns.lineplot(data=d, x="epoch", y=col, hue="cell", marker="o", markersize=3, ax=ax,
                         legend=(i == 1 and j == 0))
            ax.set_ylabel(ylab if j == 0 else "")
            ax.set_xlabel("epoch (5 min)" if i == 1 else "")
            if i == 0:
                ax.set_yscale("log")
                ax.set_title(sc)
            else:
                ax.set_ylim(0, 1)
    if axes[1][0].get_legend() is not None:
        sns.move_legend(axes[1][0], "lower left", fontsize=6, title=None, ncol=2)
    return _save(fig, Path(out_base))
