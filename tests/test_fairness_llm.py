"""The ``multi_agent`` policy's ``llm`` controller, offline, through litellm's own extension point.

A fake provider (``e3test``) answers each tier from the JSON the prompt carries (what a careful
model would answer), or with garbage. Checked, for the paper's reading (``llm_tiers: all``): a run
records every tier's replies and then replays them offline with identical results and no provider
call; malformed replies fall back to random decisions, are counted, and the run still conserves
requests and respects capacity. For the planner-only back-end (``llm_tiers: planner``, the
default): the same record and replay, an unusable reply keeps the running plan, and the overload
guard refuses a plan that cannot carry the measured rates.
"""

from __future__ import annotations

import copy
import json

import litellm
import pytest

from e3.config import load_config
from e3.fairness.run import simulate
from e3.llm.cache import ResponseCache
from tests.llm_fakes import ScriptedLLM, install


def _answer(messages) -> dict:
    system, user = messages[0]["content"], json.loads(messages[-1]["content"])
    if "global planning agent" in system:
        if user["current_intents"]:
            return {"intents": user["current_intents"]}
        nodes = user["telemetry"]["nodes"]
        return {"intents": {n: (["stable_diffusion", "blip", "gpt2"] if v["kind"] == "gpu" else ["gpt2_large", "gpt2", "blip"])
                            for n, v in nodes.items()}}
    if "prompt scheduling agent" in system:
        routing: dict[str, dict[str, float]] = {}
        for n, v in user["telemetry"]["nodes"].items():
            for m, (state, _q) in v["pods"].items():
                if state == "active":
                    routing.setdefault(m, {})[n] = 1.0
        return {"routing": routing}
    pods = user["status"]["pods"]
    return {"activate": [m for m in user["intents"] if m not in pods],
            "deactivate": [m for m in pods if m not in user["intents"]]}


class TierFake(ScriptedLLM):
    """Answers every tier correctly (``garbage=False``) or with text that is not JSON."""

    def __init__(self, garbage: bool = False) -> None:
        super().__init__()
        self.garbage = garbage

    def completion(self, *args, **kwargs):
        self.requests.append(kwargs)
        msgs = kwargs["messages"]
        text = "I think gpu0 should host everything." if self.garbage else json.dumps(_answer(msgs))
        return litellm.completion(model="gpt-4o-mini", messages=msgs, mock_response=text)


@pytest.fixture
def cfg(repo, tmp_path):
    c = load_config(repo / "config/config.yaml")
    c["fairness"]["horizon_s"] = 600
    c["controllers"]["llm"].update({"model": "e3test/fake", "api_base": None, "mode": "record",
                                    "cache_dir": str(tmp_path / "cache"), "frozen": None})
    c["fairness"]["agents"]["llm_tiers"] = "all"
    return c


@pytest.fixture
def planner_cfg(cfg):
    c = copy.deepcopy(cfg)
    c["fairness"]["agents"]["llm_tiers"] = "planner"
    return c


class PlannerFake(ScriptedLLM):
    """Answers the planner-only prompt with a fixed change (``reply``), or with garbage (None)."""

    def __init__(self, reply: dict | None) -> None:
        super().__init__()
        self.reply = reply

    def completion(self, *args, **kwargs):
        self.requests.append(kwargs)
        msgs = kwargs["messages"]
        assert "You plan where models run" in msgs[0]["content"]
        user = json.loads(msgs[-1]["content"])
        assert set(user) == {"reason", "epoch", "models", "plan", "utilisation", "cases"}
        text = "keep it" if self.reply is None else json.dumps(self.reply)
        return litellm.completion(model="gpt-4o-mini", messages=msgs, mock_response=text)


def test_llm_controller_records_then_replays_offline(cfg, tmp_path):
    fake = TierFake()
    install(fake)
    a = simulate(cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / "rec")
    n_calls = len(fake.requests)
    ps = a["policy_summary"]
    assert n_calls > 0 and ps["fallbacks_total"] == 0
    assert ps["planner_calls"] >= 2 and ps["scheduler_calls"] >= 10
    assert a["served"] + a["timed_out"] + a["failed"] == a["issued"]
    # every stored request carries a JSON schema and its tier in the keyed prompt version
    entries = [e for _, e in ResponseCache(tmp_path / "cache").items()]
    assert len(entries) == n_calls
    assert {e["request"]["prompt_version"].rsplit(":", 1)[1] for e in entries} >= {"planner", "scheduler"}
    assert all(e["request"]["response_format"]["type"] == "json_object" and "schema" in e["request"]["response_format"]
               for e in entries)
    c2 = copy.deepcopy(cfg)
    c2["controllers"]["llm"]["mode"] = "replay"
    b = simulate(c2, "mec_city", "multi_agent", "llm", 1, tmp_path / "rep")
    assert len(fake.requests) == n_calls  # replay asked the provider nothing
    for k in ("mean_latency_s", "jain_normalized", "served", "pod_activations"):
        assert a[k] == b[k], k
    assert b["policy_summary"]["llm_cache_hits"] == b["policy_summary"]["llm_requests"]


def test_malformed_replies_fall_back_to_random_and_are_counted(cfg, tmp_path):
    install(TierFake(garbage=True))
    s = simulate(cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / "bad")
    fb = s["policy_summary"]["fallbacks"]
    assert fb["planner"] >= 2 and fb["scheduler"] >= 10
    assert s["policy_summary"]["fallbacks_total"] == sum(fb.values())
    assert s["served"] + s["timed_out"] + s["failed"] == s["issued"]
    for n, dims in s["max_used"].items():
        for d, v in dims.items():
            assert v <= s["capacity"][n][d] + 1e-9


def test_planner_only_back_end_records_then_replays_and_executes_per_slot(planner_cfg, tmp_path):
    fake = PlannerFake({"add": [], "remove": []})
    install(fake)
    a = simulate(planner_cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / "rec")
    ps = a["policy_summary"]
    # only the planner asks the model (per epoch and surge; the start plan is the program's)
    assert len(fake.requests) == ps["llm_requests"] == ps["planner_calls"] - 1 > 0
    assert ps["scheduler_calls"] >= 10 and ps["fallbacks_total"] == 0
    c2 = copy.deepcopy(planner_cfg)
    c2["controllers"]["llm"]["mode"] = "replay"
    b = simulate(c2, "mec_city", "multi_agent", "llm", 1, tmp_path / "rep")
    assert len(fake.requests) == ps["llm_requests"]
    for k in ("mean_latency_s", "jain_normalized", "served", "pod_activations"):
        assert a[k] == b[k], k


def test_planner_only_back_end_keeps_the_plan_on_an_unusable_reply(planner_cfg, tmp_path):
    install(PlannerFake(None))
    bad = simulate(planner_cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / "bad")
    install(PlannerFake({"add": [], "remove": []}))
    planner_cfg["controllers"]["llm"]["cache_dir"] = str(tmp_path / "cache2")
    keep = simulate(planner_cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / "keep")
    assert bad["policy_summary"]["fallbacks"]["planner"] == bad["policy_summary"]["llm_requests"] > 0
    # an unusable reply keeps the running plan: the same run as a model that always keeps it
    assert bad["mean_latency_s"] == keep["mean_latency_s"] and bad["pod_activations"] == keep["pod_activations"]


@pytest.mark.parametrize("guard", [True, False])
def test_the_overload_guard_refuses_a_plan_that_cannot_carry_the_load(planner_cfg, tmp_path, guard):
    # move Stable Diffusion off both GPUs onto a CPU node (75 s a request there): a CPU node's
    # predicted utilisation goes far above 1
    planner_cfg["fairness"]["agents"]["llm_overload_guard"] = guard
    install(PlannerFake({"add": ["cpu0/stable_diffusion"],
                         "remove": ["gpu0/stable_diffusion", "gpu1/stable_diffusion"]}))
    s = simulate(planner_cfg, "mec_city", "multi_agent", "llm", 1, tmp_path / f"g{guard}")
    ps = s["policy_summary"]
    if guard:
        assert ps["planner_rejected_overload"] == ps["fallbacks"]["planner"] > 0
    else:
        assert ps["planner_rejected_overload"] == 0
