"""Issue 10, finding 5 and deliverable 2: latent bugs of the control plane (each test fails on the
code before the fix) and the paper's two readings kept as options: the better-supported one is the
default, the other stays reachable (each test exercises both)."""

from __future__ import annotations

import copy
import json

import pytest

from e3.agent.change_detection import PageHinkleyController
from e3.agent.control import ControlSurface, RouterState
from e3.agent.controllers import RulesController, get_controller
from e3.agent.triggers import Trigger, TriggerGate
from e3.config import load_config
from e3.errors import ConfigError
from e3.experiment.run import build_simulation, simulate
from e3.sim.workload import TaskView


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


def _ran(cfg, scenario, n, tmp_path, policy="e3", **overrides):
    s = build_simulation(cfg, scenario, policy, 1, n, tmp_path / f"{scenario}.parquet", policy_overrides=overrides)
    s.run()
    return s


class FakeTools:
    """Records tool calls; answers get_system_status and compute_drift from a script."""

    def __init__(self, status: dict, drift_ratio: float = 2.0) -> None:
        self.status, self.ratio, self.calls = status, drift_ratio, []
        self.caller = "test"

    def call(self, tool, args=None):
        self.calls.append((tool, dict(args or {})))
        if tool == "get_system_status":
            return self.status
        if tool == "compute_drift":
            from e3.agent.control import smoothed_calibration

            old = self.status["devices"][args["device"]]["calibration"]
            return {"device": args["device"], "ratio": self.ratio, "samples": 4, "calibration": old,
                    "calibration_proposed": smoothed_calibration(old, self.ratio, 0.3)}
        return {}


def _status(**devices):
    return {"devices": {d: {"risky": r, "calibration": c} for d, (r, c) in devices.items()},
            "semantic_events": {d: "game" for d, (r, _c) in devices.items() if r is None}}


# --- finding 5: bugs -------------------------------------------------------------------------------
def test_is_risky_is_a_pure_read_and_sensing_changes_no_state(cfg, tmp_path):
    r = RouterState("sect", 0.0, 0.0)
    r.risky_until["SD#1"] = 10
    assert r.is_risky("SD#1", 9) and not r.is_risky("SD#1", 10)
    assert r.risky_until == {"SD#1": 10}  # the old read deleted the expired entry
    r.expire(10)
    assert r.risky_until == {}
    s = _ran(cfg, "warmup_0", 40, tmp_path)
    k = s.obs.task_index
    s.policy.router.risky_until["SD#0"] = k  # expired at k
    tools = ControlSurface(s.policy.router, s.policy.opm, s.obs)
    st = tools.call("get_system_status")
    assert st["devices"]["SD#0"]["risky"] is False
    assert s.policy.router.risky_until == {"SD#0": k}
    assert tools.audit[-1]["old_state"] == tools.audit[-1]["new_state"]
    assert tools.call("clear_device_risky", {"device": "SD#0"})["was_risky"] is False


def test_a_type_error_inside_a_tool_is_a_bug_not_bad_arguments(cfg, tmp_path):
    s = _ran(cfg, "warmup_0", 20, tmp_path)
    tools = ControlSurface(s.policy.router, s.policy.opm, s.obs)

    def broken(device, window_s=60.0):
        raise TypeError("unsupported operand type(s)")

    tools.compute_drift = broken
    with pytest.raises(TypeError, match="unsupported operand"):
        tools.call("compute_drift", {"device": "LLM#0"})
    # a call that does not match the tool's signature is still the caller's error
    assert "bad arguments" in tools.call("compute_drift", {"device": "LLM#0", "windows": 3})["error"]
    assert "bad arguments" in tools.call("compute_drift", {})["error"]


def test_rules_docstring_promises_only_what_the_code_does():
    doc = RulesController.__doc__
    assert "reset its calibration" not in doc
    tools = FakeTools(_status(**{"SD#1": (False, 1.7)}))
    RulesController({"drift_action": "refit", "refine_ttl": False}).handle(Trigger("drift_alarm", 100, "SD#1"), tools)
    assert [t for t, _ in tools.calls] == ["compute_drift", "trigger_online_profile_update"]  # no calibration reset


def test_page_hinkley_reads_the_parameters_it_documents(cfg, tmp_path):
    for name in ("ph_delta", "ph_threshold", "ph_min_instances", "ph_refit_window_tasks"):
        assert name in PageHinkleyController.parameters and name in PageHinkleyController.__doc__
    c = copy.deepcopy(cfg)
    c["controllers"]["page_hinkley"] = {"ph_refit_window_tasks": 7, "ph_threshold": 0.2}
    simulate(c, "drift", "e3", 1, tmp_path / "ph", n_tasks=200, policy_overrides={"controller": "page_hinkley"})
    audit = [json.loads(x) for x in (tmp_path / "ph/audit.jsonl").read_text().splitlines()]
    det = [a for a in audit if a.get("caller") == "page_hinkley:detection"]
    assert det and all(a["arguments"]["window_tasks"] == 7 for a in det)


@pytest.mark.parametrize("name", ["rules", "none", "page_hinkley", "llm"])
def test_unknown_controller_parameters_are_refused(name):
    with pytest.raises(ConfigError, match=rf"controllers.{name}: unknown parameter.*drift_windw_s"):
        get_controller(name)({"drift_windw_s": 30.0})


def test_a_typo_in_config_controllers_is_refused_before_running(cfg, tmp_path):
    c = copy.deepcopy(cfg)
    c["controllers"]["rules"] = {"refine_tll": True}
    with pytest.raises(ConfigError, match="refine_tll"):
        build_simulation(c, "warmup_0", "e3", 1, 10, tmp_path / "t.parquet")
    c["controllers"]["rules"] = {"drift_action": "reset"}
    with pytest.raises(ConfigError, match="drift_action"):
        build_simulation(c, "warmup_0", "e3", 1, 10, tmp_path / "t.parquet")


@pytest.mark.parametrize(("mode", "holds"), [("force_sect", False), ("switch_once", True)])
def test_switch_router_after_warmup(cfg, tmp_path, mode, holds):
    s = _ran(cfg, "warmup_30", 40, tmp_path, router_after_warmup=mode)
    tools = ControlSurface(s.policy.router, s.policy.opm, s.obs)
    assert tools.call("switch_router", {"router": "explore_risk"})["new"] == "explore_risk"
    s.policy.choose(TaskView(s.obs.task_index, "sdxl", 0, 0, s.obs.now_ms), s.obs)
    # force_sect (the other reading) undoes the switch at the next arrival; switch_once (default) keeps it
    assert (s.policy.router.router == "explore_risk") is holds


# --- deliverable 2: the faithful readings as options ---------------------------------------------
def test_nonevent_gap_per_device():
    pool = TriggerGate(20, 20)
    per = TriggerGate(20, 20, per_device_gap=True)
    for g in (pool, per):
        assert g.admit(Trigger("drift_alarm", 100, "LLM#0"))
    assert not pool.admit(Trigger("drift_alarm", 110, "LLM#1"))  # pool-wide: one alarm silences all
    assert per.admit(Trigger("drift_alarm", 110, "LLM#1"))
    assert not per.admit(Trigger("residual_alarm", 115, "LLM#1"))  # the gap still holds per device


def test_e3_wires_the_per_device_gap(cfg, tmp_path):
    assert _ran(cfg, "warmup_0", 5, tmp_path).policy.gate.per_device_gap  # the default
    assert not _ran(cfg, "warmup_0", 5, tmp_path, nonevent_gap_per_device=False).policy.gate.per_device_gap


def test_drift_as_a_smoothed_calibration_update():
    tools = FakeTools(_status(**{"LLM#0": (False, 1.2)}), drift_ratio=2.0)
    RulesController({}).handle(Trigger("drift_alarm", 120, "LLM#0"), tools)  # the default: calibrate
    names = [t for t, _ in tools.calls]
    assert "trigger_online_profile_update" not in names
    (_, args), = [c for c in tools.calls if c[0] == "update_calibration"]
    assert args == {"device": "LLM#0", "factor": pytest.approx(1.2 * (1 - 0.3 + 0.3 * 2.0))}  # Table 4: 0.3


def test_smoothed_calibration_is_table_4():
    from e3.agent.control import BOUNDS, smoothed_calibration

    assert smoothed_calibration(1.0, 2.0, 0.3) == pytest.approx(1.3)
    assert smoothed_calibration(1.0, 1.0, 0.3) == 1.0
    assert smoothed_calibration(9.0, 100.0, 0.3) == BOUNDS["factor"][1]


def test_drift_calibration_in_a_run(cfg, tmp_path):
    simulate(cfg, "drift", "e3", 1, tmp_path / "cal")  # defaults: calibrate, per-device gap
    audit = [json.loads(x) for x in (tmp_path / "cal/audit.jsonl").read_text().splitlines()]
    cal = [a for a in audit if a.get("tool") == "update_calibration"]
    assert cal and all("error" not in a["result"] for a in cal)
    assert not [a for a in audit if a.get("tool") == "trigger_online_profile_update"
                and a["caller"].startswith("rules:drift")]


def test_refine_ttl_rearms_an_expired_override_while_the_event_lasts():
    status = _status(**{"SD#1": (None, 1.0), "LLM#0": (False, 1.0)})
    status["devices"]["SD#1"]["risky"] = False  # event active, override expired
    for refine, rearmed in ((False, False), (True, True)):
        tools = FakeTools(status)
        RulesController({"refine_ttl": refine}).handle(Trigger("drift_alarm", 100, "LLM#0"), tools)
        assert (("set_device_risky", {"device": "SD#1"}) in tools.calls) is rearmed


def test_none_learns_online_after_alarms_or_with_a_steady_refit_cadence(cfg, tmp_path):
    # After the warmup budget the OPM refits only in a recalibration period after an alarm
    # (section 3.4's reading, the 0.2.0 default) or every 5 completions (section 3.7's reading,
    # 0.1.0). With neither (and no re-probing) e3/none at warmup 0 routes as fixed_heuristic.
    frozen = {"controller": "none", "steady_refit_every_tasks": None, "recalibrate_after_alarm": False,
              "reprobe_after_tasks": None}
    runs = {}
    for name, pol, over in (("fixed", "fixed_heuristic", None),
                            ("frozen", "e3", frozen),
                            ("after_alarms", "e3", {"controller": "none"}),
                            ("steady", "e3", {**frozen, "steady_refit_every_tasks": 5})):
        runs[name] = simulate(cfg, "warmup_0", pol, 1, tmp_path / name, n_tasks=120,
                              policy_overrides=over)["latency_ms"]["mean"]
    assert runs["frozen"] == runs["fixed"]
    assert runs["after_alarms"] < runs["fixed"]
    assert runs["steady"] < runs["fixed"]


@pytest.mark.parametrize("scenario", ["drift", "semantic"])
def test_steady_refit_of_changed_devices_equals_refitting_the_pool(cfg, tmp_path, monkeypatch, scenario):
    # the steady cadence refits only devices with new completions or a new calibration; refitting
    # every device (the definition) must give the same decisions
    from e3.policies.e3_agent import E3Agent

    fast = simulate(cfg, scenario, "e3", 3, tmp_path / "fast", n_tasks=200)["latency_ms"]

    def refit_all(self):
        for d in self.opm.est:
            self.opm.refit(d)

    monkeypatch.setattr(E3Agent, "_steady_refit", refit_all)
    slow = simulate(cfg, scenario, "e3", 3, tmp_path / "slow", n_tasks=200)["latency_ms"]
    assert fast == pytest.approx(slow, rel=1e-9)


def test_warmup_refit_scope(cfg, tmp_path):
    """``observed`` refits in the warmup only devices with new completions, so fewer refits than
    ``all``; an unknown scope is a config error naming the field."""
    refits = {}
    for scope in ("all", "observed"):
        s = _ran(cfg, "warmup_100", 100, tmp_path / scope, warmup_refit_scope=scope)
        refits[scope] = sum(e.refits for e in s.policy.opm.est.values())
    assert 0 < refits["observed"] < refits["all"]
    with pytest.raises(ConfigError, match="warmup_refit_scope"):
        _ran(cfg, "warmup_100", 10, tmp_path / "bad", warmup_refit_scope="some")
