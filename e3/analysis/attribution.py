"""What each part of E3 earns (issue 28, deliverable 7): an ablation table that removes one
component at a time from ``e3`` with the ``rules`` controller, per regime.

Config ``attribution`` (``config/config.yaml``)::

    attribution:
      seeds: [1, ..., 10]
      scenarios: [warmup_0, ...]
      ablations: {NAME: {e3 policy parameter: value, ...}, ...}

Every run is ``e3`` (controller ``rules`` unless an ablation sets ``controller``) on the scenario's
common random numbers (seed s is the same workload and truth for every row), plus the Oracle as the
reference. For each (scenario, ablation) the table gives the mean latency over seeds, the gap to
the Oracle (%, Table 5's definition on the seed means), the stutter rate, and the paired change
against the full agent: the mean over seeds of ``100 * (L_ablation / L_full - 1)`` with its 95 %
t-interval (``statsmodels.stats.weightstats.DescrStatsW.tconfint_mean``). A positive change means
the component earns that much latency; an interval that covers 0 means it earns nothing
measurable at this operating point.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The columns of ``results/tables/attribution.csv``.
COLUMNS = ["scenario", "ablation", "removes", "mean_latency_ms", "gap_to_oracle_pct", "stutter_pct",
           "delta_vs_full_pct", "delta_ci95_lo_pct", "delta_ci95_hi_pct", "n_seeds"]


def paired_change_pct(ablated_ms: list[float], full_ms: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval of ``100 * (ablated / full - 1)`` over paired seeds.

    Args:
        ablated_ms, full_ms: mean latency (ms) per seed, the same seeds in the same order.

    Returns:
        (mean, lo, hi) in percent; lo = hi = mean for a single seed or identical changes.

    Raises:
        ValueError: lists of different lengths, empty, or a non-positive or non-finite latency.
    """
    from statsmodels.stats.weightstats import DescrStatsW

    a, f = np.asarray(ablated_ms, float), np.asarray(full_ms, float)
    if len(a) != len(f) or not len(a):
        raise ValueError(f"paired_change_pct: {len(a)} and {len(f)} seeds; need the same, at least one")
    if not (np.isfinite(a).all() and np.isfinite(f).all() and (a > 0).all() and (f > 0).all()):
        raise ValueError("paired_change_pct: latencies must be finite and > 0 ms")
    d = 100.0 * (a / f - 1.0)
    m = float(d.mean())
    if len(d) < 2 or float(d.std()) == 0.0:
        return m, m, m
    lo, hi = DescrStatsW(d).tconfint_mean(alpha=0.05)
    return m, float(lo), float(hi)


def run_attribution(cfg: dict[str, Any], spec: dict[str, Any] | None = None, progress=None) -> pd.DataFrame:
    """Simulate every (scenario, ablation, seed) of ``spec`` (default ``cfg["attribution"]``; the
    workflow passes it apart, as it keeps the study's grid out of the simulations' config hash)
    under ``cfg`` and return the table (:data:`COLUMNS`), one row per scenario and ablation,
    ``full`` first.

    Raises:
        e3.errors.ConfigError: an ablation sets a parameter the e3 policy does not have (raised by
            the policy when it is built).
    """
    from e3.experiment.run import simulate_summaries

    att = spec if spec is not None else cfg["attribution"]
    seeds = list(att["seeds"])
    ablations = {"full": {}, **att["ablations"]}
    rows = []
    for scenario in att["scenarios"]:
        oracle = [s["latency_ms"]["mean"] for s in simulate_summaries(cfg, scenario, "oracle", seeds)]
        lat: dict[str, list[float]] = {}
        stutter: dict[str, float] = {}
        for name, over in ablations.items():
            params = {"controller": "rules", **over}
            runs = simulate_summaries(cfg, scenario, "e3", seeds, policy_overrides=params)
            lat[name] = [s["latency_ms"]["mean"] for s in runs]
            stutter[name] = float(np.mean([s["stutter_rate"] for s in runs]))
            if progress:
                progress(f"{scenario} {name}: {np.mean(lat[name]):.1f} ms")
        o = float(np.mean(oracle))
        for name, over in ablations.items():
            m, lo, hi = paired_change_pct(lat[name], lat["full"])
            mean = float(np.mean(lat[name]))
            rows.append({"scenario": scenario, "ablation": name,
                         "removes": ", ".join(f"{k}={v}" for k, v in over.items()) or "(nothing: the full agent)",
                         "mean_latency_ms": mean, "gap_to_oracle_pct": 100.0 * (mean / o - 1.0),
                         "stutter_pct": 100.0 * stutter[name], "delta_vs_full_pct": m,
                         "delta_ci95_lo_pct": lo, "delta_ci95_hi_pct": hi, "n_seeds": len(seeds)})
    return pd.DataFrame(rows, columns=COLUMNS)


def write_tables(df: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Write ``STEM.csv``, ``STEM.md`` and ``STEM.tex`` atomically; returns the paths."""
    from e3.analysis.tables import to_latex, to_markdown
    from e3.io import write_text_atomic

    stem = Path(stem)
    out = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    write_text_atomic(out[0], df.to_csv(index=False, float_format="%.4f"))
    write_text_atomic(out[1], to_markdown(df.drop(columns=["removes"]), floatfmt=".1f"))
    write_text_atomic(out[2], to_latex(df.drop(columns=["removes"]),
                                       "What each part of E3 earns: one component removed at a time (e3, rules "
                                       "controller); change vs the full agent, paired over seeds, 95\\% CI.",
                                       "tab:attribution"))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m e3.analysis.attribution --config FILE --out STEM`` (the workflow's rule)."""
    from e3.config import load_config

    ap = argparse.ArgumentParser(prog="python -m e3.analysis.attribution",
                                 description="Run the E3 ablation study of config 'attribution' and write "
                                             "STEM.{csv,md,tex}: one component removed at a time, per regime.")
    ap.add_argument("--config", default="config/config.yaml", help="config file (default: %(default)s)")
    ap.add_argument("--out", default="results/tables/attribution", help="output stem (default: %(default)s)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    df = run_attribution(cfg, progress=lambda line: print(f"[e3] attribution {line}", file=sys.stderr, flush=True))
    for p in write_tables(df, args.out):
        print(f"[e3] wrote {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
