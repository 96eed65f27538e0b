"""Fig. 3 (warmup trajectories) and Fig. 4 (dynamic regimes, stutter timeline) with seaborn.

Inputs are the aggregate ``trajectories.csv`` (never the simulations). Each line is the mean over
seeds; the band is the 10th-90th percentile across seeds (the seed spread). Event windows of the
scenario plans are shaded. Figures are written as PNG and PDF with the non-interactive ``agg``
backend.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import yaml  # noqa: E402

from e3.io import atomic_path  # noqa: E402
from e3.sim.scenario import scenario_path  # noqa: E402

LABELS = {("fixed_heuristic", "none"): "Fixed-Heuristic", ("round_robin", "none"): "RoundRobin",
          ("oracle", "none"): "Oracle", ("oracle_avoid", "none"): "Oracle (avoid)", ("e3", "llm"): "E3-Agent (LLM)", ("e3", "rules"): "E3 (rules)",
          ("e3", "none"): "E3 (no controller)"}


def label(policy: str, controller: str) -> str:
    """Display name of a (policy, controller) cell."""
    return LABELS.get((policy, controller), policy if controller == "none" else f"{policy} ({controller})")


def _windows(scenario: str) -> list[tuple[int, int, str]]:
    d = yaml.safe_load(scenario_path(scenario).read_text())
    w = [(e["start_task"], e["end_task"], "semantic") for e in d.get("semantic", [])]
    w += [(e["start_task"], e["end_task"], "drift") for e in d.get("drift", [])]
    w += [(e["leave_task"], e["return_task"], "away") for e in d.get("churn", [])]
    return w


def _save(fig, out_base: Path) -> list[Path]:
    paths = []
    for ext in ("png", "pdf"):
        p = out_base.with_suffix(f".{ext}")
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=_meta(ext))
        paths.append(p)
    plt.close(fig)
    return paths


def _meta(ext: str) -> dict:
    # fixed metadata so reruns give byte-identical files
    return {"Software": None} if ext == "png" else {"Creator": None, "Producer": None, "CreationDate": None}


def _line(ax, g: pd.DataFrame, name: str, every: int, smooth: int, color) -> None:
    g = g.sort_values("task_id")
    ma = g["latency_mean_ms"].rolling(smooth, min_periods=1).mean() / 1000
    sub = g[g["task_id"] % every == 0]
    ax.plot(sub["task_id"], sub["latency_mean_ms"] / 1000, ".", ms=2.5, alpha=0.45, color=color)
    ax.plot(g["task_id"], ma, "-", lw=1.4, color=color, label=name)
    ax.fill_between(g["task_id"], g["latency_q10_ms"].rolling(smooth, min_periods=1).mean() / 1000,
                    g["latency_q90_ms"].rolling(smooth, min_periods=1).mean() / 1000, alpha=0.15, color=color,
                    lw=0)


def fig3_warmup(traj: pd.DataFrame, out_base: str | Path, budgets=("warmup_0", "warmup_30", "warmup_100"),
                every: int = 5, smooth: int = 20) -> list[Path]:
    """Fig. 3: E3-Agent's latency trajectory per warmup budget beside the Oracle.

    Dots: seed-mean latency every ``every`` tasks; lines: ``smooth``-task moving average; band:
    10th-90th percentile across seeds. Returns the written paths.
    """
    sns.set_theme(style="whitegrid", context="paper")
    budgets = [b for b in budgets if b in set(traj["scenario"])]
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 3.2), sharey=True, squeeze=False)
    pal = sns.color_palette("colorblind")
    for ax, sc in zip(axes[0], budgets, strict=True):
        t = traj[traj["scenario"] == sc]
        for i, ((pol, ctl), g) in enumerate(t[t["policy"].isin(["e3", "oracle"])].groupby(["policy", "controller"])):
            _line(ax, g, label(pol, ctl), every, smooth, pal[i % len(pal)])
        budget = int(sc.split("_")[-1]) if sc.split("_")[-1].isdigit() else 0
        if budget:
            ax.axvspan(0, budget, color="grey", alpha=0.12, lw=0)
        ax.set_xlim(0, int(t["task_id"].max()))
        ax.set_title(f"warmup budget {budget} tasks")
        ax.set_xlabel("task index")
    axes[0][0].set_ylabel("end-to-end latency (s)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    return _save(fig, Path(out_base))


def fig4_dynamic(traj: pd.DataFrame, out_base: str | Path, scenarios=("semantic", "churn", "drift"),
                 smooth: int = 20, cells: list[tuple[str, str]] | None = None) -> list[Path]:
    """Fig. 4 (a)-(c): latency trajectories of every policy per dynamic regime, event windows shaded;
    (d): stutter rate per task index under semantic dynamics (fraction of seeds whose task was
    dispatched to a degraded device). ``cells``: the (policy, controller) pairs to draw (default:
    all in ``traj``). Returns the written paths."""
    sns.set_theme(style="whitegrid", context="paper")
    if cells is not None:
        keep = pd.Series(list(zip(traj["policy"], traj["controller"], strict=True))).isin(cells).to_numpy()
        traj = traj[keep]
    horizon = int(traj["task_id"].max())
    scenarios = [s for s in scenarios if s in set(traj["scenario"])]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.6))
    pal = sns.color_palette("colorblind")
    cells = list(dict.fromkeys(zip(traj["policy"], traj["controller"], strict=True)))
    colors = {c: pal[i % len(pal)] for i, c in enumerate(cells)}
    for ax, sc, tag in zip(axes.flat, scenarios, "abc", strict=False):
        t = traj[traj["scenario"] == sc]
        for (pol, ctl), g in t.groupby(["policy", "controller"], sort=False):
            _line(ax, g, label(pol, ctl), 10**9, smooth, colors[(pol, ctl)])
        for s, e, kind in _windows(sc):
            ax.axvspan(s, e, color={"semantic": "tab:red", "drift": "tab:orange", "away": "grey"}[kind],
                       alpha=0.1, lw=0)
        ax.set_yscale("log")
        ax.set_xlim(0, horizon)
        ax.set_title(f"({tag}) {sc}")
        ax.set_xlabel("task index")
        ax.set_ylabel("latency (s, log)")
    ax = axes.flat[3]
    t = traj[traj["scenario"] == "semantic"]
    for (pol, ctl), g in t.groupby(["policy", "controller"], sort=False):
        g = g.sort_values("task_id")
        ax.plot(g["task_id"], g["stutter_rate"].rolling(10, min_periods=1).mean(), lw=1.2,
                color=colors[(pol, ctl)], label=label(pol, ctl))
    for s, e, _ in _windows("semantic"):
        ax.axvspan(s, e, color="tab:red", alpha=0.1, lw=0)
    ax.set_xlim(0, horizon)
    ax.set_title("(d) stutter under semantic dynamics (10-task mean)")
    ax.set_xlabel("task index")
    ax.set_ylabel("stutter rate")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, Path(out_base))
