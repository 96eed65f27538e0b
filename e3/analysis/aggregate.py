"""Collect per-run summaries and traces into two small, committed aggregate tables.

* ``runs.csv``: one row per (scenario, policy, controller, seed) with the run's metrics.
* ``trajectories.csv``: per (scenario, policy, controller, task index), the latency mean and the
  10th/90th percentiles across seeds, and the stutter rate across seeds (for Fig. 3 and Fig. 4).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from e3.errors import InputError
from e3.io import write_text_atomic
from e3.run_summary import read_run_summary

RUN_KEYS = ("scenario", "policy", "controller", "seed")


def run_row(summary_path: str | Path) -> dict:
    """Flatten one ``summary.json`` into a row (latencies in ms, rates in [0, 1]).

    Raises:
        InputError: missing file or field.
    """
    p = Path(summary_path)
    s = read_run_summary(p, "e3")  # the run-summary schema: a malformed run fails here, named
    try:
        ps = s.get("policy_summary", {})
        return {
            "scenario": s["scenario"], "policy": s["policy"], "controller": s["controller"],
            "seed": s["seed"], "n_tasks": s["n_tasks"], "warmup_budget_tasks": s["warmup_budget_tasks"],
            "avg_latency_ms": s["latency_ms"]["mean"], "p50_latency_ms": s["latency_ms"]["p50"],
            "p95_latency_ms": s["latency_ms"]["p95"], "p99_latency_ms": s["latency_ms"]["p99"],
            "mean_wait_ms": s["oracle_free"]["mean_wait_ms"], "stutter_rate": s["stutter_rate"],
            "jain_fairness_utilisation": s["oracle_free"]["jain_fairness_utilisation"],
            "redispatches": s["oracle_free"]["redispatches"],
            "controller_calls": ps.get("controller_calls", 0), "tool_calls": ps.get("tool_calls", 0),
            "tool_errors": ps.get("tool_errors", 0), "llm_requests": ps.get("llm_requests", 0),
            "llm_fallbacks": ps.get("llm_fallbacks", 0), "llm_no_action": ps.get("llm_no_action", 0),
            "llm_prompt_tokens": ps.get("llm_prompt_tokens", 0),
            "llm_completion_tokens": ps.get("llm_completion_tokens", 0),
            "config_hash": s["config_hash"],
        }
    except FileNotFoundError:
        raise InputError(p, "(file)", "missing summary") from None
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputError(p, str(exc), "missing or malformed field") from None


def collect_runs(summary_paths: list[str | Path]) -> pd.DataFrame:
    """All runs, sorted by (scenario, policy, controller, seed)."""
    df = pd.DataFrame([run_row(p) for p in summary_paths])
    return df.sort_values(list(RUN_KEYS), kind="stable").reset_index(drop=True)


def trajectories(trace_paths: list[str | Path], runs: pd.DataFrame) -> pd.DataFrame:
    """Per-task latency statistics across seeds for each (scenario, policy, controller).

    ``trace_paths[i]`` must belong to ``runs.iloc[i]`` (same order as the summaries).

    Returns:
        One row per (scenario, policy, controller, task_id): ``latency_mean_ms``, the 10th and
        90th percentiles ``latency_q10_ms`` / ``latency_q90_ms`` (``np.quantile``, linear),
        ``n_seeds`` and ``stutter_rate``.

    Raises:
        ValueError: no traces, or the numbers of traces and runs differ.
    """
    if len(trace_paths) != len(runs):
        raise ValueError(f"trajectories: {len(trace_paths)} traces for {len(runs)} runs")
    if not trace_paths:
        raise ValueError("trajectories: no traces")
    cols = ["task_id", "latency_ms", "stutter"]
    # Read with pyarrow and label rows by repetition: one DataFrame per trace with four constant
    # columns set one by one cost more than the statistics (1,200 traces in the default run).
    tables = [pq.read_table(path, columns=cols) for path in trace_paths]
    rows = [t.num_rows for t in tables]
    df = pd.DataFrame({
        **{k: np.repeat(runs[k].to_numpy(), rows) for k in ("scenario", "policy", "controller")},
        **{c: np.concatenate([t.column(c).to_numpy() for t in tables]) for c in cols},
    })
    g = df.groupby(["scenario", "policy", "controller", "task_id"], sort=True)
    out = g["latency_ms"].agg(latency_mean_ms="mean", n_seeds="count")
    codes = g.ngroup().to_numpy()
    kept = codes == codes  # rows with a missing key are in no group (NaN), as groupby drops them
    q10, q90 = group_quantiles(codes[kept].astype(np.intp), df["latency_ms"].to_numpy()[kept], (0.1, 0.9))
    out.insert(1, "latency_q10_ms", q10)
    out.insert(2, "latency_q90_ms", q90)
    out["stutter_rate"] = g["stutter"].mean()
    return out.reset_index()


def group_quantiles(group: np.ndarray, values: np.ndarray, qs: tuple[float, ...]) -> list[np.ndarray]:
    """``np.quantile(values[group == k], q)`` for every group k and each q, bit for bit.

    Groups of equal size are stacked into the rows of one array and each q is one
    ``np.quantile(..., axis=1)`` call (the same partition and interpolation per row as a call per
    group, which cost two thirds of the aggregate job when made per group through pandas).

    Args:
        group: shape (n,), group number of each value, 0..G-1 (e.g. ``GroupBy.ngroup()``).
        values: shape (n,), the values (e.g. latencies in ms).
        qs: quantiles in [0, 1].

    Returns:
        One float64 array of shape (G,) per q, indexed by group number.

    Raises:
        ValueError: ``group`` and ``values`` differ in length, or a group number is missing.
    """
    if len(group) != len(values):
        raise ValueError(f"group_quantiles: {len(group)} group numbers for {len(values)} values")
    order = np.argsort(group, kind="stable")
    sizes = np.bincount(group) if len(group) else np.zeros(0, dtype=np.intp)
    if (sizes == 0).any():
        raise ValueError(f"group_quantiles: group {int(np.flatnonzero(sizes == 0)[0])} has no values")
    starts = np.cumsum(sizes) - sizes
    ordered = np.asarray(values, dtype=np.float64)[order]
    out = [np.empty(len(sizes)) for _ in qs]
    for n in np.unique(sizes):
        rows = np.flatnonzero(sizes == n)
        block = ordered[starts[rows][:, None] + np.arange(n)]
        for res, q in zip(out, qs, strict=True):
            res[rows] = np.quantile(block, q, axis=1)
    return out


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str = "%.6g") -> None:
    """Write ``df`` as CSV atomically with a fixed float format (byte-stable reruns)."""
    write_text_atomic(path, df.to_csv(index=False, float_format=float_format, lineterminator="\n"))
