"""The LLM meta-controller: replay determinism, cache-key sensitivity, secret hygiene, malformed
replies and fallbacks, tool bounds, triggers and cooldowns. No network: litellm mocks and a
CustomLLM provider stand in for the model; every test has its own temporary cache."""

from __future__ import annotations

import copy
import json

import pytest

from e3.agent.control import BOUNDS, TOOL_NAMES, ControlSurface
from e3.agent.tool_schemas import openai_tools, reply_schema, tool_parameters
from e3.agent.triggers import Trigger, TriggerGate
from e3.config import load_config
from e3.experiment.run import build_simulation, simulate
from e3.llm.cache import ResponseCache, cache_key
from e3.llm.client import LLMCacheMiss, LLMClient, LLMSettings
from tests.llm_fakes import ScriptedLLM, install

DEVICES = ["LLM#0", "LLM#1", "SD#0", "SD#1"]


@pytest.fixture(scope="module")
def base_cfg(repo):
    return load_config(repo / "config/config.yaml")


def llm_cfg(base_cfg, tmp_path, **llm):
    cfg = copy.deepcopy(base_cfg)
    cfg["controllers"]["llm"].update({"model": "e3test/scripted", "api_base": None, "mode": "record",
                                      "cache_dir": str(tmp_path / "cache"), "frozen": None, **llm})
    cfg["policies"]["e3"] = {"controller": "llm"}
    return cfg


# --- tools -------------------------------------------------------------------------------------
def test_every_tool_has_a_closed_bounded_schema():
    tools = openai_tools(DEVICES)
    assert [t["function"]["name"] for t in tools] == list(TOOL_NAMES)
    for name, schema in tool_parameters(DEVICES).items():
        assert schema["additionalProperties"] is False, name
        for arg, spec in schema["properties"].items():
            if spec.get("type") in ("number", "integer"):
                assert (spec["minimum"], spec["maximum"]) == BOUNDS[arg], (name, arg)
            if arg == "device":
                assert spec["enum"] == DEVICES


def test_schema_bounds_are_the_control_surfaces_bounds(base_cfg, tmp_path):
    s = build_simulation(base_cfg, "warmup_0", "e3", 1, 40, tmp_path / "t.parquet")
    s.run()
    tools = ControlSurface(s.policy.router, s.policy.opm, s.obs)
    lo, hi = BOUNDS["ttl_tasks"]
    assert "error" not in tools.call("set_device_risky", {"device": "SD#0", "ttl_tasks": hi})
    assert "outside" in tools.call("set_device_risky", {"device": "SD#0", "ttl_tasks": hi + 1})["error"]
    assert "unknown device" in tools.call("clear_device_risky", {"device": "GPU#7"})["error"]
    assert "unknown tool" in tools.call("rm_rf", {})["error"]
    assert "bad arguments" in tools.call("switch_router", {"router": "sect", "extra": 1})["error"]
    assert "must be one of" in tools.call("switch_router", {"router": "jsq"})["error"]
    assert tools.tool_errors == 5 and len(tools.audit) == 6
    rec = tools.audit[0]
    assert {"time_ms", "task_index", "caller", "tool", "arguments", "result", "old_state", "new_state"} <= set(rec)
    assert rec["new_state"]["risky_until"] == {"SD#0": s.obs.task_index + hi}


def test_risk_override_expires_by_ttl(base_cfg, tmp_path):
    s = build_simulation(base_cfg, "warmup_0", "e3", 1, 40, tmp_path / "t.parquet")
    s.run()
    tools = ControlSurface(s.policy.router, s.policy.opm, s.obs)
    k = s.obs.task_index
    tools.call("set_device_risky", {"device": "LLM#1", "ttl_tasks": 5})
    assert s.policy.router.is_risky("LLM#1", k + 4)
    assert not s.policy.router.is_risky("LLM#1", k + 5)
    assert "LLM#1" in s.policy.router.risky_until  # a read never changes state
    s.policy.router.expire(k + 5)  # the policy expires overrides once per arrival
    assert "LLM#1" not in s.policy.router.risky_until


def test_reply_schema_accepts_tools_and_no_action_only():
    import jsonschema

    sch = reply_schema(DEVICES)
    jsonschema.validate({"name": "set_device_risky", "arguments": {"device": "SD#1", "ttl_tasks": 50}}, sch)
    jsonschema.validate({"name": "no_action", "arguments": {}}, sch)
    for bad in ({"name": "set_device_risky", "arguments": {"device": "SD#9"}},
                {"name": "set_device_risky", "arguments": {"device": "SD#1", "ttl_tasks": 10**15}},
                {"name": "format_disk", "arguments": {}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, sch)


# --- triggers ----------------------------------------------------------------------------------
def test_signature_cooldown_and_nonevent_gap():
    g = TriggerGate(anomaly_cooldown_tasks=20, min_nonevent_gap_tasks=20)
    assert g.admit(Trigger("drift_alarm", 100, "LLM#0"))
    assert not g.admit(Trigger("drift_alarm", 119, "LLM#0"))     # same signature within 20
    assert not g.admit(Trigger("drift_alarm", 110, "LLM#1"))     # other device, but non-event gap
    assert g.admit(Trigger("semantic_onset", 105, "SD#0"))       # events ignore the non-event gap
    assert not g.admit(Trigger("semantic_onset", 106, "SD#0"))   # ... but not the cooldown
    assert g.admit(Trigger("semantic_offset", 106, "SD#0"))      # a different signature
    assert g.admit(Trigger("drift_alarm", 120, "LLM#0"))
    assert g.suppressed == 3


# --- cache key ---------------------------------------------------------------------------------
def _req(**kw):
    r = {"model": "openai/m", "api_base": "http://127.0.0.1:1/v1", "messages": [{"role": "user", "content": "x"}],
         "tools": None, "temperature": 0.0, "seed": 0, "max_tokens": 10, "response_format": None,
         "prompt_version": "p1"}
    r.update(kw)
    return r


def test_cache_key_sensitivity_and_order_independence():
    k = cache_key(_req())
    assert cache_key(dict(reversed(list(_req().items())))) == k
    for field, value in [("model", "openai/n"), ("api_base", "http://127.0.0.1:2/v1"),
                         ("messages", [{"role": "user", "content": "y"}]), ("tools", [{"type": "function"}]),
                         ("temperature", 0.5), ("seed", 1), ("max_tokens", 11), ("prompt_version", "p2"),
                         ("response_format", {"type": "json_object"})]:
        assert cache_key(_req(**{field: value})) != k, field
    # a non-key field (timeout) does not change it; a secret is refused outright
    assert cache_key({**_req(), "timeout": 5}) == k
    with pytest.raises(ValueError, match="secret"):
        cache_key({**_req(), "api_key": "sk-x"})


def test_export_import_roundtrip_and_tamper_detection(tmp_path):
    c = ResponseCache(tmp_path / "a")
    req = _req()
    c.put(cache_key(req), {"request": req, "response": {"content": "{}", "tool_calls": [], "usage": {}}})
    assert c.export_jsonl(tmp_path / "r.jsonl") == 1
    d = ResponseCache(tmp_path / "b")
    assert d.import_jsonl(tmp_path / "r.jsonl") == 1 and d.import_jsonl(tmp_path / "r.jsonl") == 0
    row = json.loads((tmp_path / "r.jsonl").read_text())
    row["request"]["seed"] = 7
    (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(Exception, match=r"bad.jsonl.*line 1.key"):
        ResponseCache(tmp_path / "c").import_jsonl(tmp_path / "bad.jsonl")


def test_replay_miss_names_the_key_and_how_to_record(tmp_path):
    client = LLMClient(LLMSettings(model="openai/m", mode="replay", cache_dir=str(tmp_path / "c"), frozen=None))
    with pytest.raises(LLMCacheMiss, match=r"key [0-9a-f]{64}.*--llm-mode record"):
        client.complete([{"role": "user", "content": "x"}], prompt_version="p")


# --- whole runs ----------------------------------------------------------------------------------
def test_semantic_run_sets_risk_on_each_onset_and_clears_on_each_offset(base_cfg, tmp_path):
    install(ScriptedLLM())
    cfg = llm_cfg(base_cfg, tmp_path)
    s = simulate(cfg, "semantic", "e3", 1, tmp_path / "run")
    ps = s["policy_summary"]
    audit = [json.loads(x) for x in (tmp_path / "run/audit.jsonl").read_text().splitlines()]
    sets = [(a["task_index"], a["arguments"]["device"]) for a in audit if a.get("tool") == "set_device_risky"]
    clears = [(a["task_index"], a["arguments"]["device"]) for a in audit if a.get("tool") == "clear_device_risky"]
    from e3.sim.scenario import load_scenario

    sc = load_scenario("semantic", dict(zip(DEVICES, ["llm", "llm", "sdxl", "sdxl"], strict=True)))
    assert sets == [(w.start_task, w.device) for w in sc.semantic]
    assert clears == [(w.end_task, w.device) for w in sc.semantic]
    assert all(a["caller"].startswith("llm") for a in audit if a.get("tool") in ("set_device_risky",
                                                                                   "clear_device_risky"))
    assert ps["llm_fallbacks"] == 0 and ps["llm_requests"] >= ps["controller_calls"] >= 2 * len(sc.semantic) + 2
    assert ps["llm_prompt_tokens"] > 0 and ps["controller_calls_per_1000_tasks"] > 0


def test_replay_reproduces_a_recorded_run_byte_for_byte(base_cfg, tmp_path):
    install(ScriptedLLM())
    rec = llm_cfg(base_cfg, tmp_path)
    simulate(rec, "drift", "e3", 2, tmp_path / "rec")
    export = tmp_path / "responses.jsonl"
    n = ResponseCache(tmp_path / "cache").export_jsonl(export)
    assert n > 0
    install(ScriptedLLM(script=[]))  # a provider that would answer differently: it must not be asked
    rep = llm_cfg(base_cfg, tmp_path, mode="replay", cache_dir=str(tmp_path / "fresh"), frozen=str(export))
    simulate(rep, "drift", "e3", 2, tmp_path / "rep")
    for f in ("tasks.parquet", "audit.jsonl"):
        assert (tmp_path / "rec" / f).read_bytes() == (tmp_path / "rep" / f).read_bytes(), f
    a, b = (json.loads((tmp_path / d / "summary.json").read_text())["policy_summary"] for d in ("rec", "rep"))
    assert b["llm_cache_hits"] == b["llm_requests"] and a["llm_cache_hits"] < a["llm_requests"]


def test_secrets_never_reach_key_cache_audit_or_outputs(base_cfg, tmp_path, monkeypatch):
    secret = "sk-e3-test-SECRET-0123456789"
    monkeypatch.setenv("E3_TEST_KEY", secret)
    fake = ScriptedLLM()
    install(fake)
    cfg = llm_cfg(base_cfg, tmp_path, api_key_env="E3_TEST_KEY")
    simulate(cfg, "semantic", "e3", 1, tmp_path / "run")
    assert fake.requests and all(r.get("api_key") == secret for r in fake.requests), "the key reaches the provider"
    ResponseCache(tmp_path / "cache").export_jsonl(tmp_path / "export.jsonl")
    for f in [*(tmp_path / "cache").rglob("*"), *(tmp_path / "run").rglob("*"), tmp_path / "export.jsonl"]:
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f


@pytest.mark.parametrize("raw, reason", [
    ("this is not json", "malformed_json"),
    ('{"name": "format_disk", "arguments": {}}', "unknown_tool"),
    ('{"name": "set_device_risky", "arguments": {"device": "SD#0", "ttl_tasks": 1000000000000000}}',
     "bad_arguments"),
    ('{"name": "set_device_risky", "arguments": {"device": "NPU#3"}}', "bad_arguments"),
])
def test_malformed_reply_falls_back_to_rules(base_cfg, tmp_path, raw, reason):
    install(ScriptedLLM(script=[raw] * 50))
    cfg = llm_cfg(base_cfg, tmp_path)
    s = simulate(cfg, "semantic", "e3", 1, tmp_path / "run", n_tasks=120)
    ps = s["policy_summary"]
    assert ps["llm_fallback_reasons"][reason] == ps["controller_calls"] > 0
    audit = [json.loads(x) for x in (tmp_path / "run/audit.jsonl").read_text().splitlines()]
    notes = [a for a in audit if a.get("event") == "fallback"]
    assert notes and notes[0]["detail"]["reason"] == reason and notes[0]["detail"]["raw_content"] == raw
    # the rules controller acted in its place: risk set on the first onset
    assert any(a.get("tool") == "set_device_risky" and a["caller"].startswith("rules(fallback)") for a in audit)


def test_provider_error_and_timeout_fall_back(base_cfg, tmp_path):
    # a provider that answered once and then times out: every later call falls back to the rules
    from tests.llm_fakes import FlakyLLM

    install(FlakyLLM(good=1))
    cfg = llm_cfg(base_cfg, tmp_path, timeout_s=2)
    s = build_simulation(cfg, "semantic", "e3", 1, 120, tmp_path / "t.parquet")
    s.run()
    summ = s.policy.summary()
    assert summ["llm_fallback_reasons"]["provider_error"] == summ["controller_calls"] - 1 > 0
    notes = [a for a in s.policy.audit_records() if a.get("event") == "fallback"]
    assert "Timeout" in notes[0]["detail"]["message"]


def test_a_provider_that_never_answers_stops_the_run(base_cfg, tmp_path):
    # issue 33: an invalid --llm-model ran the whole simulation on fallbacks with rc 0
    import litellm

    from e3.errors import E3Error

    cfg = llm_cfg(base_cfg, tmp_path, model="openai/unreachable", api_base="http://127.0.0.1:9/v1", timeout_s=2)
    cfg["controllers"]["llm"]["litellm_kwargs"] = {  # test hook, not a config field
        "mock_response": litellm.Timeout(message="timed out", model="x", llm_provider="openai")}
    s = build_simulation(cfg, "semantic", "e3", 1, 120, tmp_path / "t.parquet")
    with pytest.raises(E3Error, match=r"provider failed on this run's first request.*'openai/unreachable'"):
        s.run()


def test_reuse_recording_keeps_other_run_summaries():
    from e3.llm.record import merge_run_summaries

    old = [{"scenario": "semantic", "seed": 1, "horizon_tasks": 300, "calls": 13},
           {"scenario": "drift", "seed": 1, "horizon_tasks": 300, "calls": 8}]
    new = [{"scenario": "semantic", "seed": 1, "horizon_tasks": 300, "calls": 12},
           {"scenario": "semantic", "seed": 1, "horizon_tasks": 120, "calls": 6}]
    merged = merge_run_summaries(old, new)
    assert [(r["scenario"], r["horizon_tasks"], r["calls"]) for r in merged] == [
        ("drift", 300, 8), ("semantic", 300, 12), ("semantic", 120, 6)]
    # another prompt's recording of the same run (another release) is kept beside it
    other = [{"scenario": "drift", "seed": 1, "horizon_tasks": 300, "calls": 4, "prompt_version": "p5"}]
    assert len(merge_run_summaries(merged, other)) == 4


# --- the bounded view (issue 11): prompts do not grow with the pool -------------------------------
def _status(n: int) -> dict:
    devs = {f"D{i:04d}": {"kind": "llm" if i % 2 else "sdxl", "available": True, "queue_length": i % 7,
                          "risky": i == 5, "uncertainty": 0.5, "samples": 3} for i in range(n)}
    return {"task_index": 10, "router": "sect", "devices": devs, "semantic_events": {"D0003": "game"}}


def test_small_pools_keep_the_full_view():
    from e3.agent.prompt import _compact_status

    c = _compact_status(_status(4))
    assert set(c) == {"task_index", "router", "devices", "semantic_events"} and len(c["devices"]) == 4
    assert tool_parameters(DEVICES)["set_device_risky"]["properties"]["device"]["enum"] == DEVICES


def test_large_pools_get_a_bounded_view():
    from e3.agent.control import BOUNDED_VIEW_DEVICES
    from e3.agent.prompt import system_message, trigger_message

    sizes = {}
    for n in (100, 1000, 10000):
        st = _status(n)
        names = list(st["devices"])
        kinds = {k: d["kind"] for k, d in st["devices"].items()}
        msg = trigger_message(Trigger("semantic_onset", 10, "D0999" if n > 999 else "D0042"), st)
        view = json.loads(msg.split("Status: ", 1)[1].split("\n", 1)[0])
        assert len(view["devices"]) == BOUNDED_VIEW_DEVICES
        assert ("D0999" if n > 999 else "D0042") in view["devices"]  # the event's device first
        assert {"D0005", "D0003"} <= set(view["devices"])  # then the risky one and the one in an event
        assert sum(t["devices"] for t in view["pool"].values()) == n
        sizes[n] = len(system_message(kinds, openai_tools(names))) + len(msg) + len(json.dumps(reply_schema(names)))
        assert "enum" not in tool_parameters(names)["set_device_risky"]["properties"]["device"]
    assert sizes[10000] < 1.05 * sizes[100]  # bounded: no growth with the pool


def test_a_generated_pool_runs_the_llm_controller_with_bounded_prompts(base_cfg, tmp_path):
    fake = ScriptedLLM()
    install(fake)
    cfg = llm_cfg(base_cfg, tmp_path)
    cfg["pool_generator"] = {"devices": 200, "llm_fraction": 0.5, "heterogeneity_sigma": 0.25, "seed": 0,
                             "scenario": "SingleStream"}
    s = simulate(cfg, "scale_semantic", "e3", 1, tmp_path / "run", n_tasks=400)
    ps = s["policy_summary"]
    assert fake.requests and ps["llm_fallbacks"] == 0 and ps["tool_errors"] == 0
    assert max(sum(len(m["content"] or "") for m in r["messages"]) for r in fake.requests) < 8000


def test_get_system_status_of_a_large_pool_is_bounded():
    """The tool itself returns the bounded view for a large pool (its cost and audit record do not
    grow with the pool's rows) and keeps what the rules controller reads: every device in a
    semantic event, with its risk flag."""
    from e3.agent.control import BOUNDED_VIEW_DEVICES, ControlSurface, RouterState
    from e3.agent.opm import OnlinePerformanceModel
    from e3.mlperf.pool import DevicePrior
    from e3.sim.observation import Annotation, DeviceState, Observation
    from e3.sim.workload import TaskView

    n = 300
    pool = [DevicePrior(f"D{i:03d}", "llm" if i % 3 else "sdxl", "s", "v", 0.4, 30.0, 5000.0) for i in range(n)]
    states = [DeviceState(p.name, p.kind) for p in pool]
    obs = Observation(states)
    for i, st in enumerate(states):
        for j in range(i % 5):
            st._queue.append(TaskView(j, st.kind, 10, 10, 0.0))
    events = [f"D{i:03d}" for i in range(0, 60, 3)]  # 20 devices in semantic events: more than the bound
    obs._annotations.extend(Annotation(0, 0.0, d, "semantic_onset", "game") for d in events)
    router = RouterState("sect", 2000.0, 60000.0)
    router.risky_until["D299"] = 50
    audit = []
    tools = ControlSurface(router, OnlinePerformanceModel(pool), obs, sink=audit.append)
    tools.focus = "D150"
    status = tools.call("get_system_status")
    assert status["devices_total"] == n and sum(t["devices"] for t in status["pool"].values()) == n
    assert sum(t["queue"] for t in status["pool"].values()) == sum(st.queue_length for st in states)
    assert status["pool"]["llm"]["risky"] == 1
    assert {"D150", "D299", *events} <= set(status["devices"])  # focus, risky, every semantic device
    assert len(status["devices"]) == len({"D150", "D299", *events})  # no room left for longest queues
    assert status["devices"]["D299"]["risky"] and set(status["semantic_events"]) == set(events)
    assert len(json.dumps(audit[-1])) < 20_000
    tools.focus, obs._annotations[:] = None, []
    status = tools.call("get_system_status")
    assert len(status["devices"]) == BOUNDED_VIEW_DEVICES
    assert [status["devices"][d]["queue_length"] for d in list(status["devices"])[1:]] == [4] * (BOUNDED_VIEW_DEVICES - 1)


def test_bounded_status_kept_incrementally_equals_a_full_scan():
    """The bounded view's pool totals and longest-queue rows, kept from the engine's queue notes
    (e3.sim.backlog.QueueCounts), equal a scan of every device after random queue changes,
    churn, risk overrides and calibrations (issue 11)."""
    import heapq
    import random

    from e3.agent.control import BOUNDED_VIEW_DEVICES, ControlSurface, RouterState, kind_totals
    from e3.agent.opm import OnlinePerformanceModel
    from e3.mlperf.pool import DevicePrior
    from e3.sim.observation import DeviceState, Observation
    from e3.sim.workload import TaskView

    rng = random.Random(5)
    pool = [DevicePrior(f"D{i:03d}", "llm" if i % 3 else "sdxl", "s", "v", 0.4, 30.0, 5000.0) for i in range(60)]
    states = [DeviceState(p.name, p.kind) for p in pool]
    obs = Observation(states)
    router = RouterState("sect", 2000.0, 60000.0)
    opm = OnlinePerformanceModel(pool)
    tools = ControlSurface(router, opm, obs, sink=[].append)
    for k in range(600):
        obs._task_index = k
        st = rng.choice(states)
        step = rng.random()
        if step < 0.45:
            st._queue.append(TaskView(k, st.kind, 10, 10, 0.0))
        elif step < 0.75 and st._queue:
            st._in_service = st._queue.popleft()
        elif step < 0.9:
            st._in_service = None
        elif step < 0.95:
            obs._set_available(st, not st._available)
        elif step < 0.98:
            router.risky_until[st.name] = k + rng.randint(1, 30)
        else:
            opm.est[st.name].calibration = rng.choice([1.0, 1.3, 0.7])
        obs._touch(st)
        if k % 13:
            continue
        status = tools.call("get_system_status")
        risky = set(router.active(k))
        assert status["pool"] == kind_totals((s.kind, s.available, s.queue_length, s.name in risky) for s in states)
        first = [d for d in sorted(risky) if d in obs.devices]
        room = max(0, BOUNDED_VIEW_DEVICES - len(first))
        longest = heapq.nsmallest(room + len(first), states, key=lambda s: (-s.queue_length, s.name))
        assert list(status["devices"]) == first + [s.name for s in longest if s.name not in first][:room]
        busy = sorted((-s.queue_length, s.name) for s in states if s.queue_length)
        assert tools._queue_counts.longest(7) == [d for _, d in busy[:7]]
        state = tools._state()
        # the same calibrations in pool order (the audit's JSON keeps the order), in a fresh dict
        assert list(state["calibration"].items()) == [(d, e.calibration) for d, e in opm.est.items()
                                                      if e.calibration != 1.0]
        assert tools._state()["calibration"] == state["calibration"]
    # a snapshot handed to an audit record never changes afterwards: a new value, a device that
    # joins and one that leaves each give a new snapshot
    for name, value in (("D001", 2.5), ("D059", 0.5), ("D001", 1.0)):
        before = tools._state()["calibration"]
        kept = dict(before)
        opm.est[name].calibration = value
        after = tools._state()["calibration"]
        assert before == kept and after is not before
        assert list(after.items()) == [(d, e.calibration) for d, e in opm.est.items() if e.calibration != 1.0]
