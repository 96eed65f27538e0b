"""The committed LLM responses (results/llm/responses.jsonl) cover every e3/llm cell of the full
sweep, so `snakemake --cores 8` on a fresh clone never meets a replay miss; and the replayed
semantic runs show risk set on each onset and cleared on each offset in the audit log.

These tests read the frozen export into a temporary diskcache store (no network, no provider):
a re-recording that drops a request, a prompt change that invalidates the keys, or a sweep
config that asks for an unrecorded seed makes them fail.
"""

from __future__ import annotations

import copy
import json

import pytest

from e3.config import load_config
from e3.llm.cache import ResponseCache
from e3.sim.run import simulate
from e3.sim.scenario import load_scenario


@pytest.fixture(scope="module")
def replay(repo, tmp_path_factory):
    frozen = repo / "results/llm/responses.jsonl"
    if not frozen.exists():
        pytest.skip("results/llm/responses.jsonl is missing (the committed LLM responses)")
    cfg = load_config(repo / "config/config.yaml")
    cache_dir = tmp_path_factory.mktemp("llm_cache")
    ResponseCache(cache_dir).import_jsonl(frozen)
    cfg["controllers"]["llm"].update({"mode": "replay", "cache_dir": str(cache_dir), "frozen": None})
    cfg["policies"]["e3"] = {"controller": "llm"}
    return cfg


def _llm_cells(cfg):
    sweep = cfg["sweep"]
    if not any(c["policy"] == "e3" and c.get("controller") == "llm" for c in sweep["cells"]):
        return []
    seeds = sweep.get("llm_seeds") or sweep["seeds"]
    return [(sc, seed) for seed in seeds for sc in sweep["scenarios"]]


def test_every_llm_cell_of_the_full_sweep_replays(replay, tmp_path):
    cells = _llm_cells(replay)
    assert cells, "the full sweep has no e3/llm cell"
    for sc, seed in cells:
        s = simulate(copy.deepcopy(replay), sc, "e3", seed, tmp_path / f"{sc}_{seed}")  # a miss raises
        ps = s["policy_summary"]
        assert ps["llm_cache_hits"] == ps["llm_requests"] > 0, (sc, seed)


@pytest.mark.parametrize("seed", range(1, 11))
def test_replayed_semantic_run_sets_and_clears_risk_at_every_window(replay, tmp_path, seed):
    simulate(copy.deepcopy(replay), "semantic", "e3", seed, tmp_path / "run")
    audit = [json.loads(x) for x in (tmp_path / "run/audit.jsonl").read_text().splitlines()]
    ok = [a for a in audit if "tool" in a and "error" not in (a.get("result") or {})]  # caller: llm or fallback
    sets = {(a["task_index"], a["arguments"]["device"]) for a in ok if a["tool"] == "set_device_risky"}
    clears = {(a["task_index"], a["arguments"]["device"]) for a in ok if a["tool"] == "clear_device_risky"}
    windows = load_scenario("semantic", {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}).semantic
    for w in windows:
        assert (w.start_task, w.device) in sets, f"no risk set on {w.device} at onset (task {w.start_task})"
        assert (w.end_task, w.device) in clears, f"risk on {w.device} not cleared at offset (task {w.end_task})"
