"""The release note's before/after table (e3.analysis.release_diff)."""

import pandas as pd

from e3.analysis.release_diff import diff_table, summarise


def _runs(lat_e3):
    return pd.DataFrame([{"scenario": "drift", "policy": p, "controller": c, "seed": s, "avg_latency_ms": v + s,
                          "stutter_rate": 0.0} for s in (1, 2) for p, c, v in
                         (("oracle", "none", 100.0), ("e3", "rules", lat_e3))])


def test_gap_is_to_the_oracle_of_the_same_scenario_and_missing_cells_show_a_dash():
    s = summarise(_runs(150.0)).set_index(["policy"])
    assert s.loc["e3", "gap_pct"] == 100.0 * (151.5 / 101.5 - 1.0)
    table = diff_table(_runs(150.0), _runs(120.0))
    assert "| drift | e3/rules | 152 | 122 | +49.3 | +19.7 |" in table
    assert "e3/llm" not in table
