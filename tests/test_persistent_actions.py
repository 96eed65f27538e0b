"""Issue 28, deliverables 1, 3 and 5: a controller's action stays in force until new evidence
changes it (one test per actuating tool), re-probing, churn by state hygiene, and warmup
intervention points that the non-event gap cannot swallow."""

from __future__ import annotations

import json

import pytest

from e3.agent.control import ControlSurface, RouterState
from e3.agent.opm import OnlinePerformanceModel
from e3.agent.triggers import Trigger, TriggerGate
from e3.config import load_config
from e3.experiment.run import simulate
from e3.mlperf.pool import DevicePrior
from e3.sim.observation import DeviceState, Observation, new_completed_task
from e3.sim.workload import TaskView

ALPHA, BETA = 0.4, 30.0  # the device's prior (ms/token), which the truth matches before the shift
SHAPES = [(128, 32), (2048, 64), (512, 256), (1024, 128), (256, 32)]


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


class Bench:
    """One LLM device observed at a known truth; ``refit`` is the OPM update the e3 policy makes
    after a completion: ``steady`` refits the whole window (0.1.0's cadence, here after every
    completion), else the recalibration refit (0.2.0)."""

    def __init__(self, persistent: bool) -> None:
        self.pool = [DevicePrior("D", "llm", "s", "v", ALPHA, BETA, 0.0), DevicePrior("E", "llm", "s", "v", ALPHA, BETA, 0.0)]
        self.opm = OnlinePerformanceModel(self.pool, window_tasks=30)
        self.obs = Observation([DeviceState(p.name, p.kind) for p in self.pool])
        self.tools = ControlSurface(RouterState("sect", 2000.0, 60000.0), self.opm, self.obs, sink=[].append,
                                    persistent_actions=persistent)
        self.persistent = persistent
        self.k = 0

    def complete(self, n: int, slowdown: float) -> None:
        for _ in range(n):
            li, lo = SHAPES[self.k % len(SHAPES)]
            y = slowdown * (ALPHA * li + BETA * lo)
            t = TaskView(self.k, "llm", li, lo, 1000.0 * self.k)
            self.obs._now_ms = 1000.0 * self.k + y
            self.opm.observe(new_completed_task(t, "D", t.arrival_ms, t.arrival_ms, self.obs.now_ms))
            if self.persistent:
                self.opm.recalibration_refit("D", 30)
            else:
                self.opm.refit("D")
            self.k += 1

    def ratio(self) -> float:  # predicted / true after the shift, on a 1024/128 task
        t = TaskView(0, "llm", 1024, 128, 0.0)
        return self.opm.predict_ms("D", t) / (2.0 * (ALPHA * 1024 + BETA * 128))


@pytest.mark.parametrize("persistent", [True, False])
def test_update_calibration_stays_in_force(persistent):
    b = Bench(persistent)
    b.complete(30, 1.0)          # a full window at the prior's speed
    b.tools.call("update_calibration", {"device": "D", "factor": 2.0})  # the device is now 2x slower
    right_after = b.ratio()
    b.complete(10, 2.0)          # evidence that agrees with the calibration
    assert right_after == pytest.approx(1.0)
    if persistent:
        assert b.ratio() == pytest.approx(1.0, rel=1e-6)  # still in force 10 tasks later
    else:  # 0.1.0: a refit of the window divided by the calibration gave fit(y): the action is undone
        assert b.ratio() < 0.7


@pytest.mark.parametrize("persistent", [True, False])
def test_profile_update_of_a_device_stays_in_force(persistent):
    b = Bench(persistent)
    b.complete(25, 1.0)
    b.complete(5, 2.0)           # the shift, 5 samples in
    b.tools.call("trigger_online_profile_update", {"device": "D", "window_tasks": 5, "min_samples": 2})
    assert b.ratio() == pytest.approx(1.0)
    b.complete(10, 2.0)
    if persistent:
        assert b.ratio() == pytest.approx(1.0, rel=1e-6)
        assert b.opm.n_window("D") == 15  # the 25 pre-shift samples are gone for good
    else:  # the next full-window refit mixes the pre-shift samples back in
        assert b.ratio() < 0.9


def test_a_no_op_calibration_keeps_the_window():
    b = Bench(True)
    b.complete(30, 1.0)
    b.tools.call("update_calibration", {"device": "D", "factor": 1.0})
    assert b.opm.n_window("D") == 30 and "D" not in b.opm.recalibrating


def test_restart_window_keeps_the_newest_samples_and_their_sums():
    b = Bench(True)
    b.complete(12, 1.0)
    newest = list(b.opm.window["D"])[-4:]
    b.opm.restart_window("D", keep=4)
    assert list(b.opm.window["D"]) == newest
    n, sums = b.opm._window_sums("D", None)
    import numpy as np

    from e3.agent.opm import window_sums
    assert n == 4 and sums == pytest.approx(window_sums(np.array(newest, dtype=float)))


def test_recalibration_ends_when_the_window_is_full_again():
    b = Bench(True)
    b.complete(30, 1.0)
    b.tools.call("update_calibration", {"device": "D", "factor": 2.0})
    assert "D" in b.opm.recalibrating
    b.complete(29, 2.0)
    assert "D" in b.opm.recalibrating
    b.complete(1, 2.0)
    assert "D" not in b.opm.recalibrating


# --- in a run ------------------------------------------------------------------------------------
def _audit(path):
    return [json.loads(x) for x in (path / "audit.jsonl").read_text().splitlines()]


def test_churn_is_state_hygiene_not_a_controller_call(cfg, tmp_path):
    s = simulate(cfg, "churn", "e3", 1, tmp_path / "new")
    assert not [a for a in _audit(tmp_path / "new") if "device_leave" in a["caller"] or "device_return" in a["caller"]]
    old = simulate(cfg, "churn", "e3", 1, tmp_path / "old", policy_overrides={"churn_triggers": True})
    assert [a for a in _audit(tmp_path / "old") if "device_return" in a["caller"]]
    assert old["policy_summary"]["controller_calls"] > s["policy_summary"]["controller_calls"]


def test_warmup_points_are_exempt_from_the_nonevent_gap(cfg, tmp_path):
    # warmup_30: points at tasks 10 and 20, 10 tasks apart, inside the 20-task gap
    s = simulate(cfg, "warmup_30", "e3", 1, tmp_path / "new")
    points = [a["task_index"] for a in _audit(tmp_path / "new") if a["caller"] == "rules:warmup_point"]
    assert sorted(set(points)) == [10, 20]
    old = simulate(cfg, "warmup_30", "e3", 1, tmp_path / "old", policy_overrides={"warmup_points_obey_gap": True})
    assert sorted({a["task_index"] for a in _audit(tmp_path / "old") if a["caller"] == "rules:warmup_point"}) == [10]
    assert old["policy_summary"]["triggers_suppressed"] > s["policy_summary"]["triggers_suppressed"]


def test_a_scheduled_point_is_exempt_and_leaves_the_clocks_alone():
    g = TriggerGate(20, 20)
    assert g.admit(Trigger("warmup_point", 2))
    assert not g.admit(Trigger("warmup_point", 12))  # 0.1.0: the cooldown and the gap swallow it
    assert g.admit(Trigger("warmup_point", 13), scheduled=True)
    assert not g.admit(Trigger("residual_alarm", 15, "B"))  # still inside the gap opened at 2
    assert g.admit(Trigger("residual_alarm", 25, "B"))


def test_reprobe_revisits_a_device_the_router_left(cfg, tmp_path):
    # drift: LLM#0 slows 2x over tasks [100, 220), then recovers; with no traffic it could never be
    # seen to recover. Re-probing sends it a task once it has gone reprobe_after_tasks arrivals idle.
    s = simulate(cfg, "drift", "e3", 1, tmp_path / "p", trace_format="csv")
    assert s["policy_summary"]["probes"] > 0
    off = simulate(cfg, "drift", "e3", 1, tmp_path / "n", policy_overrides={"reprobe_after_tasks": None})
    assert off["policy_summary"]["probes"] == 0
    import pandas as pd
    t = pd.read_csv(tmp_path / "p/tasks.csv")
    llm = t[t["kind"] == "llm"].sort_values("task_id")
    gaps = llm.groupby("device")["task_id"].apply(lambda x: x.diff().max())
    # no device of the kind goes much longer than the probe horizon without a task after warmup
    assert gaps.max() <= 2 * 50 + 10


def test_reprobe_parameters_are_checked(cfg, tmp_path):
    from e3.errors import ConfigError

    with pytest.raises(ConfigError, match="reprobe"):
        simulate(cfg, "drift", "e3", 1, tmp_path / "x", n_tasks=5, policy_overrides={"reprobe_after_tasks": 0})
