"""Table 5 (average latency per cell, 95 % CI, gap to each Oracle, stutter) and Table 6 (stutter
and control-plane cost) from ``runs.csv``; CSV, Markdown and LaTeX renderings.

Confidence intervals: Student-t interval of the mean over seeds,
``statsmodels.stats.weightstats.DescrStatsW(x).tconfint_mean(alpha=0.05)`` (seeds are
independent replicates; n_seeds - 1 degrees of freedom). With one seed the interval is undefined
and left empty. ``vs_oracle_pct = 100 * (mean_cell / mean_oracle - 1)`` on the same setting and
seeds (common random numbers: every cell of a setting faces the same tasks and truth per seed).
``vs_oracle_avoid_pct`` is the same gap to ``oracle_avoid``, the Oracle barred from degraded
devices (the stutter-matched reference, issue 10); the paper does not say which of the two its
Oracle is. ``stutter_pct``: the mean over seeds of the share of tasks dispatched to a degraded
device (Eq. 3), for every row, the Oracles' included. A reference missing from ``runs`` leaves
its gap empty (NaN).
"""

from __future__ import annotations

import math

import pandas as pd
from statsmodels.stats.weightstats import DescrStatsW

TABLE5_COLUMNS = ["block", "setting", "policy", "controller", "avg_latency_ms", "ci95_low_ms", "ci95_high_ms",
                  "vs_oracle_pct", "vs_oracle_avoid_pct", "stutter_pct", "n_seeds"]
#: the two references of the gap columns: column -> policy
REFERENCES = {"vs_oracle_pct": "oracle", "vs_oracle_avoid_pct": "oracle_avoid"}
TABLE6_COLUMNS = ["setting", "e3_controller", "e3_stutter_pct", "best_static_policy", "best_static_stutter_pct",
                  "llm_calls", "tool_calls", "fallbacks", "calls_per_1000_tasks", "n_seeds"]
STATIC = ("fixed_heuristic", "round_robin")


def t_interval(x: pd.Series) -> tuple[float, float]:
    """95 % Student-t confidence interval of the mean of ``x`` (NaN, NaN for fewer than 2 values)."""
    if len(x) < 2:
        return (math.nan, math.nan)
    lo, hi = DescrStatsW(x.to_numpy(dtype=float)).tconfint_mean(alpha=0.05)
    return float(lo), float(hi)


def cell_runs(runs: pd.DataFrame, scenarios: list[str], cells: list[dict]):
    """Yield ``(scenario, policy, controller, rows)`` for every (scenario, cell) with runs, in
    config order (scenario, then cell); ``rows`` are that cell's rows of ``runs`` (one per seed).

    Args:
        runs: one row per run, with ``scenario``, ``policy`` and ``controller`` columns.
        cells: the config's cells (``{"policy", "controller"?}``; controller defaults to ``none``).
    """
    for sc in scenarios:
        for cell in cells:
            pol, ctl = cell["policy"], cell.get("controller", "none")
            c = runs[(runs["scenario"] == sc) & (runs["policy"] == pol) & (runs["controller"] == ctl)]
            if not c.empty:
                yield sc, pol, ctl, c


def _load_public(name: str) -> dict:
    import yaml

    from e3.sim.scenario import scenario_path

    d = yaml.safe_load(scenario_path(name).read_text())
    return {"block": d.get("block", "other"), "setting": str(d.get("setting", name))}


def main_table_scenarios(scenarios: list[str]) -> list[str]:
    """The scenarios of Table 5 and Table 6: ``scenarios`` without the stress cases (scenario
    files with ``block: stress``, e.g. ``semantic_overload``), which only the extended table shows.

    Raises:
        FileNotFoundError: a name with no scenario file (``e3.checks.check_sweep`` catches it
            before the DAG runs).
    """
    return [s for s in scenarios if _load_public(s)["block"] != "stress"]


def table5(runs: pd.DataFrame, cells: list[dict] | None = None, scenarios: list[str] | None = None) -> pd.DataFrame:
    """One row per (scenario, policy, controller) cell, in scenario order then cell order.

    Args:
        runs: ``runs.csv`` rows.
        cells: the config's ``sweep.cells`` (gives the row order); default: order of appearance.
        scenarios: the config's ``sweep.scenarios`` (gives the block order); default: as in ``runs``.
    """
    meta = {sc: _load_public(sc) for sc in runs["scenario"].unique()}
    order = [(c["policy"], c.get("controller", "none")) for c in cells] if cells else None
    rows = []
    for sc in [s for s in (scenarios or dict.fromkeys(runs["scenario"])) if s in meta]:
        r = runs[runs["scenario"] == sc]
        pairs = order or list(dict.fromkeys(zip(r["policy"], r["controller"], strict=True)))
        for pol, ctl in pairs:
            c = r[(r["policy"] == pol) & (r["controller"] == ctl)]
            if c.empty:
                continue
            lo, hi = t_interval(c["avg_latency_ms"])
            gaps = {}
            for col, ref in REFERENCES.items():
                # the reference over the same seeds as this cell (llm cells use fewer seeds)
                o = r[(r["policy"] == ref) & r["seed"].isin(c["seed"])]["avg_latency_ms"]
                gaps[col] = 100.0 * (c["avg_latency_ms"].mean() / o.mean() - 1.0) if len(o) == len(c) else math.nan
            rows.append({"block": meta[sc]["block"], "setting": meta[sc]["setting"], "scenario": sc,
                         "policy": pol, "controller": ctl, "avg_latency_ms": c["avg_latency_ms"].mean(),
                         "ci95_low_ms": lo, "ci95_high_ms": hi, **gaps,
                         "stutter_pct": 100.0 * c["stutter_rate"].mean(), "n_seeds": len(c)})
    return pd.DataFrame(rows, columns=["scenario", *TABLE5_COLUMNS])


def table6(runs: pd.DataFrame, t5: pd.DataFrame) -> pd.DataFrame:
    """Per dynamic scenario and e3 controller: E3's stutter, the best static baseline's stutter (the
    static policy with the lower average latency), and the control-plane cost (means per run)."""
    rows = []
    dyn = t5[t5["block"] == "dynamic"]
    for sc in dict.fromkeys(dyn["scenario"]):
        r = runs[runs["scenario"] == sc]
        st = t5[(t5["scenario"] == sc) & t5["policy"].isin(STATIC)]
        best = st.sort_values("avg_latency_ms").iloc[0]["policy"] if not st.empty else None
        for ctl in dict.fromkeys(r[r["policy"] == "e3"]["controller"]):
            e = r[(r["policy"] == "e3") & (r["controller"] == ctl)]
            b = r[(r["policy"] == best) & r["seed"].isin(e["seed"])] if best else r.iloc[0:0]
            rows.append({"scenario": sc, "setting": dyn[dyn["scenario"] == sc]["setting"].iloc[0],
                         "e3_controller": ctl, "e3_stutter_pct": 100 * e["stutter_rate"].mean(),
                         "best_static_policy": best, "best_static_stutter_pct": 100 * b["stutter_rate"].mean(),
                         "llm_calls": e["controller_calls"].mean() if ctl == "llm" else 0.0,
                         "tool_calls": e["tool_calls"].mean(), "fallbacks": e["llm_fallbacks"].mean(),
                         "calls_per_1000_tasks": 1000 * e["controller_calls"].mean() / e["n_tasks"].mean(),
                         "n_seeds": len(e)})
    return pd.DataFrame(rows, columns=["scenario", *TABLE6_COLUMNS])


def to_markdown(df: pd.DataFrame, floatfmt: str = ".1f") -> str:
    """A GitHub-flavoured Markdown table (via pandas/tabulate)."""
    return df.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def to_latex(df: pd.DataFrame, caption: str, label: str) -> str:
    """A booktabs LaTeX table (via pandas' Styler)."""
    sty = (df.style.format(precision=1, na_rep="--", escape="latex")
           .format_index(escape="latex", axis=1).hide(axis="index"))
    return sty.to_latex(caption=caption, label=label, hrules=True, position="t")
