"""Generated edge-scale pools (issue 11): drawn from every MLPerf edge record, seeded, named
deterministically, the same truth-mismatch model; scenario device selectors and horizon rescaling."""

from __future__ import annotations

import json

import pytest
import yaml

from e3.config import load_config
from e3.errors import ConfigError
from e3.experiment.run import load_run_inputs, simulate
from e3.mlperf.pool import generate_pool, generated_mismatch, generator_records, resolve_pool
from e3.mlperf.priors import load_priors
from e3.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.fixture(scope="module")
def records(repo):
    return load_priors(repo / "results/priors/edge_mobile_generative.jsonl")


def test_pool_is_seeded_named_and_draws_from_every_edge_record(records):
    gen = {"devices": 400, "llm_fraction": 0.5, "heterogeneity_sigma": 0.25, "seed": 0}
    a, b = generate_pool(records, gen, 1024), generate_pool(records, gen, 1024)
    assert a == b
    assert [d.name for d in a] == [f"LLM#{i}" for i in range(200)] + [f"SD#{i}" for i in range(200)]
    for bench, kind in (("llama3.1-8b-edge", "llm"), ("stable-diffusion-xl", "sdxl")):
        keys = {d.record_key for d in a if d.kind == kind}
        assert len(keys) == len(generator_records(records, bench)) > 1  # not only the paper's four
    other = generate_pool(records, {**gen, "seed": 1}, 1024)
    assert other != a
    flat = generate_pool(records, {**gen, "heterogeneity_sigma": 0.0}, 1024)
    assert len({(d.record_key, d.c_prior_ms, d.alpha_prior_ms_per_token) for d in flat}) == len(
        {d.record_key for d in flat})


def test_pool_keeps_one_device_of_each_kind(records):
    pool = generate_pool(records, {"devices": 2, "llm_fraction": 0.99}, 1024)
    assert sorted(d.kind for d in pool) == ["llm", "sdxl"]
    with pytest.raises(ConfigError, match="at least 2"):
        generate_pool(records, {"devices": 1}, 1024)


def test_mismatch_follows_the_record_of_each_named_device(cfg, records):
    named = resolve_pool(records, cfg["pool"], 1024)
    pool = generate_pool(records, {"devices": 200}, 1024)
    mm = generated_mismatch(pool, named, cfg["truth"]["mismatch"])
    by_record = {d.record_key: d.name for d in named}
    for d in pool:
        if d.record_key in by_record:
            assert mm[d.name] == cfg["truth"]["mismatch"][by_record[d.record_key]]
        else:
            assert d.name not in mm


def test_arrival_rate_scales_with_the_device_count(cfg):
    big = {**cfg, "pool_generator": {"devices": 100, "llm_fraction": 0.5, "heterogeneity_sigma": 0.25, "seed": 0,
                                     "scenario": "SingleStream"}}
    ri = load_run_inputs(big, "warmup_0", "oracle")
    assert len(ri.pool) == 100
    assert ri.workload.arrival_rate_per_s == pytest.approx(cfg["workload"]["arrival_rate_per_s"] * 100 / 4)


def _write(tmp_path, doc):
    p = tmp_path / f"{doc['name']}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def test_selectors_pick_disjoint_quarters_and_scale_with_the_pool(tmp_path):
    kinds = {f"LLM#{i}": "llm" for i in range(8)} | {f"SD#{i}": "sdxl" for i in range(8)}
    doc = {"name": "sel", "description": "x", "semantic": [
        {"device": {"kind": "llm", "fraction": 0.25, "offset": 0.0}, "start_task": 1, "end_task": 5,
         "label": "a", "slowdown": 2.0},
        {"device": {"kind": "llm", "fraction": 0.25, "offset": 0.25}, "start_task": 1, "end_task": 5,
         "label": "b", "slowdown": 2.0}]}
    sc = load_scenario(_write(tmp_path, doc), kinds)
    assert [w.device for w in sc.semantic] == ["LLM#0", "LLM#1", "LLM#2", "LLM#3"]
    # two LLM devices: both quarters round to LLM#0 (at least one device each), so the windows overlap
    with pytest.raises(ConfigError, match="overlaps"):
        load_scenario(_write(tmp_path, doc), {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl"})


def test_selector_past_the_pool_and_missing_kind_are_errors(tmp_path):
    kinds = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl"}
    doc = {"name": "bad", "description": "x", "drift": [
        {"device": {"kind": "llm", "fraction": 1.0, "offset": 0.5}, "start_task": 1, "end_task": 5, "factor": 2.0}]}
    with pytest.raises(ConfigError, match="drift.0.device"):
        load_scenario(_write(tmp_path, doc), kinds)
    doc["drift"][0]["device"] = {"kind": "sdxl", "fraction": 0.5}
    with pytest.raises(ConfigError, match="LLM devices"):
        load_scenario(_write(tmp_path, doc), kinds)


def test_reference_horizon_rescales_every_index(tmp_path):
    doc = {"name": "resc", "description": "x", "reference_horizon_tasks": 300, "warmup_budget_tasks": 30,
           "churn": [{"device": "SD#0", "leave_task": 50, "return_task": 110}]}
    sc = load_scenario(_write(tmp_path, doc), {"LLM#0": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}, 3000)
    assert sc.warmup_budget_tasks == 300
    assert (sc.churn[0].leave_task, sc.churn[0].return_task) == (500, 1100)
    as_written = load_scenario(_write(tmp_path, doc), {"LLM#0": "llm", "SD#0": "sdxl", "SD#1": "sdxl"})
    assert (as_written.churn[0].leave_task, as_written.warmup_budget_tasks) == (50, 30)


@pytest.mark.parametrize("scenario", ["scale_semantic", "scale_churn", "scale_drift"])
def test_scale_scenarios_run_on_a_generated_pool(cfg, tmp_path, scenario):
    big = {**cfg, "pool_generator": {"devices": 16, "llm_fraction": 0.5, "heterogeneity_sigma": 0.25, "seed": 0,
                                     "scenario": "SingleStream"}}
    for pol in ("oracle", "e3"):
        s = simulate(big, scenario, pol, 1, tmp_path / pol, n_tasks=400)
        assert s["n_tasks"] == 400 and len(s["tasks_per_device"]) == 16
    summary = json.loads((tmp_path / "e3/summary.json").read_text())
    assert summary["scenario"] == scenario


def test_cli_devices_option(tmp_path):
    from e3.cli import main

    assert main(["simulate", "--scenario", "scale_drift", "--policy", "round_robin", "--seed", "1", "--devices",
                 "10", "--tasks", "100", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert len(json.loads((tmp_path / "r/summary.json").read_text())["tasks_per_device"]) == 10
    with pytest.raises(SystemExit):  # argparse names the option and the bound
        main(["simulate", "--scenario", "drift", "--policy", "round_robin", "--seed", "1", "--devices", "1",
              "--out", str(tmp_path / "q")])
