"""Policy behaviour: Oracle dominance, stutter and risk control, OPM recovery, registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from e3.agent.opm import OnlinePerformanceModel, fit_eq1_nonneg
from e3.config import load_config
from e3.errors import ConfigError
from e3.experiment.run import simulate
from e3.mlperf.pool import DevicePrior
from e3.sim.observation import CompletedTask
from e3.sim.workload import TaskView

SCENARIOS = ["warmup_0", "warmup_30", "semantic", "churn", "drift"]


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.fixture(scope="module")
def sweep(cfg, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    rows = []
    for sc in SCENARIOS:
        for pol in ["oracle", "round_robin", "fixed_heuristic", "e3"]:
            for seed in range(4):
                s = simulate(cfg, sc, pol, seed, out / f"{sc}-{pol}-{seed}")
                rows.append({"scenario": sc, "policy": pol, "seed": seed, "mean": s["latency_ms"]["mean"],
                             "stutter": s["stutter_rate"], "calls": s["policy_summary"].get("controller_calls")})
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_oracle_never_worse_on_average(sweep):
    # The paper's Oracle is greedy (SECT on the truth, no look-ahead), not optimal: under churn a
    # learning policy can match it within noise (0.2.0: e3 0.3 % below it on these seeds).
    means = sweep.groupby(["scenario", "policy"])["mean"].mean().unstack()
    for sc, row in means.iterrows():
        assert row["oracle"] <= 1.01 * row.drop("oracle").min(), f"{sc}: {row.to_dict()}"


@pytest.mark.slow
def test_static_baselines_are_clearly_worse_than_oracle(sweep):
    # 0.2.0's truth keeps each pair's true ratio within the spread of the MLPerf records (1.14x
    # LLM, 1.27x SDXL; tests/test_truth_rules.py), so static routing on the wrongly ranked priors
    # costs tens of percent, not the paper's 3-4x (docs/results.md, "Results")
    means = sweep[sweep.scenario == "warmup_0"].groupby("policy")["mean"].mean()
    assert means["fixed_heuristic"] > 1.2 * means["oracle"]
    assert means["round_robin"] > 1.05 * means["oracle"]


@pytest.mark.slow
def test_e3_suppresses_stutter_and_baselines_do_not(sweep):
    sem = sweep[sweep.scenario == "semantic"].groupby("policy")["stutter"].mean()
    assert sem["e3"] == 0.0
    assert sem["round_robin"] > 0.05


@pytest.mark.slow
def test_controller_calls_scale_with_events_not_tasks(cfg, tmp_path):
    short = simulate(cfg, "drift", "e3", 1, tmp_path / "s")
    long = simulate(cfg, "drift", "e3", 1, tmp_path / "l", n_tasks=3000)
    # Ten times the tasks, the same event plan: calls must not grow tenfold.
    assert long["policy_summary"]["controller_calls"] < 3 * max(1, short["policy_summary"]["controller_calls"])


def test_semantic_audit_sets_and_clears_risk(cfg, tmp_path):
    import json

    simulate(cfg, "semantic", "e3", 1, tmp_path / "a")
    audit = [json.loads(x) for x in (tmp_path / "a/audit.jsonl").read_text().splitlines()]
    sets = [(a["task_index"], a["arguments"]["device"]) for a in audit if a["tool"] == "set_device_risky"]
    clears = [(a["task_index"], a["arguments"]["device"]) for a in audit if a["tool"] == "clear_device_risky"]
    from e3.sim.scenario import load_scenario

    sc = load_scenario("semantic", {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"})
    assert sets == [(w.start_task, w.device) for w in sc.semantic]
    assert clears == [(w.end_task, w.device) for w in sc.semantic]
    for a in audit:
        assert {"time_ms", "task_index", "caller", "tool", "arguments", "result", "old_state", "new_state"} <= set(a)


def test_hard_avoidance_and_route_anyway():
    from e3.policies.e3_agent import E3Agent
    from e3.sim.observation import DeviceState, Observation

    pool = [DevicePrior("A", "sdxl", "a", "v", c_prior_ms=1000.0), DevicePrior("B", "sdxl", "b", "v", c_prior_ms=5000.0)]
    pol = E3Agent(pool, {}, np.random.default_rng(0), warmup_budget_tasks=0)
    obs = Observation([DeviceState("A", "sdxl"), DeviceState("B", "sdxl")])
    task = TaskView(0, "sdxl", 0, 0, 0.0)
    assert pol.choose(task, obs) == "A"
    pol.router.risky_until["A"] = 10
    assert pol.choose(task, obs) == "B", "hard avoidance while a safe device is feasible"
    obs._set_available(obs.devices["B"], False)  # as the engine does (churn)
    assert pol.choose(task, obs) == "A", "route anyway when every feasible device is risky"
    obs._set_available(obs.devices["B"], True)
    obs._task_index = 10
    assert pol.choose(task, obs) == "A", "the override expires after its TTL"


def test_opm_recovers_eq1_coefficients():
    rng = np.random.default_rng(0)
    alpha, beta = 0.75, 18.0
    pool = [DevicePrior("L", "llm", "x", "v", alpha_prior_ms_per_token=3.0, beta_prior_ms_per_token=40.0)]
    opm = OnlinePerformanceModel(pool, window_tasks=40)
    for k in range(40):
        li, lo = int(rng.choice([128, 256, 512, 1024, 2048])), int(rng.choice([32, 64, 128, 256]))
        s = (alpha * li + beta * lo) * float(np.exp(rng.normal(0, 0.02)))
        opm.observe(CompletedTask(TaskView(k, "llm", li, lo, 0.0), "L", 0.0, 0.0, s))
    assert opm.refit("L")
    e = opm.est["L"]
    assert e.alpha == pytest.approx(alpha, rel=0.05) and e.beta == pytest.approx(beta, rel=0.05)
    assert e.uncertainty < 0.25


def test_nonnegative_least_squares_clips_at_zero():
    x_in = np.array([100.0, 200.0, 300.0, 400.0])
    x_out = np.array([10.0, 10.0, 10.0, 10.0])
    y = np.array([400.0, 300.0, 200.0, 100.0])  # decreasing in L_in: unconstrained alpha < 0
    a, b = fit_eq1_nonneg(x_in, x_out, y)
    assert a == 0.0 and b == pytest.approx(25.0)
    assert fit_eq1_nonneg(np.array([1.0]), np.array([1.0]), np.array([1.0])) is None


def test_sdxl_calibration_smoothing():
    pool = [DevicePrior("S", "sdxl", "x", "v", c_prior_ms=1000.0)]
    opm = OnlinePerformanceModel(pool, smoothing=0.3)
    opm.observe(CompletedTask(TaskView(0, "sdxl", 0, 0, 0.0), "S", 0.0, 0.0, 2000.0))
    opm.refit("S")
    assert opm.est["S"].c == pytest.approx(0.7 * 1000 + 0.3 * 2000)


def test_sdxl_calibration_backlog_is_bounded_and_exact():
    """Memory stays flat between refits, and the bound does not change the EWMA: the dropped
    samples' weight (0.7^maxlen) is far below double precision."""
    rng = np.random.default_rng(1)
    samples = rng.uniform(500.0, 3000.0, 5000)
    pool = [DevicePrior("S", "sdxl", "x", "v", c_prior_ms=1000.0)]
    opm = OnlinePerformanceModel(pool, smoothing=0.3)
    for k, s in enumerate(samples):
        opm.observe(CompletedTask(TaskView(k, "sdxl", 0, 0, 0.0), "S", 0.0, 0.0, float(s)))
    assert len(opm._unconsumed["S"]) == opm._unconsumed_maxlen < len(samples)
    opm.refit("S")
    c = 1000.0
    for s in samples:  # the unbounded sequential EWMA
        c = 0.7 * c + 0.3 * s
    assert opm.est["S"].c == pytest.approx(c, rel=1e-15)
    assert len(opm._unconsumed["S"]) == 0


def test_unknown_policy_and_bad_params(cfg, tmp_path):
    with pytest.raises(ConfigError, match="registered"):
        simulate(cfg, "warmup_0", "nope", 1, tmp_path / "x")
    with pytest.raises(ConfigError, match="unknown parameter"):
        simulate(cfg, "warmup_0", "e3", 1, tmp_path / "x", policy_overrides={"explore_wieght_ms": 1})
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.partial").exists()


def test_external_policy_file_is_picked_up(cfg, tmp_path):
    plugin = tmp_path / "my_baseline.py"
    plugin.write_text(
        "from e3.policies.base import Policy, register\n"
        "@register\n"
        "class LastDevice(Policy):\n"
        "    '''Always the last feasible device (a test baseline).'''\n"
        "    name = 'last_device'\n"
        "    def choose(self, task, obs):\n"
        "        return obs.feasible(task.kind)[-1].name\n")
    s = simulate(cfg, "warmup_0", "last_device", 1, tmp_path / "o", n_tasks=20, plugins=(str(plugin),))
    assert s["tasks_per_device"] == {"LLM#0": 0, "LLM#1": 10, "SD#0": 0, "SD#1": 10}


def test_policy_returning_infeasible_device_is_an_error(cfg, tmp_path):
    from e3.sim.engine import PolicyError

    plugin = tmp_path / "bad.py"
    plugin.write_text(
        "from e3.policies.base import Policy, register\n"
        "@register\n"
        "class Bad(Policy):\n"
        "    name = 'always_llm0'\n"
        "    def choose(self, task, obs):\n"
        "        return 'LLM#0'\n")
    with pytest.raises(PolicyError, match="always_llm0"):
        simulate(cfg, "warmup_0", "always_llm0", 1, tmp_path / "o", n_tasks=4, plugins=(str(plugin),))
