"""The committed LLM responses (results/llm/responses.jsonl) cover every e3/llm cell of the full
sweep, every antllm/llm cell of the placement sweep and every multi_agent/llm cell of the fairness
sweep, so `snakemake --cores 8` on a fresh clone
never meets a replay miss; and the replayed semantic runs show risk set on each onset and cleared
on each offset in the audit log (the "done when" of the meta-controller issue, on the real model's
recorded decisions).

These tests replay from the frozen export itself, as `e3 simulate` does (no network, no
provider, an empty diskcache folder that replay must not need): a re-recording that drops a
request, a prompt change that invalidates the keys, or a sweep config that asks for an
unrecorded seed makes them fail.
"""

from __future__ import annotations

import copy
import json

import pytest

from e3.config import load_config
from e3.experiment.run import simulate
from e3.llm.cache import cache_key, read_export
from e3.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def replay(repo, tmp_path_factory):
    frozen = repo / "results/llm/responses.jsonl"
    if not frozen.exists():
        pytest.skip("results/llm/responses.jsonl is missing (the committed LLM responses)")
    cfg = load_config(repo / "config/config.yaml")
    cache_dir = tmp_path_factory.mktemp("llm_cache")
    cfg["controllers"]["llm"].update({"mode": "replay", "cache_dir": str(cache_dir), "frozen": str(frozen)})
    return cfg


def test_every_committed_key_includes_the_configured_model_identity(repo, replay):
    # the key covers model_info (GGUF sha256 included): the export's rows carry the configured
    # identity in their request, and each key is the hash of that request
    info = replay["controllers"]["llm"]["model_info"]
    assert info.get("gguf_sha256")
    entries = read_export(repo / "results/llm/responses.jsonl")
    for key, e in entries.items():
        assert e["request"]["model_info"] == e["meta"]["model_info"] == info, key
        assert cache_key(e["request"]) == key


def _llm_cells(cfg):
    """(scenario, policy, seed) of every llm-controller run of the sweep: the cells whose
    controller is llm, over sweep.llm_seeds, as `sweep_runs` in workflow/rules/common.smk."""
    sweep = cfg["sweep"]
    return [(sc, c["policy"], seed) for c in sweep["cells"] if c.get("controller") == "llm"
            for seed in sweep["llm_seeds"] for sc in sweep["scenarios"]]


def _risk_calls(audit: list[dict], tool: str) -> set[tuple[int, str]]:
    """(task index, device) of every accepted call of ``tool``, whoever made it (llm or fallback)."""
    return {(a["task_index"], a["arguments"]["device"]) for a in audit
            if a.get("tool") == tool and "error" not in (a.get("result") or {})}


def test_every_llm_cell_of_the_full_sweep_replays(replay, tmp_path):
    cells = _llm_cells(replay)
    assert cells, "the full sweep has no llm-controller cell"
    requests = 0
    for sc, policy, seed in cells:
        out = tmp_path / f"{sc}_{policy}_{seed}"
        # as `e3 simulate --controller llm` does; a replay miss raises
        s = simulate(copy.deepcopy(replay), sc, policy, seed, out, policy_overrides={"controller": "llm"})
        ps = s["policy_summary"]
        assert ps["llm_cache_hits"] == ps["llm_requests"], (sc, policy, seed)  # a run may need no decision
        requests += ps["llm_requests"]
    # (with the reasoning prompt the 1.5B model does not set risk on semantic onsets: that is a
    # finding, in results/tables/llm_vs_rules.md, not a property this test pins)
    assert requests > 0, "no llm cell of the sweep asked the model anything"


def test_the_010_decision_table_replies_set_and_clear_risk_on_every_window(repo, tmp_path):
    # release 0.1.0's recording (config/variants/v0.1.yaml: the decision-table prompt) replays, and
    # there the model set risk at every onset and cleared it at every offset
    from e3.config import load_config

    cfg = load_config(repo / "config/variants/v0.1.yaml")
    kinds = {d["name"]: "llm" if d["benchmark"].startswith("llama") else "sdxl" for d in cfg["pool"]}
    windows = load_scenario(str(repo / cfg["scenario_files"]["semantic"]), kinds).semantic
    for seed in (1, 2):
        out = tmp_path / f"semantic_{seed}"
        s = simulate(copy.deepcopy(cfg), "semantic", "e3", seed, out, policy_overrides={"controller": "llm"})
        assert s["policy_summary"]["llm_cache_hits"] == s["policy_summary"]["llm_requests"] > 0
        audit = [json.loads(x) for x in (out / "audit.jsonl").read_text().splitlines()]
        sets, clears = _risk_calls(audit, "set_device_risky"), _risk_calls(audit, "clear_device_risky")
        for w in windows:
            assert (w.start_task, w.device) in sets, f"seed {seed}: no risk set on {w.device} at onset"
            assert (w.end_task, w.device) in clears, f"seed {seed}: risk on {w.device} not cleared at offset"


@pytest.mark.parametrize("system", ["placement", "fairness"])
def test_every_llm_cell_of_the_other_systems_replays(replay, tmp_path, system):
    # the placement sweep's llm cells (antllm/llm) and the fairness sweep's (multi_agent/llm, the
    # planner-only back-end; issue 29), on every scenario and seed, replay from the same export; a
    # miss raises out of the run
    from e3.systems import get_system

    sweep = replay[system]["sweep"]
    cells = [(sc, c["policy"]) for c in sweep["cells"] if c.get("controller") == "llm"
             for sc in c.get("scenarios", sweep["scenarios"])]
    assert cells, f"{system}.sweep has no llm-controller cell"
    calls = 0
    for sc, policy in cells:
        runs = get_system(system).simulate_batch(copy.deepcopy(replay), sc, policy, "llm", sweep["seeds"],
                                                 str(tmp_path / f"{sc}_{policy}_{{seed}}"))
        for seed, s in zip(sweep["seeds"], runs, strict=True):
            ps = s["policy_summary"]
            assert ps["llm_requests"] > 0 and ps["llm_cache_hits"] == ps["llm_requests"], (sc, policy, seed)
            calls += ps.get("llm_calls", ps["llm_requests"])
    assert calls > 0


def test_every_agents_llm_row_replays(repo, replay):
    # issue 31's model ladder: every llm row of config `agents`, every seed, from its own export
    # (results/llm/agents_responses.jsonl); a miss raises LLMCacheMiss out of the run
    from e3.analysis import agents as A
    from e3.experiment.run import simulate_summaries

    spec = replay["agents"]
    rows = [r for r in spec["rows"] if r.get("controller") == "llm"]
    assert rows, "config agents has no llm row"
    for row in rows:
        rcfg, over = A.row_setup(replay, spec, row)
        rcfg["controllers"]["llm"]["frozen"] = str(repo / spec["responses"])
        for s in simulate_summaries(rcfg, spec["scenario"], row["policy"], list(spec["seeds"]), over):
            ps = s["policy_summary"]
            assert ps["llm_requests"] > 0 and ps["llm_cache_hits"] == ps["llm_requests"], (row["row"], s["seed"])
            assert ps["llm_fallbacks"] == 0 or ps.get("llm_fallback_reasons", {}).get("provider_error", 0) == 0
