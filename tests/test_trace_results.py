"""The trace table and Fig. 8 on tiny synthetic trace runs."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from e3.analysis.trace_results import TRACE_COLUMNS, collect_trace_runs, fig8_trace, trace_table
from e3.config import load_config
from e3.errors import InputError
from e3.experiment.run import simulate


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("traceruns")
    trace = tmp / "m.jsonl"
    trace.write_text("".join(json.dumps({"timestamp": 700 * k, "input_length": 50 + 97 * (k % 23),
                                         "output_length": 5 + 11 * (k % 7)}) + "\n" for k in range(60)))
    sc = tmp / "tiny_trace.yaml"
    sc.write_text(yaml.safe_dump({"name": "tiny_trace", "description": "synthetic", "block": "trace",
                                  "workload": {"arrivals": "trace", "trace": {"path": str(trace), "format": "mooncake"}}}))
    cfg = load_config()
    paths = []
    for pol in ("oracle", "round_robin", "sed_ewma"):
        for seed in (1, 2):
            out = tmp / f"{pol}{seed}"
            simulate(cfg, str(sc), pol, seed, out)
            paths.append(out / "summary.json")
    return collect_trace_runs(paths), tmp


def test_trace_table_rows_gaps_and_load(runs):
    df, _ = runs
    assert set(df["n_devices"]) == {4} and (df["rho_pool"].round(6) == 0.7).all()
    t = trace_table(df, [{"policy": "oracle"}, {"policy": "round_robin"}, {"policy": "sed_ewma"}])
    assert list(t.columns) == TRACE_COLUMNS and len(t) == 3
    assert t["policy"].tolist() == ["oracle", "round_robin", "sed_ewma"]
    o, rr = t.iloc[0], t.iloc[1]
    assert o["vs_oracle_pct"] == 0.0 and o["p99_vs_oracle_pct"] == 0.0 and (t["n_seeds"] == 2).all()
    mean_rr = df[df["policy"] == "round_robin"]["avg_latency_ms"].mean()
    assert rr["vs_oracle_pct"] == pytest.approx(100 * (mean_rr / o["avg_latency_ms"] - 1))
    assert rr["ci95_low_ms"] < rr["avg_latency_ms"] < rr["ci95_high_ms"]
    # a cell whose seeds the Oracle lacks has no gap
    t1 = trace_table(df[~((df["policy"] == "oracle") & (df["seed"] == 2))])
    assert math.isnan(t1[t1["policy"] == "round_robin"]["vs_oracle_pct"].iloc[0])


def test_fig8_writes_png_and_pdf(runs):
    df, tmp = runs
    paths = fig8_trace(trace_table(df), tmp / "fig8_trace")
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_a_non_trace_run_is_refused(tmp_path):
    simulate(load_config(), "warmup_0", "round_robin", 1, tmp_path / "r", n_tasks=10)
    with pytest.raises(InputError, match="not a trace-workload run"):
        collect_trace_runs([tmp_path / "r" / "summary.json"])
