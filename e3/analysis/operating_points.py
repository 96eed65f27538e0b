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

from e3.analysis.tables import t_interval
from e3.errors import InputError

STUDIES = ("rate", "penalty", "mismatch")
OP_COLUMNS = ["study", "scenario", "policy", "controller", "arrival_rate_per_s", "risk_penalty_ms", "mismatch_scale",
              "rho_pool", "rho_safe", "avg_latency_ms", "ci95_low_ms", "ci95_high_ms", "gap_vs_oracle_pct",
              "gap_vs_oracle_avoid_pct", "stutter_pct", "n_seeds"]
_PREFIX = {"rate": "rate", "penalty": "pen", "mismatch": "mis"}
REFERENCE_POINT = "ref"


def point_name(study: str, value: float) -> str:
    """Folder name of a grid point, e.g. ``rate0.15``, ``pen60000``, ``mis0.5``."""
    return f"{_PREFIX[study]}{value:g}"


def point_value(study: str, point: str) -> float:
    """The grid value of ``point`` (NaN for the penalty study's ``ref`` point)."""
    if point == REFERENCE_POINT:
        return math.nan
    return float(point[len(_PREFIX[study]):])


def point_sets(study: str, point: str, policy: str) -> list[str]:
    """The ``e3 simulate --set`` assignments of one run of the study."""
    if study == "rate":
        return [f"workload.arrival_rate_per_s={point_value(study, point):g}"]
    if study == "mismatch":
        return [f"truth.mismatch_scale={point_value(study, point):g}"]
    if point == REFERENCE_POINT:
        return []
    pen = f"{point_value(study, point):g}"
    if policy == "oracle_avoid":
        return [f"policies.oracle_avoid.soft_penalty_ms={pen}"]
    return [f"policies.{policy}.hard_avoidance=false", f"policies.{policy}.risk_penalty_ms={pen}"]


def study_points(op: dict[str, Any], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run of the study: dicts with study, point, scenario, policy, controller, seed and
    ``path`` (``{study}/{point}/{scenario}/{policy}/{controller}/seed{seed}``), in a fixed order."""
    pairs = [(c["policy"], c.get("controller", "none")) for c in cells if c.get("controller", "none") != "llm"]
    frontier = [("oracle", "none"), ("oracle_avoid", "none"), ("e3", "rules")]
    grid: list[tuple[str, str, list[str], list[tuple[str, str]]]] = []
    for r in op["rates_per_s"]:
        grid.append(("rate", point_name("rate", r), op["scenarios"], pairs))
    if op["penalty_scenarios"]:
        grid.append(("penalty", REFERENCE_POINT, op["penalty_scenarios"], frontier))
        for p in op["risk_penalties_ms"]:
            grid.append(("penalty", point_name("penalty", p), op["penalty_scenarios"], frontier[1:]))
    for m in op["mismatch_scales"]:
        grid.append(("mismatch", point_name("mismatch", m), op.get("mismatch_scenarios", op["scenarios"]), pairs))
    out = []
    for study, point, scenarios, cell_pairs in grid:
        for sc in scenarios:
            for pol, ctl in cell_pairs:
                for seed in op["seeds"]:
                    out.append({"study": study, "point": point, "scenario": sc, "policy": pol, "controller": ctl,
                                "seed": seed, "path": f"{study}/{point}/{sc}/{pol}/{ctl}/seed{seed}"})
    return out


def study_shards(op: dict[str, Any], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study grouped into batches: one per (study, point, scenario), each with its cells.

    One Snakemake job runs a shard (every cell and seed of it) in one process
    (``e3 operating-points``) and writes one JSONL file of rows (:func:`summary_row`), so the
    study costs a few dozen process starts instead of ten thousand.

    Returns:
        dicts with ``study``, ``point``, ``scenario``, ``cells`` ([(policy, controller)]) and
        ``path`` (``{study}/{point}/{scenario}``), in :func:`study_points` order.
    """
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in study_points(op, cells):
        key = (p["study"], p["point"], p["scenario"])
        sh = out.setdefault(key, {"study": key[0], "point": key[1], "scenario": key[2], "cells": [],
                                  "path": "/".join(key)})
        if (p["policy"], p["controller"]) not in sh["cells"]:
            sh["cells"].append((p["policy"], p["controller"]))
    return list(out.values())


def summary_row(study: str, point: str, scenario: str, policy: str, controller: str, seed: int,
                s: dict[str, Any]) -> dict[str, Any]:
    """The figures the study reads from one run's summary dict: mean latency (ms), stutter rate,
    rho_pool (largest per-kind utilisation with no event) and rho_safe (largest over semantic
    windows; inf when a window leaves a kind no safe device).

    Raises:
        KeyError: the summary lacks ``latency_ms``, ``stutter_rate`` or ``load``.
    """
    load = s["load"]
    safe = [w["rho_safe"] for w in load["semantic_windows"]]
    return {"study": study, "point": point, "scenario": scenario, "policy": policy, "controller": controller,
            "seed": int(seed), "latency_ms": s["latency_ms"]["mean"], "stutter_rate": s["stutter_rate"],
            "rho_pool": max(load["rho_pool_static"].values()),
            "rho_safe": max((math.inf if x is None else x) for x in safe) if safe else math.nan}


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
    for (study, point, sc, pol, ctl), c in df.groupby(keys, sort=False):
        ref_point = REFERENCE_POINT if study == "penalty" else point
        ref = df[(df["study"] == study) & (df["point"] == ref_point) & (df["scenario"] == sc)]
        gaps = {}
        for col, name in (("gap_vs_oracle_pct", "oracle"), ("gap_vs_oracle_avoid_pct", "oracle_avoid")):
            o = ref[(ref["policy"] == name) & (ref["controller"] == "none") & ref["seed"].isin(c["seed"])]["latency_ms"]
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
