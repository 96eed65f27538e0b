"""The operating-point study (issue 10, deliverable 4): where each verdict holds.

Three studies, each a grid of ``e3 simulate --set`` runs over the config's
``sweep.operating_points`` (every non-``llm`` cell of ``sweep.cells``: the llm controller's
responses are recorded for the default operating point only, so its cells are left out):

* ``rate``: every cell on every study scenario at each arrival rate (``workload.arrival_rate_per_s``);
* ``penalty``: the soft-penalty frontier on the semantic scenarios: ``e3`` with the ``rules``
  controller and ``hard_avoidance: false`` at each ``risk_penalty_ms``, and ``oracle_avoid`` given
  the same soft penalty (``soft_penalty_ms``); the point ``ref`` runs ``oracle``, the hard
  ``oracle_avoid`` and the hard ``e3`` as anchors and gap references;
* ``mismatch``: every cell at each truth mismatch scale (``truth.mismatch_scale``, f -> f^s).

Each row of ``results/tables/operating_points.csv`` is one (study, point, scenario, cell): the
mean latency over seeds with its 95 % Student-t interval (:func:`e3.analysis.tables.t_interval`),
the gap to ``oracle`` and to ``oracle_avoid`` at the same point and seeds (for the penalty study,
the ``ref`` point's), the stutter rate, and ``rho_pool`` (the largest per-kind utilisation of the
whole pool with no event) and ``rho_safe`` (the largest over semantic windows of the non-degraded
devices' utilisation when they carry their kind's whole load), means over seeds of the runs'
``summary.json`` ``load`` (:mod:`e3.sim.load`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from e3.analysis.op_grid import REFERENCE_POINT, STUDIES, point_value, summary_row
from e3.analysis.tables import t_interval
from e3.errors import InputError

OP_COLUMNS = ["study", "scenario", "policy", "controller", "arrival_rate_per_s", "risk_penalty_ms", "mismatch_scale",
              "rho_pool", "rho_safe", "avg_latency_ms", "ci95_low_ms", "ci95_high_ms", "gap_vs_oracle_pct",
              "gap_vs_oracle_avoid_pct", "stutter_pct", "n_seeds"]


def read_shards(paths: list[str | Path]) -> pd.DataFrame:
    """Rows of every shard file (JSONL written by ``e3 operating-points``).

    Raises:
        InputError: a missing file or a line that is not a row.
    """
    rows = []
    for path in paths:
        p = Path(path)
        try:
            for i, line in enumerate(p.read_text().splitlines(), 1):
                r = json.loads(line)
                if not isinstance(r, dict) or "latency_ms" not in r:
                    raise InputError(p, f"line {i}", "not an operating-point row")
                rows.append(r)
        except FileNotFoundError:
            raise InputError(p, "(file)", "missing shard") from None
        except json.JSONDecodeError as exc:
            raise InputError(p, f"line {exc.lineno}", "not valid JSON") from None
    return pd.DataFrame(rows)


def _row(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    parts = p.parts
    try:
        study, point, scenario, policy, controller, seed = parts[-7:-1]
        return summary_row(study, point, scenario, policy, controller, int(seed.removeprefix("seed")),
                           json.loads(p.read_text()))
    except FileNotFoundError:
        raise InputError(p, "(file)", "missing summary") from None
    except (KeyError, ValueError, json.JSONDecodeError) as exc:
        raise InputError(p, str(exc), "missing or malformed field (path must end study/point/scenario/"
                                      "policy/controller/seedN/summary.json)") from None


def operating_points_table(summary_paths: list[str | Path] | pd.DataFrame,
                           default_rate_per_s: float = 0.2) -> pd.DataFrame:
    """One row per (study, point, scenario, policy, controller); columns :data:`OP_COLUMNS`.

    Args:
        summary_paths: ``.../{study}/{point}/{scenario}/{policy}/{controller}/seed{seed}/summary.json``
            paths, or the rows themselves (:func:`read_shards`).
        default_rate_per_s: the arrival rate of the penalty and mismatch studies (config's).
    """
    df = (summary_paths if isinstance(summary_paths, pd.DataFrame)
          else pd.DataFrame([_row(p) for p in summary_paths]))
    rows = []
    keys = ["study", "point", "scenario", "policy", "controller"]
    # Each cell's rows in file order; a reference Oracle's rows are looked up here, not filtered
    # from the whole table per cell (same rows, same order, so the same means).
    cells = dict(iter(df.groupby(keys, sort=False)))
    for (study, point, sc, pol, ctl), c in cells.items():
        ref_point = REFERENCE_POINT if study == "penalty" else point
        gaps = {}
        for col, name in (("gap_vs_oracle_pct", "oracle"), ("gap_vs_oracle_avoid_pct", "oracle_avoid")):
            ref = cells.get((study, ref_point, sc, name, "none"))
            o = ref[ref["seed"].isin(c["seed"])]["latency_ms"] if ref is not None else ()
            gaps[col] = 100.0 * (c["latency_ms"].mean() / o.mean() - 1.0) if len(o) == len(c) else math.nan
        lo, hi = t_interval(c["latency_ms"])
        value = point_value(study, point)
        rows.append({"study": study, "scenario": sc, "policy": pol, "controller": ctl,
                     "arrival_rate_per_s": value if study == "rate" else default_rate_per_s,
                     "risk_penalty_ms": value if study == "penalty" else math.nan,
                     "mismatch_scale": value if study == "mismatch" else 1.0,
                     "rho_pool": c["rho_pool"].mean(), "rho_safe": c["rho_safe"].mean(),
                     "avg_latency_ms": c["latency_ms"].mean(), "ci95_low_ms": lo, "ci95_high_ms": hi, **gaps,
                     "stutter_pct": 100.0 * c["stutter_rate"].mean(), "n_seeds": len(c)})
    out = pd.DataFrame(rows, columns=OP_COLUMNS)
    order = {s: i for i, s in enumerate(STUDIES)}
    return (out.assign(_s=out["study"].map(order))
            .sort_values(["_s", "scenario", "policy", "controller", "arrival_rate_per_s", "risk_penalty_ms",
                          "mismatch_scale"], kind="stable", na_position="first")
            .drop(columns="_s").reset_index(drop=True))


def fig5_operating_points(t: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 5: gap to each reference against the arrival rate, one column per scenario (rate study);
    a dotted line where rho_safe reaches 1. Returns the written paths (PNG, PDF)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save, label

    sns.set_theme(style="whitegrid", context="paper")
    r = t[t["study"] == "rate"]
    scenarios = list(dict.fromkeys(r["scenario"]))
    fig, axes = plt.subplots(2, max(1, len(scenarios)), figsize=(3.6 * max(1, len(scenarios)), 6.2),
                             squeeze=False, sharex=True)
    cells = list(dict.fromkeys(zip(r["policy"], r["controller"], strict=True)))
    pal = sns.color_palette("tab20", max(1, len(cells)))
    for j, sc in enumerate(scenarios):
        g = r[r["scenario"] == sc]
        for i, col in enumerate(("gap_vs_oracle_pct", "gap_vs_oracle_avoid_pct")):
            ax = axes[i][j]
            for k, (pol, ctl) in enumerate(cells):
                c = g[(g["policy"] == pol) & (g["controller"] == ctl)].sort_values("arrival_rate_per_s")
                ax.plot(c["arrival_rate_per_s"], c[col], "-o", ms=2.5, lw=1.1, color=pal[k], label=label(pol, ctl))
            over = g[g["rho_safe"] >= 1.0]["arrival_rate_per_s"]
            if not over.empty:
                ax.axvline(over.min(), color="k", ls=":", lw=1)
            ax.set_yscale("symlog", linthresh=10)
            ax.set_title(f"{sc}" if i == 0 else "")
            ax.set_ylabel("gap to " + ("Oracle" if i == 0 else "avoiding Oracle") + " (%)")
            ax.set_xlabel("arrival rate (tasks/s)" if i == 1 else "")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(7, max(1, len(labels))), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return _save(fig, Path(out_base))


def fig6_stutter_frontier(t: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 6: mean latency against stutter as the soft risk penalty sweeps (penalty study), for
    ``e3`` (rules) and the Oracle given the same penalty; hard-avoidance anchors as stars."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save, label

    sns.set_theme(style="whitegrid", context="paper")
    p = t[t["study"] == "penalty"]
    scenarios = list(dict.fromkeys(p["scenario"]))
    fig, axes = plt.subplots(1, max(1, len(scenarios)), figsize=(4.6 * max(1, len(scenarios)), 3.6), squeeze=False)
    pal = sns.color_palette("colorblind")
    for ax, sc in zip(axes[0], scenarios, strict=False):
        g = p[p["scenario"] == sc]
        for k, (pol, ctl) in enumerate([("e3", "rules"), ("oracle_avoid", "none")]):
            c = g[(g["policy"] == pol) & (g["controller"] == ctl)]
            soft = c[c["risk_penalty_ms"].notna()].sort_values("risk_penalty_ms")
            ax.plot(soft["stutter_pct"], soft["avg_latency_ms"] / 1000, "-o", ms=3, color=pal[k],
                    label=f"{label(pol, ctl)}, soft penalty")
            for _, row in soft.iterrows():
                ax.annotate(f"{row['risk_penalty_ms'] / 1000:g}s", (row["stutter_pct"], row["avg_latency_ms"] / 1000),
                            fontsize=6, xytext=(2, 2), textcoords="offset points")
            hard = c[c["risk_penalty_ms"].isna()]
            ax.plot(hard["stutter_pct"], hard["avg_latency_ms"] / 1000, "*", ms=9, color=pal[k],
                    label=f"{label(pol, ctl)}, hard avoidance")
        o = g[(g["policy"] == "oracle") & g["risk_penalty_ms"].isna()]
        ax.plot(o["stutter_pct"], o["avg_latency_ms"] / 1000, "s", ms=6, color="k", label="Oracle")
        ax.set_title(sc)
        ax.set_xlabel("stutter (% of tasks)")
        ax.set_ylabel("mean latency (s)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return _save(fig, Path(out_base))
