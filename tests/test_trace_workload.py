"""Trace-driven workloads: generation rule, time scale, window, scenario overrides, summary, fetch."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from e3.config import REPO_ROOT, load_config
from e3.errors import ConfigError, E3Error, InputError
from e3.experiment.run import simulate
from e3.mlperf.pool import DevicePrior
from e3.policies.base import policy_names
from e3.sim.load import offered_load, time_scale_for
from e3.sim.scenario import load_scenario, scenario_workload
from e3.sim.truth import TruthSpec
from e3.sim.workload import TraceWorkload, WorkloadSpec, generate
from e3.workload import fetch as fetch_mod
from e3.workload.fetch import AZURE_LLM_2023, FetchError, fetch_traces
from e3.workload.readers import read_mooncake

AZURE_DIR = "azure-llm-inference-2023"
KINDS = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}


def mooncake(tmp_path: Path, n: int = 40, gap_ms: int = 500) -> Path:
    """A synthetic Mooncake trace: request k at k * gap_ms with 100 + 300 k input tokens."""
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps({"timestamp": k * gap_ms, "input_length": 100 + 300 * k, "output_length": 7 + k})
                         + "\n" for k in range(n)))
    return p


def test_generation_rule_scale_window_and_tokens_kept(tmp_path):
    tw = TraceWorkload(str(mooncake(tmp_path)), "mooncake", time_scale=4.0, sdxl_fraction=0.3,
                       start_s=2.0, duration_s=10.0)
    spec = WorkloadSpec(0.2, trace=tw)
    tasks = list(generate(spec, 20, random.Random(7)))
    assert len(tasks) == 20 and [t.task_id for t in tasks] == list(range(20))
    # window [2 s, 12 s): requests 4..23; arrivals re-based to the window start, then scaled.
    assert [t.arrival_ms for t in tasks] == [4.0 * 500 * j for j in range(20)]
    # the stated rule: one uniform per request from the workload stream, SDXL below the fraction
    rng = random.Random(7)
    expected = ["sdxl" if rng.random() < 0.3 else "llm" for _ in range(20)]
    assert [t.kind for t in tasks] == expected
    for j, t in enumerate(tasks):
        k = j + 4
        if t.kind == "llm":  # beyond the 2048-token bins: kept, never clipped
            assert (t.input_tokens, t.output_tokens) == (100 + 300 * k, 7 + k)
        else:
            assert (t.input_tokens, t.output_tokens) == (0, 0)
    assert max(t.input_tokens for t in tasks) > 2048
    with pytest.raises(E3Error, match="holds 20 requests"):
        list(generate(spec, 21, random.Random(7)))


def test_sdxl_fraction_extremes(tmp_path):
    path = str(mooncake(tmp_path))
    assert {t.kind for t in generate(WorkloadSpec(1.0, trace=TraceWorkload(path, "mooncake", sdxl_fraction=0.0)), 40,
                                     random.Random(1))} == {"llm"}
    assert {t.kind for t in generate(WorkloadSpec(1.0, trace=TraceWorkload(path, "mooncake", sdxl_fraction=1.0)), 40,
                                     random.Random(1))} == {"sdxl"}


def test_offered_load_closed_form_and_auto_scale(tmp_path):
    tr = read_mooncake(mooncake(tmp_path, n=11, gap_ms=1000))  # 11 requests over 10 s
    pool = [DevicePrior("L", "llm", "x", "v", alpha_prior_ms_per_token=1.0, beta_prior_ms_per_token=10.0),
            DevicePrior("S0", "sdxl", "x", "v", c_prior_ms=1000.0), DevicePrior("S1", "sdxl", "x", "v", c_prior_ms=1000.0)]
    truth = TruthSpec({"S1": {"c": 3.0}})
    load = offered_load(tr, 10.0, 2.0, 0.5, pool, truth)
    mean_in, mean_out = tr.input_tokens.mean(), tr.output_tokens.mean()
    lam = 0.5 * 11 / 20.0  # tasks per simulated s, per kind
    assert load["rho_by_kind"]["llm"] == pytest.approx(lam * (mean_in + 10 * mean_out) / 1000.0)
    assert load["rho_by_kind"]["sdxl"] == pytest.approx(lam / (1.0 + 1.0 / 3.0))
    assert load["rho_pool"] == max(load["rho_by_kind"].values())
    s = time_scale_for(0.7, tr, 10.0, 0.5, pool, truth)
    assert offered_load(tr, 10.0, s, 0.5, pool, truth)["rho_pool"] == pytest.approx(0.7)
    with pytest.raises(ConfigError, match="no sdxl device"):
        offered_load(tr, 10.0, 1.0, 0.5, pool[:1], truth)


def write_scenario(tmp_path: Path, trace: dict, name: str = "tracy", **extra) -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"name": name, "description": "test trace scenario", "block": "trace",
                                 "workload": {"arrivals": "trace", "trace": trace}, **extra}))
    return p


def test_scenario_workload_override_merges_and_validates(tmp_path):
    cfg = load_config()
    sc = load_scenario(write_scenario(tmp_path, {"path": "x.jsonl", "format": "mooncake", "time_scale": 3}), KINDS)
    w = scenario_workload(cfg["workload"], sc)
    assert w["arrivals"] == "trace" and w["arrival_rate_per_s"] == cfg["workload"]["arrival_rate_per_s"]
    assert w["trace"] == {"path": "x.jsonl", "format": "mooncake", "time_scale": 3, "target_rho_pool": 0.7,
                          "sdxl_fraction": 0.5, "start_s": 0, "duration_s": None}
    assert "workload" in sc.to_dict()
    # the scenarios without a workload section hash as before (no 'workload' key)
    assert "workload" not in load_scenario("semantic", KINDS).to_dict()
    for bad, field in [({"path": "x", "sdxl_fraction": 1.5}, "workload.trace.sdxl_fraction"),
                       ({"path": "x", "format": "sharegpt"}, "workload.trace.format"),
                       ({"path": "x", "time_scale": -1}, "workload.trace.time_scale")]:
        with pytest.raises(ConfigError, match=field):
            load_scenario(write_scenario(tmp_path, bad), KINDS)
    # NaN is refused when the scenario file is read (issue 13), before any merge
    with pytest.raises(ConfigError, match="start_s.*finite"):
        load_scenario(write_scenario(tmp_path, {"path": "x", "start_s": float("nan")}), KINDS)


def test_simulate_trace_scenario_summary_and_determinism(tmp_path):
    cfg = load_config()
    sc = write_scenario(tmp_path, {"path": str(mooncake(tmp_path, n=60, gap_ms=2000)), "format": "mooncake",
                                   "time_scale": "auto", "target_rho_pool": 0.6, "sdxl_fraction": 0.5,
                                   "start_s": 10, "duration_s": 80})
    a = simulate(cfg, str(sc), "sed_ewma", 3, tmp_path / "a")
    simulate(cfg, str(sc), "sed_ewma", 3, tmp_path / "b")
    for f in ("summary.json", "tasks.parquet"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    w = a["workload"]
    assert a["n_tasks"] == 40 == w["trace"]["requests_in_window"]  # the window is the horizon
    assert w["rho_pool"] == pytest.approx(0.6) and w["time_scale"] > 0 and w["time_scale_rule"].startswith("auto")
    on_disk = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert on_disk["workload"]["time_scale"] == w["time_scale"]
    df = pd.read_parquet(tmp_path / "a" / "tasks.parquet")
    assert df["arrival_ms"].tolist() == pytest.approx([2000.0 * j * w["time_scale"] for j in range(40)])
    llm = df[df["kind"] == "llm"]
    assert ((llm["input_tokens"] - 100) % 300 == 0).all() and llm["input_tokens"].max() > 2048
    # common random numbers: another policy of the replicate sees the same tasks
    o = simulate(cfg, str(sc), "oracle", 3, tmp_path / "o")
    do = pd.read_parquet(tmp_path / "o" / "tasks.parquet")
    assert do[["kind", "input_tokens", "arrival_ms"]].equals(df[["kind", "input_tokens", "arrival_ms"]])
    assert o["workload"]["time_scale"] == w["time_scale"]
    # a config scale is used as given; --tasks cuts the window
    fixed = write_scenario(tmp_path, {"path": str(mooncake(tmp_path, n=60, gap_ms=2000)), "format": "mooncake",
                                      "time_scale": 2.5}, name="fixed")
    s = simulate(cfg, str(fixed), "round_robin", 1, tmp_path / "f", n_tasks=10)
    assert s["n_tasks"] == 10 and s["workload"]["time_scale"] == 2.5 and s["workload"]["time_scale_rule"] == "config"
    with pytest.raises(E3Error, match="holds only 60"):
        simulate(cfg, str(fixed), "round_robin", 1, tmp_path / "g", n_tasks=61)


def test_trace_event_plan_is_rescaled_to_the_traces_horizon(tmp_path):
    # A plan written for 300 tasks on a trace of 60 requests: its windows move to 60 tasks (they
    # used to stay at 100..220, past the end of a short trace or at the start of a long one).
    from e3.experiment.run import load_run_inputs

    sc = write_scenario(tmp_path, {"path": str(mooncake(tmp_path, n=60)), "format": "mooncake", "time_scale": 3},
                        reference_horizon_tasks=300, warmup_budget_tasks=5,
                        drift=[{"device": "LLM#0", "start_task": 100, "end_task": 220, "factor": 3.0}])
    ri = load_run_inputs(load_config(), str(sc), "round_robin")
    assert ri.n_tasks == 60
    assert [(w.start_task, w.end_task) for w in ri.scenario.drift] == [(20, 44)]


def test_trace_workload_in_the_config_itself(tmp_path):
    base = load_config()
    w = {**base["workload"], "arrivals": "trace",
         "trace": {"path": str(mooncake(tmp_path)), "format": "mooncake", "time_scale": 3.0}}
    s = simulate(load_config(overrides={"workload": w}), "warmup_0", "round_robin", 1, tmp_path / "c")
    assert s["n_tasks"] == 40 and s["workload"]["time_scale"] == 3.0
    no_trace = load_config(overrides={"workload": {**base["workload"], "arrivals": "trace"}})
    with pytest.raises(ConfigError, match="arrivals is 'trace' but no trace"):
        simulate(no_trace, "warmup_0", "round_robin", 1, tmp_path / "d")


def test_missing_trace_file_says_how_to_fetch(tmp_path):
    sc = write_scenario(tmp_path, {"path": "resources/traces/nope.csv"})
    with pytest.raises(InputError, match="fetch_traces.*traces_mirror"):
        simulate(load_config(), str(sc), "round_robin", 1, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_default_workload_summary_has_no_trace_keys(tmp_path):
    s = simulate(load_config(), "warmup_0", "round_robin", 1, tmp_path / "r", n_tasks=20)
    assert "workload" not in s and "trace" not in load_config()["workload"]  # `traces:` is the trace target's, never read here


def test_fetch_from_mirror_checks_sha256(tmp_path, traces_mirror):
    m = traces_mirror
    man = fetch_traces(tmp_path / "dest", m, progress=lambda s: None)
    assert sorted(e["file"] for e in man) == sorted(AZURE_LLM_2023.files)
    assert all(e["commit"] == AZURE_LLM_2023.commit for e in man)
    assert (tmp_path / "dest" / AZURE_DIR / "AzureLLMInferenceTrace_conv.csv").read_bytes() == \
        (m / AZURE_DIR / "AzureLLMInferenceTrace_conv.csv").read_bytes()
    # a mirror whose file differs from the pinned bytes is refused and nothing is written
    bad = tmp_path / "bad"
    shutil.copytree(m, bad)
    (bad / AZURE_DIR / "LICENSE").chmod(0o644)
    (bad / AZURE_DIR / "LICENSE").write_text("not the licence")
    with pytest.raises(FetchError, match="sha256"):
        fetch_traces(tmp_path / "d2", bad, progress=lambda s: None)
    assert not (tmp_path / "d2" / AZURE_DIR / "LICENSE").exists()


def test_offline_without_mirror_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise fetch_mod.urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", offline)
    with pytest.raises(FetchError, match="raw.githubusercontent.com/Azure/AzurePublicDataset/b469a11.*"
                                         "traces_mirror=PATH.*E3_TRACES_MIRROR"):
        fetch_traces(tmp_path / "d", None, progress=lambda s: None)
    with pytest.raises(FetchError, match="lacks azure-llm-inference-2023"):
        fetch_traces(tmp_path / "d", tmp_path, progress=lambda s: None)


def test_repository_trace_scenarios_load():
    cfg = load_config()
    rank = {d: 1.0 for d in KINDS}
    for name, n in (("azure_conv", "conv"), ("azure_code", "code"), ("azure_conv_drift", "conv")):
        sc = load_scenario(name, KINDS, None, rank)
        w = scenario_workload(cfg["workload"], sc)
        assert w["arrivals"] == "trace" and w["trace"]["path"].endswith(f"AzureLLMInferenceTrace_{n}.csv")
        assert sc.block == "trace" and w["trace"]["time_scale"] == "auto"


def test_trace_drift_scenario_is_the_trace_under_scale_drifts_plan():
    # The rule written in config/scenarios/azure_conv_drift.yaml: azure_conv's workload and warmup
    # budget, unchanged, under scale_drift's drift plan (same factor and fraction; its windows,
    # written for 300 tasks, rescaled to the whole trace's 19,366 requests), whose quarter is the
    # fastest LLM devices by prior instead of the first by name.
    raw = {n: yaml.safe_load((REPO_ROOT / f"config/scenarios/{n}.yaml").read_text())
           for n in ("azure_conv_drift", "azure_conv", "scale_drift")}
    ours, conv, theirs = raw["azure_conv_drift"], raw["azure_conv"], raw["scale_drift"]
    assert ours["workload"] == conv["workload"] and ours["warmup_budget_tasks"] == conv["warmup_budget_tasks"]
    assert "reference_horizon_tasks" not in ours  # it would stretch the warmup budget too
    n_conv, ref = 19366, theirs["reference_horizon_tasks"]  # requests of the whole conversation trace

    def rescaled(w):
        return {**w, "start_task": round(w["start_task"] * n_conv / ref), "end_task": round(w["end_task"] * n_conv / ref),
                "device": {**w["device"], "order": "fastest"}}

    assert ours["drift"] == [rescaled(w) for w in theirs["drift"]]
    assert raw["azure_conv_drift"]["block"] == "trace"
    kinds = {f"L{i}": "llm" for i in range(8)} | {f"S{i}": "sdxl" for i in range(8)}
    rank = {f"L{i}": 100.0 - i for i in range(8)} | {f"S{i}": 1.0 for i in range(8)}  # L7 fastest
    sc = load_scenario("azure_conv_drift", kinds, n_conv, rank)
    assert sc.block == "trace" and sorted(w.device for w in sc.drift) == ["L6", "L7"]
    with pytest.raises(ConfigError, match="order: 'fastest' ranks devices by their priors"):
        load_scenario("azure_conv_drift", kinds)


def test_real_azure_trace_on_the_paper_pool(tmp_path, traces_mirror):
    m = traces_mirror
    sc = yaml.safe_load((REPO_ROOT / "config/scenarios/azure_code.yaml").read_text())
    sc["workload"]["trace"]["path"] = str(m / AZURE_DIR / "AzureLLMInferenceTrace_code.csv")
    sc["workload"]["trace"]["duration_s"] = 300
    p = tmp_path / "azure_code.yaml"
    p.write_text(yaml.safe_dump(sc))
    s = simulate(load_config(), str(p), "e3", 1, tmp_path / "r")
    w = s["workload"]
    assert w["rho_pool"] == pytest.approx(0.7) and s["n_tasks"] == w["trace"]["requests_in_window"] > 500
    assert w["trace"]["sha256"] == AZURE_LLM_2023.files["AzureLLMInferenceTrace_code.csv"][1]


# Policies whose estimators see the trace's token counts (beyond the bins); with the trace fetched,
# tests/test_baselines.py runs every policy on the trace scenarios too.
@pytest.mark.parametrize("policy", ["oracle", "e3", "e3_rls", "sed_ewma", "dts"])
def test_policies_run_a_real_trace(tmp_path, traces_mirror, policy):
    assert policy in policy_names()
    sc = yaml.safe_load((REPO_ROOT / "config/scenarios/azure_conv.yaml").read_text())
    sc["workload"]["trace"]["path"] = str(traces_mirror / AZURE_DIR / "AzureLLMInferenceTrace_conv.csv")
    p = tmp_path / "azure_conv.yaml"
    p.write_text(yaml.safe_dump(sc))
    s = simulate(load_config(), str(p), policy, 1, tmp_path / "r", n_tasks=80)
    assert s["n_tasks"] == 80 and s["workload"]["rho_pool"] == pytest.approx(0.7)


def test_a_pinned_trace_whose_digest_differs_is_refused(tmp_path):
    """Issue 33, defect 6: a truncated copy of a fetched Azure trace is refused before use, naming
    the file and both digests; a user's own trace (no pin) is used as before."""
    from e3.errors import InputError
    from e3.experiment.run import trace_workload

    folder = tmp_path / AZURE_DIR
    folder.mkdir()
    p = folder / "AzureLLMInferenceTrace_conv.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                 "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n")
    cfg = load_config()
    from e3.mlperf.pool import resolve_pool
    from e3.mlperf.priors import load_priors

    pool = resolve_pool(load_priors(REPO_ROOT / cfg["priors"]["frozen"]), cfg["pool"],
                        cfg["priors"]["reference_input_tokens"])
    truth = TruthSpec({}, 0.0, 0.0)
    tcfg = {"path": str(p), "format": "azure", "time_scale": 1.0, "target_rho_pool": 0.7, "sdxl_fraction": 0.5,
            "start_s": 0, "duration_s": None}
    with pytest.raises(InputError, match=r"AzureLLMInferenceTrace_conv\.csv.*sha256 [0-9a-f]{64} is not the pinned 2f1e5b66"):
        trace_workload(tcfg, pool, truth)
    own = tmp_path / "mine.csv"
    own.write_text(p.read_text())
    tw, info = trace_workload({**tcfg, "path": str(own)}, pool, truth)
    assert info["trace"]["requests_in_window"] == 2
