"""Queueing invariants and closed forms on the simulator's traces."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from e3.config import load_config
from e3.experiment.run import simulate
from tests.helpers import one_device_sim


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.fixture(scope="module")
def churn_trace(cfg, tmp_path_factory):
    # A heavier load than the default, so that departures find tasks waiting to re-dispatch.
    heavy = copy.deepcopy(cfg)
    heavy["workload"]["arrival_rate_per_s"] = 0.5
    out = tmp_path_factory.mktemp("churn")
    s = simulate(heavy, "churn", "round_robin", 3, out / "run")
    return pd.read_parquet(out / "run/tasks.parquet"), s


def check_fifo_and_lindley(df: pd.DataFrame) -> None:
    for dev, g in df.groupby("device"):
        g = g.sort_values(["start_ms", "task_id"])
        # FIFO: tasks start in the order they were (finally) dispatched to the device.
        assert g["dispatch_ms"].is_monotonic_increasing, dev
        # Lindley: start_i = max(dispatch_i, end_{i-1}); a device never idles with work queued.
        prev_end = g["end_ms"].shift(1).fillna(-np.inf).to_numpy()
        np.testing.assert_allclose(g["start_ms"].to_numpy(), np.maximum(g["dispatch_ms"].to_numpy(), prev_end),
                                   rtol=0, atol=1e-6)


def test_conservation_fifo_lindley_static(cfg, tmp_path):
    simulate(cfg, "warmup_0", "e3", 2, tmp_path / "r")
    df = pd.read_parquet(tmp_path / "r/tasks.parquet")
    assert df["task_id"].tolist() == list(range(300))
    check_fifo_and_lindley(df)
    np.testing.assert_allclose(df["latency_ms"], df["end_ms"] - df["arrival_ms"])
    np.testing.assert_allclose(df["service_ms"], df["end_ms"] - df["start_ms"])
    np.testing.assert_allclose(df["wait_ms"], df["start_ms"] - df["arrival_ms"])
    assert (df["wait_ms"] >= -1e-9).all()
    kinds = dict(zip(df["device"], df["kind"], strict=False))
    assert kinds == {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"} or \
        all(k == ("llm" if d.startswith("LLM") else "sdxl") for d, k in kinds.items())


def test_conservation_under_churn(churn_trace, cfg):
    df, summary = churn_trace
    assert df["task_id"].tolist() == list(range(300)), "every task exactly once"
    assert summary["oracle_free"]["redispatches"] > 0, "the churn plan must re-dispatch waiting tasks"
    assert df["redispatches"].sum() == summary["oracle_free"]["redispatches"]
    check_fifo_and_lindley(df)


def test_no_dispatch_to_an_away_device(churn_trace, cfg):
    from e3.sim.scenario import load_scenario

    df, _ = churn_trace
    sc = load_scenario("churn", {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"})
    gap = 1000.0 / 0.5  # the churn_trace fixture's arrival rate
    for w in sc.churn:
        inside = df[(df["dispatch_ms"] >= w.leave_task * gap) & (df["dispatch_ms"] < w.return_task * gap)]
        assert len(inside) > 0 and (inside["device"] != w.device).all()


def test_deterministic_service_closed_form(tmp_path):
    # D/D/1 underloaded: no task waits. Overloaded (service s > gap a): wait_k = k (s - a).
    df = one_device_sim(tmp_path, service_ms=800.0, rate_per_s=1.0, n=50)
    assert df["wait_ms"].abs().max() < 1e-9
    assert np.allclose(df["latency_ms"], 800.0)
    df = one_device_sim(tmp_path, service_ms=1500.0, rate_per_s=1.0, n=50)
    np.testing.assert_allclose(df["wait_ms"], np.arange(50) * 500.0, atol=1e-6)


def test_md1_mean_wait_matches_pollaczek_khinchine(tmp_path):
    # M/D/1: Wq = rho * D / (2 (1 - rho)). rho = 0.6, D = 1000 ms -> Wq = 750 ms.
    D, lam = 1000.0, 0.6
    waits = [one_device_sim(tmp_path, D, lam, 20000, arrivals="poisson", seed=s)["wait_ms"].mean() for s in range(3)]
    expected = lam * D / (2 * (1 - lam))
    assert np.mean(waits) == pytest.approx(expected, rel=0.06)


def test_same_seed_identical_files_different_seed_differs(cfg, tmp_path):
    a = simulate(cfg, "semantic", "e3", 7, tmp_path / "a")
    simulate(cfg, "semantic", "e3", 7, tmp_path / "b")
    simulate(cfg, "semantic", "e3", 8, tmp_path / "c")
    for f in ("tasks.parquet", "summary.json", "audit.jsonl"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a/tasks.parquet").read_bytes() != (tmp_path / "c/tasks.parquet").read_bytes()
    assert a["seed"] == 7 and len(a["config_hash"]) == 64


def test_common_random_numbers_across_policies_and_budgets(cfg, tmp_path):
    # Baselines ignore the warmup budget, so their results are identical across budgets (paper Table 5).
    r0 = simulate(cfg, "warmup_0", "round_robin", 4, tmp_path / "r0")
    r1 = simulate(cfg, "warmup_100", "round_robin", 4, tmp_path / "r1")
    assert r0["latency_ms"] == r1["latency_ms"]
    t0 = pd.read_parquet(tmp_path / "r0/tasks.parquet")
    simulate(cfg, "warmup_0", "oracle", 4, tmp_path / "o")
    to = pd.read_parquet(tmp_path / "o/tasks.parquet")
    assert (t0[["kind", "input_tokens", "output_tokens", "arrival_ms"]] ==
            to[["kind", "input_tokens", "output_tokens", "arrival_ms"]]).all().all()


def test_csv_trace_option(cfg, tmp_path):
    simulate(cfg, "drift", "round_robin", 1, tmp_path / "c", trace_format="csv", n_tasks=40)
    df = pd.read_csv(tmp_path / "c/tasks.csv")
    assert len(df) == 40 and list(df.columns)[:3] == ["task_id", "kind", "input_tokens"]


def test_horizon_override(cfg, tmp_path):
    s = simulate(cfg, "warmup_0", "e3", 1, tmp_path / "h", n_tasks=1000)
    assert s["n_tasks"] == 1000
