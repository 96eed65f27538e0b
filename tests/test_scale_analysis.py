"""The scale table (issue 11): gaps against the Oracle on the same seeds and pool size, stutter in %."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from e3.analysis.scale import SCALE_COLUMNS, scale_table


def _runs():
    rows = []
    for n in (16, 100):
        for seed in (1, 2):
            rows.append({"devices": n, "scenario": "s", "policy": "oracle", "controller": "none", "seed": seed,
                         "n_tasks": 10 * n, "avg_latency_ms": 100.0 * seed, "p99_latency_ms": 1.0, "stutter_rate": 0.0,
                         "min_device_tasks": 3})
            rows.append({"devices": n, "scenario": "s", "policy": "e3", "controller": "rules", "seed": seed,
                         "n_tasks": 10 * n, "avg_latency_ms": 150.0 * seed * (n / 16), "p99_latency_ms": 2.0,
                         "stutter_rate": 0.02, "min_device_tasks": 0})
    return pd.DataFrame(rows)


def test_gap_uses_the_oracle_of_the_same_pool_size():
    t = scale_table(_runs(), [{"policy": "oracle"}, {"policy": "e3", "controller": "rules"}], ["s"], [16, 100])
    assert list(t.columns) == SCALE_COLUMNS
    e3 = t[t["policy"] == "e3"].set_index("devices")
    assert e3.loc[16, "gap_vs_oracle_pct"] == pytest.approx(50.0)
    assert e3.loc[100, "gap_vs_oracle_pct"] == pytest.approx(100 * (150 * 100 / 16 / 100 - 1))
    assert e3.loc[16, "stutter_pct"] == pytest.approx(2.0)
    assert (t[t["policy"] == "oracle"]["gap_vs_oracle_pct"] == 0).all()


def test_missing_oracle_seeds_give_no_gap():
    runs = _runs()
    runs = runs[~((runs["policy"] == "oracle") & (runs["seed"] == 2))]
    t = scale_table(runs, [{"policy": "e3", "controller": "rules"}], ["s"], [16])
    assert math.isnan(t["gap_vs_oracle_pct"].iloc[0])
