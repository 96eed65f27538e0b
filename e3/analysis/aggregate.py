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

from e3.errors import InputError
from e3.io import write_text_atomic

RUN_KEYS = ("scenario", "policy", "controller", "seed")


def run_row(summary_path: str | Path) -> dict:
    """Flatten one ``summary.json`` into a row (latencies in ms, rates in [0, 1]).

    Raises:
        InputError: missing file or field.
    """
    p = Path(summary_path)
    try:
        s = json.loads(p.read_text())
        ps = s.get("policy_summary", {})
        return {
            "scenario": s["scenario"], "policy": s["policy"], "controller": ps.get("controller", "none"),
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
    """
    frames = []
    for path, (_, r) in zip(trace_paths, runs.iterrows(), strict=True):
        t = pd.read_parquet(path, columns=["task_id", "latency_ms", "stutter"])
        t["scenario"], t["policy"], t["controller"], t["seed"] = r["scenario"], r["policy"], r["controller"], r["seed"]
        frames.append(t)
    df = pd.concat(frames, ignore_index=True)
    g = df.groupby(["scenario", "policy", "controller", "task_id"], sort=True)
    out = g["latency_ms"].agg(latency_mean_ms="mean",
                              latency_q10_ms=lambda x: float(np.quantile(x, 0.1)),
                              latency_q90_ms=lambda x: float(np.quantile(x, 0.9)),
                              n_seeds="count")
    out["stutter_rate"] = g["stutter"].mean()
    return out.reset_index()


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str = "%.6g") -> None:
    """Write ``df`` as CSV atomically with a fixed float format (byte-stable reruns)."""
    write_text_atomic(path, df.to_csv(index=False, float_format=float_format, lineterminator="\n"))
