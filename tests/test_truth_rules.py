"""Issue 28, deliverable 4: the hidden truth and the default rate are what the rules written beside
them in config/config.yaml give, computed here from the frozen MLPerf records (never from a
policy's result); and every run reports each device's utilisation and mean wait."""

from __future__ import annotations

import json
from statistics import fmean

import pytest

from e3.config import load_config
from e3.experiment.run import simulate, workload_spec
from e3.mlperf.pool import generator_records, resolve_pool
from e3.mlperf.priors import load_priors
from e3.sim.load import expected_service_ms, median_base
from e3.sim.truth import TruthSpec


@pytest.fixture(scope="module")
def setup(repo):
    cfg = load_config(repo / "config/config.yaml")
    records = load_priors(repo / cfg["priors"]["frozen"])
    pool = resolve_pool(records, cfg["pool"], cfg["priors"]["reference_input_tokens"])
    t = cfg["truth"]
    spec = TruthSpec({k: dict(v) for k, v in t["mismatch"].items()}, t["mismatch_sigma"], t["noise_sigma"])
    return cfg, records, pool, spec


def _record(records, benchmark, system, rnd):
    (r,) = [r for r in generator_records(records, benchmark) if system in r["system"] and r["round"] == rnd]
    return r["metrics"]


def _mean_service_ms(metrics, kind, wl, ref_tokens):
    if kind == "sdxl":
        return metrics["latency_ms_p99"]
    return (metrics["ttft_ms_p99"] / ref_tokens * fmean(wl.input_token_bins)
            + metrics["tpot_ms_p99"] * fmean(wl.output_token_bins))


def test_t1_factors_are_a_systems_change_between_rounds(setup):
    cfg, records, _, _ = setup
    old, new = (_record(records, "llama3.1-8b-edge", "Jetson AGX Thor", r) for r in ("v5.1", "v6.0"))
    llm = {"alpha": round(new["ttft_ms_p99"] / old["ttft_ms_p99"], 4), "beta": round(new["tpot_ms_p99"] / old["tpot_ms_p99"], 4)}
    orin = [_record(records, "stable-diffusion-xl", "Jetson AGX Orin", r)["latency_ms_p99"] for r in ("v4.0", "v4.1")]
    step = orin[0] / orin[1]
    mismatch = cfg["truth"]["mismatch"]
    assert mismatch["LLM#0"] == llm and mismatch["LLM#1"] == llm
    assert mismatch["SD#0"] == {"c": round(step, 4)} and mismatch["SD#1"] == {"c": round(1 / step, 4)}


def test_t2_priors_rank_every_pair_wrongly_and_t3_spread_within_the_records(setup):
    cfg, records, pool, spec = setup
    wl = workload_spec(cfg)
    ref = cfg["priors"]["reference_input_tokens"]
    base = median_base(pool, spec)
    for kind, bench in (("llm", "llama3.1-8b-edge"), ("sdxl", "stable-diffusion-xl")):
        devs = [d for d in pool if d.kind == kind]
        prior = {d.name: d.prior_service_ms(fmean(wl.input_token_bins), fmean(wl.output_token_bins)) for d in devs}
        true = {d.name: expected_service_ms(base[d.name], wl) for d in devs}
        assert min(prior, key=prior.get) == max(true, key=true.get), kind  # T2: inverted
        spread = [_mean_service_ms(r["metrics"], kind, wl, ref) for r in generator_records(records, bench)]
        assert max(true.values()) / min(true.values()) <= max(spread) / min(spread), kind  # T3


def test_rate_rule_the_faster_sdxl_device_alone_at_utilisation_one(setup):
    cfg, _, pool, spec = setup
    wl = workload_spec(cfg)
    base = median_base(pool, spec)
    fastest = min(expected_service_ms(base[d.name], wl) for d in pool if d.kind == "sdxl")
    rule = 2 * 1000.0 / fastest  # alternate mix: half the arrivals are SDXL
    assert cfg["workload"]["arrival_rate_per_s"] == round(rule, 2)


def test_summary_reports_each_devices_utilisation_and_mean_wait(tmp_path, setup):
    cfg = setup[0]
    simulate(cfg, "warmup_0", "round_robin", 1, tmp_path / "r", n_tasks=60)
    s = json.loads((tmp_path / "r/summary.json").read_text())
    devices = {d["name"] for d in cfg["pool"]}
    assert set(s["utilisation"]) == set(s["mean_wait_ms_per_device"]) == devices
    n = s["tasks_per_device"]
    total_wait = sum(s["mean_wait_ms_per_device"][d] * n[d] for d in devices)
    assert total_wait / s["n_tasks"] == pytest.approx(s["oracle_free"]["mean_wait_ms"], rel=1e-9)
