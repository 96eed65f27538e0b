"""The held-out event benchmark (issue 31): the catalogue, the events scenario's written rules, the
information boundary of notices, the new controllers, selective invocation and the metrics."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pandas as pd
import pytest

from e3.analysis import agents as A
from e3.config import load_config, read_yaml
from e3.experiment.run import build_simulation, load_run_inputs, simulate
from e3.seeds import stream
from e3.sim.events import draw_events
from e3.sim.load import scenario_loads
from e3.sim.scenario import Scenario, SemanticWindow, load_scenario
from tests.llm_fakes import ScriptedLLM, install

KINDS = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.fixture(scope="module")
def family(repo):
    return load_scenario("events", KINDS).events


def _draw(family, seed):
    return draw_events(family, family["catalogue_content"], family["devices"], stream(seed, "events", "events"))


# --- the catalogue ---------------------------------------------------------------------------------
def test_catalogue_has_the_papers_five_known_types_and_eight_or_more_held_out_ones(repo):
    cat = read_yaml(repo / "config/events/catalogue.yaml")
    overload = read_yaml(repo / "config/scenarios/semantic_overload.yaml")
    assert sorted(cat["known"]) == sorted(w["label"] for w in overload["semantic"])
    assert len(cat["held_out"]) >= 8
    wordings = [w for t in cat["held_out"].values() for w in t["onset"]]
    assert len(set(wordings)) == len(wordings) and all(len(t["onset"]) >= 2 for t in cat["held_out"].values())
    for w in wordings:  # no held-out wording names a known label, so no rule keyed on labels matches it
        assert not any(k in w.lower().replace(" ", "_") for k in cat["known"]), w


# --- the scenario's written rules -----------------------------------------------------------------
def test_every_draw_follows_the_rules(family):
    spec = family
    for seed in range(1, 201):
        ev = _draw(family, seed)
        assert Counter(e.event_class for e in ev) == Counter(spec["classes"])
        assert all(e.device in ("LLM#0", "LLM#1") for e in ev)
        for a, b in zip(ev, ev[1:], strict=False):
            assert a.end_task <= b.start_task  # at most one event at a time
        for e in ev:
            assert spec["window_tasks"][0] <= e.end_task - e.start_task <= spec["window_tasks"][1]
            assert e.end_task <= 300
            assert e.start_task <= e.effect_start_task <= e.effect_end_task <= e.end_task
            if e.effect == "benign":
                assert e.slowdown == 1.0 and not e.degrades
            else:
                assert spec["slowdown"][0] <= e.slowdown <= spec["slowdown"][1] and e.degrades
            if e.effect == "delayed":
                assert spec["delay_tasks"][0] <= e.effect_start_task - e.start_task <= spec["delay_tasks"][1]
            if e.event_class in ("known", "silent"):
                assert e.effect != "benign"  # informative_fraction.known = 1; silent always degrades


def test_the_surviving_llm_device_stays_stable_under_every_drawn_event(cfg, family):
    ri = load_run_inputs(cfg, "events", "oracle")
    from e3.sim.truth import GroundTruth

    for seed in range(1, 11):
        base = GroundTruth(ri.pool, ri.truth, stream(seed, "truth")).base
        windows = tuple(SemanticWindow(e.device, e.effect_start_task, e.effect_end_task, e.event_type, e.slowdown)
                        for e in _draw(family, seed) if e.degrades)
        loads = scenario_loads(ri.pool, base, ri.workload, Scenario("x", "x", semantic=windows))
        assert all(w["rho_safe"] <= 0.85 for w in loads["semantic_windows"]), loads


def test_effects_are_drawn_apart_from_the_wording(family):
    # informative share of held-out notices is the stated parameter, for every type alike
    by_type: dict[str, list[bool]] = {}
    for seed in range(1, 3001):
        for e in _draw(family, seed):
            if e.event_class == "held_out":
                by_type.setdefault(e.event_type, []).append(e.effect != "benign")
    p = family["informative_fraction"]["held_out"]
    for t, xs in by_type.items():
        assert abs(sum(xs) / len(xs) - p) < 0.06, (t, sum(xs) / len(xs))


def test_seeds_draw_different_events_and_a_seed_always_the_same(family):
    assert _draw(family, 1) == _draw(family, 1)
    assert _draw(family, 1) != _draw(family, 2)


# --- the information boundary ---------------------------------------------------------------------
def test_the_controller_sees_the_text_alone(cfg):
    sim = build_simulation(cfg, "events", "e3", 3, None, None, {"controller": "rules"})
    sim.run()
    seen = [(a.event, a.device, a.label) for a in sim.obs.annotations]
    expected = []
    for e in sim.drawn_events:
        if e.event_class == "known":
            expected += [("semantic_onset", e.device, e.onset_text), ("semantic_offset", e.device, e.end_text)]
        elif e.event_class == "held_out":
            expected += [("notice_onset", e.device, e.onset_text), ("notice_end", e.device, e.end_text)]
    assert sorted(seen) == sorted(expected)
    for e in sim.drawn_events:  # nothing of the effect, nor the type name of a notice, is in any label
        for _, _, label in seen:
            assert e.effect not in label and (e.event_class != "held_out" or e.event_type not in label)


# --- controllers -------------------------------------------------------------------------------------
def _flags(cfg, controller, seed=3):
    audit = []
    sim = build_simulation(cfg, "events", "e3", seed, None, None, {"controller": controller}, (), None, audit.append)
    sim.run()
    return A.risky_flags(audit), sim.drawn_events


def test_rules_ignore_notices_and_flag_all_flags_each_one(cfg):
    for seed in (1, 2, 3):
        rules, events = _flags(cfg, "rules", seed)
        flag_all, _ = _flags(cfg, "rules_flag_notices", seed)
        for e in events:
            if e.event_class == "held_out":
                assert (e.start_task, e.device) in flag_all
                assert (e.start_task, e.device) not in rules
            if e.event_class == "known":
                assert (e.start_task, e.device) in rules and (e.start_task, e.device) in flag_all


def test_random_tools_is_seeded_by_the_run(cfg, tmp_path):
    a = simulate(cfg, "events", "e3", 1, tmp_path / "a", policy_overrides={"controller": "random_tools"})
    simulate(cfg, "events", "e3", 1, tmp_path / "b", policy_overrides={"controller": "random_tools"})
    c = simulate(cfg, "events", "e3", 2, tmp_path / "c", policy_overrides={"controller": "random_tools"})
    assert (tmp_path / "a/audit.jsonl").read_bytes() == (tmp_path / "b/audit.jsonl").read_bytes()
    assert a["policy_summary"]["random_tools_drawn"] != c["policy_summary"]["random_tools_drawn"]


def test_selective_invocation_sends_only_notices_to_the_model(cfg, tmp_path):
    fake = ScriptedLLM()
    install(fake)
    c = copy.deepcopy(cfg)
    c["controllers"]["llm"].update({"model": "e3test/scripted", "api_base": None, "mode": "record",
                                    "cache_dir": str(tmp_path / "cache"), "frozen": None, "invoke": "uncovered"})
    s = simulate(c, "events", "e3", 3, tmp_path / "run", policy_overrides={"controller": "llm"})
    triggers = [json.loads(r["messages"][1]["content"].split("\n")[0].removeprefix("Event: "))["trigger"]
                for r in fake.requests if r["messages"][-1]["content"].startswith("Event:")]
    assert triggers and set(triggers) <= {"notice_onset", "notice_end"}
    ps = s["policy_summary"]
    assert ps["llm_invoke"] == "uncovered" and ps["rules_handled"] > 0
    assert ps["controller_calls"] == ps["rules_handled"] + len(triggers)


# --- metrics, hand-worked -----------------------------------------------------------------------------
def _dispatch(devices):
    # task i -> device; every task an LLM task
    return pd.DataFrame({"task_id": range(len(devices)), "kind": ["llm"] * len(devices), "device": devices})


def _event(**kw):
    e = {"index": 0, "event_class": "held_out", "event_type": "t", "device": "A", "start_task": 0, "end_task": 10,
         "effect": "harmful", "effect_start_task": 0, "effect_end_task": 10, "slowdown": 3.0,
         "onset_text": "x", "end_text": "y"}
    return {**e, **kw}


def test_exposure_avoidance_and_false_alarms_by_hand():
    d = _dispatch(["A", "A", "B", "A", "B", "B", "B", "A", "B", "B"])
    ev = _event()
    assert A.exposure(d, [ev])["held_out"] == (4, 10)
    assert A.avoidance(d, ev, 3) == (4, False)   # tasks 4, 5, 6 go to B
    assert A.avoidance(d, ev, 4) == (10, True)   # no run of 4: missed, censored at the window's 10
    benign = _event(effect="benign", effect_start_task=0, effect_end_task=0, slowdown=1.0, device="B")
    delayed = _event(effect="delayed", effect_start_task=5, start_task=0, device="A", index=1)
    flags = [(2, "B"), (3, "A"), (12, "A")]  # benign flagged; announced-delayed (justified); after every event
    assert A.false_alarms(flags, [benign, delayed]) == (1, 1, 2)
    assert A.exposure(d, [benign])["held_out"] == (0, 0)  # a benign event degrades nothing


def test_agents_rows_are_valid(cfg):
    from e3.agent.controllers import controller_names
    from e3.policies.base import policy_names

    spec = cfg["agents"]
    assert {r["row"] for r in spec["rows"]} >= {"none", "rules", "rules_flag_notices", "page_hinkley", "random_tools",
                                                 "oracle_avoid"}
    for r in spec["rows"]:
        assert r["policy"] in policy_names()
        assert r.get("controller", "none") in controller_names()
        if r.get("controller") == "llm":
            assert r["model"] in spec["models"]
    assert len({r["row"] for r in spec["rows"]}) == len(spec["rows"])


def test_a_new_model_is_one_config_entry_and_a_recording(cfg, tmp_path, monkeypatch):
    # Any OpenAI-compatible provider: one agents.models entry, one row, then --record; the replies
    # then replay offline and the row enters the table (issue 31, deliverable 4).
    import threading
    from http.server import ThreadingHTTPServer

    from tests.test_llm_record_provider import (  # a local server that answers no_action
        KEY,
        _Provider,
    )

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("E3_TEST_KEY", KEY)
        spec = copy.deepcopy(cfg["agents"])
        spec.update(seeds=[1], responses=str(tmp_path / "replies.jsonl"), record_runs=str(tmp_path / "runs.json"))
        spec["models"]["my-model"] = {"model": "openai/fake", "model_info": {"provider": "a local test server"},
                                      "api_base": f"http://127.0.0.1:{srv.server_address[1]}/v1",
                                      "api_key_env": "E3_TEST_KEY"}
        spec["rows"] = [{"row": "rules", "policy": "e3", "controller": "rules"},
                        {"row": "llm/my-model/reasoning", "policy": "e3", "controller": "llm", "model": "my-model"}]
        c = copy.deepcopy(cfg)
        c["controllers"]["llm"]["cache_dir"] = str(tmp_path / "cache")
        runs = A.record_rows(c, spec, ["llm/my-model/reasoning"], spec["responses"], spec["record_runs"])
        assert runs[0]["llm_requests"] > 0 and runs[0]["llm_fallbacks"] == 0
    finally:
        srv.shutdown()
    # replay, offline (the server is gone): every request is a cache hit
    c["controllers"]["llm"]["cache_dir"] = str(tmp_path / "replay_cache")
    per_row = {r["row"]: A.run_row(c, spec, r, [1]) for r in spec["rows"]}
    t = A.table(spec, per_row, {"oracle": [1.0], "oracle_avoid": [1.0]}, A.record_seconds(spec["record_runs"]))
    assert list(t["row"]) == ["rules", "llm/my-model/reasoning"] and t["llm_requests_per_1000_tasks"].iloc[1] > 0


def test_no_tool_returns_the_hidden_state(cfg):
    # the review's leak: pull_observations once returned Eq. 3's stutter flag (the hidden degraded
    # state), which tells a harmful notice from a benign one
    audit = []
    sim = build_simulation(cfg, "events", "e3", 3, None, None, {"controller": "rules"}, (), None, audit.append)
    sim.run()
    tools = sim.policy.tools
    for name, args in (("pull_observations", {"window_tasks": 300, "limit": 300}), ("get_system_status", {}),
                       ("compute_drift", {"device": "LLM#0"})):
        text = json.dumps(tools.call(name, args))
        for word in ("stutter", "slowdown", "degraded", "effect", "benign", "harmful"):
            assert word not in text, (name, word)
    assert not hasattr(sim.obs.recent[0], "stutter")


def test_events_cut_by_the_horizon_are_left_out():
    ev = [_event(start_task=100, end_task=130, effect_start_task=100, effect_end_task=130),
          _event(start_task=40, end_task=70, effect_start_task=50, effect_end_task=70, effect="delayed", index=1),
          _event(start_task=0, end_task=10, effect="benign", effect_start_task=0, effect_end_task=0, slowdown=1.0, index=2)]
    kept = A.in_horizon(ev, 60)
    assert [e["index"] for e in kept] == [1, 2] and kept[0]["end_task"] == 60 and kept[0]["effect_end_task"] == 60
    d = _dispatch(["B"] * 3)
    ev_short = _event(start_task=0, end_task=3, effect_end_task=3)
    assert A.avoidance(d, ev_short, 5, {"A": "llm", "B": "llm"}) == (0, False)  # short: all elsewhere
    assert A.exposure(d, [ev_short], {"A": "llm", "B": "llm"})["held_out"] == (0, 3)


def test_risk_overrides_are_intervals():
    audit = [{"tool": "set_device_risky", "task_index": 10, "result": {"device": "A", "risky_until_task": 60}},
             {"tool": "clear_device_risky", "task_index": 30, "result": {"device": "A", "was_risky": True}},
             {"tool": "set_device_risky", "task_index": 40, "result": {"device": "B", "risky_until_task": 90}},
             {"tool": "set_device_risky", "task_index": 50, "result": {"error": "unknown device"}}]
    assert A.risky_intervals(audit) == [(10, 30, "A"), (40, 90, "B")]
    benign = _event(effect="benign", effect_start_task=0, effect_end_task=0, slowdown=1.0, device="B",
                    start_task=80, end_task=100)
    # B was flagged at 40 (until 90): the benign notice at 80 is avoided, though no call falls in it
    assert A.false_alarms(A.risky_flags(audit), [benign], A.risky_intervals(audit))[:2] == (1, 1)
    assert A.false_alarms(A.risky_flags(audit), [benign])[:2] == (0, 1)
