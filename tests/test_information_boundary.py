"""The information boundary (paper Table 1): no object a policy, the OPM or a controller holds can
reach the simulator's ground truth, except the Oracle's, which is handed an OracleView on purpose.

The check walks the object graph (``gc.get_referents``) from the policy after a full run, through
instance data, containers, bound methods and closures. It does not walk into modules, classes or
code: those are static program text, and what matters is which live *objects* a policy can reach.
The positive control (the Oracle) proves the walk would find a leak.
"""

from __future__ import annotations

import gc
import types

import pytest
import salabim as sim

from e3.agent.control import ControlSurface
from e3.config import load_config
from e3.experiment.run import build_simulation
from e3.sim.engine import Simulation, _DeviceProc, _Job
from e3.sim.truth import GroundTruth, OracleView

FORBIDDEN = (GroundTruth, OracleView, Simulation, sim.Environment, sim.Component, _Job, _DeviceProc)
_STATIC = (types.ModuleType, type, types.CodeType, types.BuiltinFunctionType, types.FrameType)


def reachable_forbidden(root: object) -> list[str]:
    """Names of the forbidden types among the live objects reachable from ``root``."""
    seen: set[int] = set()
    stack = [root]
    found: set[str] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, FORBIDDEN):
            found.add(type(obj).__name__)
            continue
        if isinstance(obj, _STATIC):
            continue
        if isinstance(obj, types.FunctionType):
            # A function's globals are program text; its closure and defaults are data it carries.
            stack.extend(c.cell_contents for c in (obj.__closure__ or ()) if _cell_full(c))
            stack.extend(obj.__defaults__ or ())
            continue
        stack.extend(gc.get_referents(obj))
    return sorted(found)


def _cell_full(cell) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - probing an empty cell raises
    except ValueError:
        return False
    return True


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


def _ran(cfg, scenario: str, policy: str, tmp_path) -> Simulation:
    s = build_simulation(cfg, scenario, policy, 1, 120, tmp_path / "t.parquet")
    s.run()
    return s


@pytest.mark.parametrize("scenario", ["semantic", "churn", "drift"])
@pytest.mark.parametrize("policy", ["e3", "fixed_heuristic", "round_robin"])
def test_no_path_from_a_policy_to_the_truth(cfg, tmp_path, scenario, policy):
    s = _ran(cfg, scenario, policy, tmp_path)
    assert reachable_forbidden(s.policy) == []
    assert reachable_forbidden(s.obs) == []


def test_no_path_from_the_control_surface_or_the_opm(cfg, tmp_path):
    s = _ran(cfg, "semantic", "e3", tmp_path)
    tools = s.policy.tools
    assert isinstance(tools, ControlSurface), "the semantic run must have called the controller"
    assert tools.tool_calls > 0, "the controller must have used the tools"
    assert reachable_forbidden(tools) == []
    assert reachable_forbidden(s.policy.opm) == []
    assert reachable_forbidden(s.policy.controller) == []


def test_positive_control_the_oracle_reaches_the_truth(cfg, tmp_path):
    s = _ran(cfg, "drift", "oracle", tmp_path)
    found = reachable_forbidden(s.policy)
    assert "OracleView" in found


def test_the_walk_follows_closures(cfg, tmp_path):
    s = _ran(cfg, "warmup_0", "round_robin", tmp_path)
    leaky = (lambda truth: (lambda: truth))(s._truth)
    assert reachable_forbidden({"callback": leaky}) == ["GroundTruth"]


def test_observation_types_expose_no_service_time():
    from e3.sim.observation import DeviceState, Observation
    from e3.sim.workload import TaskView

    # The decision-time task record holds features only (Table 1): no service or noise field.
    assert set(TaskView.__slots__) == {"task_id", "kind", "input_tokens", "output_tokens", "arrival_ms"}
    assert not any(word in f for word in ("truth", "noise", "service_ms", "mismatch")
                   for f in (*DeviceState.__slots__, *Observation.__slots__))


def test_device_views_are_read_only(tmp_path, repo):
    # issue 11: no policy or tool can change a queue, an availability flag or the device mapping
    from e3.config import load_config
    from e3.experiment.run import build_simulation

    cfg = load_config(repo / "config/config.yaml")
    s = build_simulation(cfg, "churn", "round_robin", 1, 40, tmp_path / "t.parquet")
    s.run()
    dev = s.obs.devices["LLM#0"]
    for attr, value in (("available", False), ("in_service", None), ("in_service_start_ms", 0.0),
                        ("name", "X"), ("kind", "sdxl"), ("queue_length", 0)):
        with pytest.raises(AttributeError):
            setattr(dev, attr, value)
    assert isinstance(dev.queue, tuple)  # a snapshot: appending to it cannot reach the engine
    with pytest.raises(TypeError):
        s.obs.devices["LLM#9"] = dev
    with pytest.raises(TypeError):
        del s.obs.devices["LLM#0"]
