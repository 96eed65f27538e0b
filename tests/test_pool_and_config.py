"""Device-pool resolution against the frozen priors, and config validation."""

from __future__ import annotations

import pytest

from e3.config import load_config
from e3.errors import ConfigError
from e3.mlperf.pool import resolve_pool
from e3.mlperf.priors import load_priors


@pytest.fixture(scope="module")
def priors(repo):
    return load_priors(repo / "results/priors/edge_mobile_generative.jsonl")


def test_default_pool_is_the_papers(priors, repo):
    cfg = load_config(repo / "config/config.yaml")
    pool = resolve_pool(priors, cfg["pool"], cfg["priors"]["reference_input_tokens"])
    by = {d.name: d for d in pool}
    assert [d.kind for d in pool] == ["llm", "llm", "sdxl", "sdxl"]
    assert "Thor" in by["LLM#0"].system and "B60" in by["LLM#1"].system
    assert "SE100" in by["SD#0"].system and "Orin" in by["SD#1"].system
    # Eq. 1 priors: beta = tpot_ms_p99; alpha = ttft_ms_p99 / reference input length.
    assert by["LLM#0"].beta_prior_ms_per_token == pytest.approx(21.964708)
    assert by["LLM#0"].alpha_prior_ms_per_token == pytest.approx(1416.993311 / 1024)
    assert by["SD#1"].c_prior_ms == pytest.approx(9967.749205)
    assert by["LLM#1"].prior_service_ms(1024, 128) == pytest.approx(330.726636 + 128 * 26.962395)


def test_unknown_system_lists_candidates(priors):
    with pytest.raises(ConfigError) as ei:
        resolve_pool(priors, [{"name": "X", "system": "Raspberry Pi", "benchmark": "stable-diffusion-xl",
                               "scenario": "SingleStream"}], 1024)
    msg = str(ei.value)
    assert "matches no record" in msg and "SE100" in msg and "Orin" in msg


def test_ambiguous_system_lists_matches(priors):
    with pytest.raises(ConfigError) as ei:
        resolve_pool(priors, [{"name": "X", "system": "Jetson Orin", "benchmark": "stable-diffusion-xl",
                               "scenario": "SingleStream"}], 1024)
    msg = str(ei.value)
    assert "matches 2 records" in msg and "v4.0" in msg and "v4.1" in msg


def test_bad_config_names_the_field(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("pool:\n  - {name: A, system: Thor, benchmark: llama-70b}\nworkload: {arrival_rate_per_s: 0.2}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(bad)
    assert "pool.0.benchmark" in str(ei.value) and str(bad) in str(ei.value)


def test_config_defaults_are_filled(tmp_path):
    c = tmp_path / "c.yaml"
    c.write_text("pool:\n  - {name: A, system: SE100, benchmark: stable-diffusion-xl}\n"
                 "workload: {arrival_rate_per_s: 0.2}\n")
    cfg = load_config(c)
    assert cfg["pool"][0]["scenario"] == "SingleStream"
    assert cfg["priors"]["reference_input_tokens"] == 1024
    assert cfg["workload"]["input_token_bins"] == [128, 256, 512, 1024, 2048]
    assert cfg["simulation"]["horizon_tasks"] == 300
