"""Contract test for every registered policy and controller (benchopt's `benchopt test` idea), and
the classic baselines' expected orderings."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from e3.agent.controllers import controller_names
from e3.config import load_config
from e3.experiment.run import simulate
from e3.policies.base import get_policy, policy_names
from tests.helpers import scenarios_with_inputs

SHORT = 80


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.mark.parametrize("policy", [p for p in policy_names() if p != "e3"])
def test_every_policy_runs_every_scenario_and_conserves_tasks(cfg, tmp_path, policy):
    cls = get_policy(policy)
    assert cls.__doc__, f"{policy} needs a docstring with its reference"
    for sc in scenarios_with_inputs():
        for i, over in enumerate([{}, cls.test_config] if cls.test_config else [{}]):
            out = tmp_path / f"{sc}{i}"
            s = simulate(cfg, sc, policy, 1, out, n_tasks=SHORT, policy_overrides=over or None)
            df = pd.read_parquet(out / "tasks.parquet")
            assert df["task_id"].tolist() == list(range(SHORT)), (policy, sc, over)
            assert (df["latency_ms"] > 0).all() and s["decisions"] >= SHORT


@pytest.fixture(scope="module")
def readme_plugin(repo, tmp_path_factory):
    """The README's example plugin as a file (one file per process: a name registered from two
    files is an error, issue 33)."""
    import re

    section = (repo / "README.md").read_text().split("### Add your own baseline", 1)[1]
    plugin = tmp_path_factory.mktemp("readme_plugin") / "least_loaded.py"
    plugin.write_text(re.search(r"```python\n(.*?)```", section, re.S).group(1))
    return str(plugin)


def test_plugin_policies_obey_the_contract(cfg, tmp_path, readme_plugin, user_plugins):
    # issue 32, item 2: the contract the built-in policies meet, for the README's example plugin
    # and every `pytest --plugin FILE` (how a user checks their own baseline)
    from e3.policies.base import load_plugins

    plugins = (readme_plugin, *user_plugins)
    load_plugins(plugins)
    added = [p for p in policy_names(plugins) if not get_policy(p, plugins).__module__.startswith("e3.")]
    assert "least_loaded" in added
    for policy in added:
        cls = get_policy(policy, plugins)
        assert cls.__doc__, f"{policy} needs a docstring with its reference"
        for sc in scenarios_with_inputs():
            out = tmp_path / policy / sc
            s = simulate(cfg, sc, policy, 1, out, n_tasks=SHORT, plugins=plugins)
            df = pd.read_parquet(out / "tasks.parquet")
            assert df["task_id"].tolist() == list(range(SHORT)), (policy, sc)
            assert (df["latency_ms"] > 0).all() and s["decisions"] >= SHORT


@pytest.mark.parametrize("controller", [c for c in controller_names() if c != "llm"])
def test_every_controller_drives_e3_on_every_scenario(cfg, tmp_path, controller):
    for sc in scenarios_with_inputs():
        s = simulate(cfg, sc, "e3", 1, tmp_path / sc, n_tasks=SHORT, policy_overrides={"controller": controller})
        assert s["policy_summary"]["controller"] == controller and s["n_tasks"] == SHORT


def _mean_latency(cfg, tmp_path, scenario, policy, seeds=(1, 2, 3), **over):
    return float(np.mean([simulate(cfg, scenario, policy, s, tmp_path / f"{policy}{s}", policy_overrides=over or None)
                          ["latency_ms"]["mean"] for s in seeds]))


@pytest.mark.parametrize("policy", ["jsq", "sed_ewma", "dts", "ducb"])
def test_queue_aware_baselines_beat_round_robin_on_a_static_heterogeneous_pool(cfg, tmp_path, policy):
    # Round robin ignores both queues and speeds; on a heterogeneous pool every queue-aware policy
    # should do better (JSQ: Winston 1977; SED: Whitt 1986). 0.2.0's pairs are 1.14x and 1.27x
    # apart (MLPerf-bounded), so round robin itself is only about 10 % above the Oracle.
    rr = _mean_latency(cfg, tmp_path, "warmup_0", "round_robin")
    assert _mean_latency(cfg, tmp_path, "warmup_0", policy) < 0.99 * rr


def test_sed_ewma_beats_jsq_when_speeds_differ(cfg, tmp_path):
    # JSQ counts tasks; SED weighs them by learned speed, which matters on a heterogeneous pool.
    assert _mean_latency(cfg, tmp_path, "warmup_0", "sed_ewma") < _mean_latency(cfg, tmp_path, "warmup_0", "jsq")


def test_jsq_d_with_d_one_is_random_and_worse_than_jsq(cfg, tmp_path):
    assert _mean_latency(cfg, tmp_path, "warmup_0", "jsq_d", d=1) > _mean_latency(cfg, tmp_path, "warmup_0", "jsq")


def test_jsq_d_rejects_a_bad_d(cfg, tmp_path):
    from e3.errors import ConfigError

    with pytest.raises(ConfigError, match="d must be an integer"):
        simulate(cfg, "warmup_0", "jsq_d", 1, tmp_path / "r", n_tasks=10, policy_overrides={"d": 0})


def test_rls_opm_recovers_eq1_coefficients():
    import random

    from e3.agent.opm_rls import RLSPerformanceModel
    from e3.mlperf.pool import DevicePrior
    from e3.sim.observation import CompletedTask
    from e3.sim.workload import TaskView

    pool = [DevicePrior("L", "llm", "x", "v0", alpha_prior_ms_per_token=1.0, beta_prior_ms_per_token=1.0)]
    opm = RLSPerformanceModel(pool, lam=0.99)
    rng = random.Random(0)
    for i in range(300):
        t = TaskView(i, "llm", rng.choice([128, 512, 2048]), rng.choice([32, 128, 256]), 0.0)
        y = 0.2 * t.input_tokens + 25.0 * t.output_tokens
        opm.observe(CompletedTask(t, "L", 0.0, 0.0, y * rng.lognormvariate(0, 0.02)))
    e = opm.est["L"]
    assert e.alpha == pytest.approx(0.2, rel=0.05) and e.beta == pytest.approx(25.0, rel=0.05)


def test_page_hinkley_detects_a_hidden_drift_and_refits(cfg, tmp_path):
    c = copy.deepcopy(cfg)
    s = simulate(c, "drift", "e3", 1, tmp_path / "r", policy_overrides={"controller": "page_hinkley"})
    assert s["policy_summary"]["ph_detections"] >= 1
    import json

    audit = [json.loads(x) for x in (tmp_path / "r/audit.jsonl").read_text().splitlines()]
    hits = [a for a in audit if a["caller"] == "page_hinkley:detection"]
    assert hits and all(a["tool"] == "trigger_online_profile_update" for a in hits)


def test_readme_add_your_own_baseline_example_runs(cfg, tmp_path, readme_plugin):
    s = simulate(cfg, "churn", "least_loaded", 1, tmp_path / "r", n_tasks=60, plugins=(readme_plugin,))
    assert s["policy"] == "least_loaded" and s["n_tasks"] == 60
