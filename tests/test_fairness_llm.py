"""The ``multi_agent`` policy's ``llm`` controller, offline, through litellm's own extension point.

A fake provider (``e3test``) answers each tier from the JSON the prompt carries (what a careful
model would answer), or with garbage. Checked: a run records every tier's replies and then replays
them offline with identical results and no provider call; malformed replies fall back to random
decisions, are counted, and the run still conserves requests and respects capacity.
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
    return c


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
