"""Issue 32, item 3: one run-summary schema for every system, checked when a run is written and
when an aggregation reads it; a malformed run fails with its file and field named."""

from __future__ import annotations

import json

import pytest

from e3.config import load_config
from e3.errors import InputError
from e3.run_summary import read_run_summary

COMMON = ("system", "scenario", "policy", "controller", "seed", "config_hash", "scenario_hash", "policy_summary",
          "versions")


@pytest.fixture(scope="module")
def runs(repo, tmp_path_factory):
    from e3.experiment.run import simulate as e3_sim
    from e3.fairness.run import simulate as fairness_sim
    from e3.placement.run import simulate as placement_sim

    cfg = load_config(repo / "config" / "config.yaml")
    tmp = tmp_path_factory.mktemp("runs")
    e3_sim(cfg, "drift", "e3", 1, tmp / "e3", n_tasks=40)
    fairness_sim(cfg, "mec_city", "static_sect", None, 1, tmp / "fairness")
    placement_sim(cfg, "agents_global", "greedy_nearest", None, 1, tmp / "placement")
    return tmp


@pytest.mark.parametrize("system", ["e3", "fairness", "placement"])
def test_every_system_writes_the_same_top_level(runs, system):
    s = read_run_summary(runs / system / "summary.json", system)
    assert s["system"] == system and all(k in s for k in COMMON)
    assert s["controller"] and s["versions"]["e3"]


def _corrupt(runs, tmp_path, change) -> str:
    s = json.loads((runs / "fairness" / "summary.json").read_text())
    change(s)
    p = tmp_path / "summary.json"
    p.write_text(json.dumps(s))
    return str(p)


def test_a_missing_field_is_named(runs, tmp_path):
    p = _corrupt(runs, tmp_path, lambda s: s.pop("versions"))
    with pytest.raises(InputError, match=r"summary.json: field '\(top level\)': 'versions' is a required property"):
        read_run_summary(p)


def test_a_system_field_the_tables_read_is_checked(runs, tmp_path):
    p = _corrupt(runs, tmp_path, lambda s: s.update(jain_normalized=1.7))
    with pytest.raises(InputError, match="field 'jain_normalized'"):
        read_run_summary(p)


def test_a_run_of_another_system_is_refused(runs):
    with pytest.raises(InputError, match="a 'fairness' run where a 'placement' run was expected"):
        read_run_summary(runs / "fairness" / "summary.json", "placement")


def test_nan_is_refused_by_name(runs, tmp_path):
    p = _corrupt(runs, tmp_path, lambda s: s.update(mean_latency_s=float("nan")))
    with pytest.raises(InputError, match="field 'mean_latency_s': NaN is not allowed"):
        read_run_summary(p)


def test_the_aggregations_read_through_the_schema(runs, tmp_path):
    from e3.analysis.aggregate import run_row
    from e3.fairness.analysis import fairness_row
    from e3.placement.analysis import migration_row

    assert run_row(runs / "e3" / "summary.json")["controller"] == "rules"
    assert fairness_row(runs / "fairness" / "summary.json")["policy"] == "static_sect"
    assert migration_row(runs / "placement" / "summary.json")["qos_ratio"] >= 0
    with pytest.raises(InputError, match="'placement' run where a 'e3' run was expected"):
        run_row(runs / "placement" / "summary.json")
