"""Meta-controllers: they receive a :class:`Trigger` and act only through a ControlSurface.

* ``rules``: a deterministic expert controller (the offline default and the ablation against
  which an LLM controller is measured).
* ``none``: no meta-control; the fast path and the OPM's own schedule alone.
* ``llm``: any LLM through litellm, replayable (:mod:`e3.agent.llm_controller`).
* ``rules_flag_notices``: the rules, plus every free-text notice treated as harmful (issue 31's
  natural baseline for held-out events; ``rules`` itself ignores them).
* ``random_tools``: one uniformly drawn valid tool call per trigger (issue 31's negative control).

A controller is one registered class, like a policy (``@register_controller``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from e3.agent.control import ControlSurface
from e3.agent.triggers import Trigger
from e3.errors import ConfigError
from e3.registry import Registry

#: meta-controllers by name (:class:`e3.registry.Registry`; built-ins imported late, on first use,
#: because they import this module)
CONTROLLERS: Registry = Registry("controller", ("e3.agent.llm_controller", "e3.agent.change_detection"))
#: What the rules controller does on a drift or residual alarm (see :class:`RulesController`).
DRIFT_ACTIONS = ("refit", "calibrate")


class Controller:
    """Base class. ``handle`` is called once per admitted trigger (one "LLM call" in the paper's
    accounting); every action goes through ``tools.call(name, args)``.

    Class attributes:
        name: registry name (``policies.e3.controller``, ``e3 simulate --controller``).
        parameters: the parameters the controller reads, with their defaults. The e3 policy passes
            ``drift_window_s`` and ``refit_window_tasks`` from its own parameters (the calibration
            smoothing lives in the tools, ``policies.e3.calibration_smoothing``); config
            ``controllers.NAME`` adds or overrides the rest.

    Raises:
        ConfigError: a parameter the controller does not read (a typo would otherwise be ignored).
    """

    name: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {"drift_window_s": 60.0, "refit_window_tasks": 30}

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ConfigError(f"controllers.{self.name}: unknown parameter(s) {unknown}; "
                              f"known: {sorted(self.parameters)}")
        self.params = {**self.parameters, **params}
        self.calls = 0

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def observe(self, device: str, residual_ratio: float, tools: ControlSurface) -> None:
        """Per completed task after warmup: observed/predicted service of ``device`` (the OPM's
        residual as a ratio). Default: ignore. Change detectors act on it through ``tools``."""

    def summary(self) -> dict[str, Any]:
        return {"controller_calls": self.calls}


#: the registry's methods: ``register_controller`` (class decorator; a built-in name is reserved,
#: the same class from the same file, imported again, replaces itself), ``get_controller(name)``
#: and ``controller_names()``
register_controller = CONTROLLERS.register
get_controller = CONTROLLERS.get
controller_names = CONTROLLERS.names


@register_controller
class NoController(Controller):
    """No meta-control: triggers are counted by the gate but nothing is invoked."""

    name = "none"

    def handle(self, trig, tools):
        return None


@register_controller
class RulesController(Controller):
    """Deterministic expert rules over the same tools an LLM controller gets:

    * semantic onset: look at the status, mark the device risky for the default TTL;
    * semantic offset: clear the device's risk override;
    * drift or residual alarm: measure the drift, then (``drift_action``)

      - ``calibrate`` (default; Table 4, "Drift defaults: drift threshold 1.3, window 60 s,
        calibration smoothing 0.3 | Detects sustained residual mismatch and updates
        calibration"): set the factor ``compute_drift`` proposes, Table 4's smoothing of the
        measured observed/predicted ratio (``e3.agent.control.smoothed_calibration``:
        ``new = old * (1 - s + s * ratio)``, clipped to the tool's bounds [0.1, 10]);
      - ``refit`` (the other reading, the frozen results before issue 10): refit that device's
        profile by least squares on its recent window (``refit_window_tasks``, minimum 2 samples);
    * warmup point: refit every device with minimum samples 1 (fast calibration);
    * device leave/return: look at the status (the fast path already drops the device from the
      feasible set and refreshes its statistics on return);
    * a free-text notice (``notice_onset`` / ``notice_end``, issue 31's held-out events): look at
      the status; no rule matches its text, so ``rules`` is also the ignore-every-notice baseline.

    With ``refine_ttl`` (default True), every admitted trigger also re-arms, with the default
    TTL, the risk override of each device whose semantic event is still active but whose override
    has expired (section 3.5: "subsequent LLM invocations refine TTL choice and calibration
    intensity when necessary"); with False, a window longer than the TTL is let through once the
    override expires.
    """

    name = "rules"
    parameters = {**Controller.parameters, "drift_action": "calibrate", "refine_ttl": True}

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        if self.params["drift_action"] not in DRIFT_ACTIONS:
            raise ConfigError(f"controllers.{self.name}.drift_action: {self.params['drift_action']!r} is not "
                              f"one of {list(DRIFT_ACTIONS)}")

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:
        self.calls += 1
        t, d = trig.type, trig.device
        window = self.params["refit_window_tasks"]
        if t == "semantic_onset":
            tools.call("get_system_status")
            tools.call("set_device_risky", {"device": d})
        elif t == "semantic_offset":
            tools.call("clear_device_risky", {"device": d})
        elif t in ("drift_alarm", "residual_alarm"):
            drift = tools.call("compute_drift", {"device": d, "window_s": self.params["drift_window_s"]})
            if self.params["drift_action"] == "calibrate":
                self._calibrate(d, drift, tools)
            else:
                tools.call("trigger_online_profile_update", {"device": d, "window_tasks": window, "min_samples": 2})
        elif t == "warmup_point":
            tools.call("trigger_online_profile_update", {"window_tasks": window, "min_samples": 1})
        else:
            tools.call("get_system_status")
        if self.params["refine_ttl"]:
            self._rearm(tools)

    def _calibrate(self, device: str, drift: dict[str, Any], tools: ControlSurface) -> None:
        # compute_drift proposes Table 4's smoothed factor (control.smoothed_calibration)
        if "error" in drift or "calibration_proposed" not in drift:
            return
        tools.call("update_calibration", {"device": device, "factor": drift["calibration_proposed"]})

    def _rearm(self, tools: ControlSurface) -> None:
        status = tools.call("get_system_status")
        for device in status["semantic_events"]:  # still active (an offset has removed its device)
            if not status["devices"][device]["risky"]:
                tools.call("set_device_risky", {"device": device})


@register_controller
class RulesFlagNoticesController(RulesController):
    """The rules, plus the trivial rule for held-out events: every free-text notice is treated as
    harmful (``notice_onset``: mark the device risky for the default TTL; ``notice_end``: clear
    it). Issue 31's baseline for unknown annotations. Unlike a known event's, a notice's override
    is not re-armed when it expires (the status lists notices apart); the benchmark's windows (at
    most 35 arrivals) are shorter than the TTL (50), so it never expires inside one."""

    name = "rules_flag_notices"

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:
        if trig.type == "notice_onset":
            trig = Trigger("semantic_onset", trig.task_index, trig.device, trig.detail)
        elif trig.type == "notice_end":
            trig = Trigger("semantic_offset", trig.task_index, trig.device, trig.detail)
        super().handle(trig, tools)


#: The tool calls :class:`RandomToolsController` draws from (no_action included).
RANDOM_TOOL_CHOICES = ("no_action", "set_device_risky", "clear_device_risky", "update_calibration",
                       "trigger_online_profile_update", "switch_router")


@register_controller
class RandomToolsController(Controller):
    """Negative control (issue 31): at each trigger, one look at the status (to list the devices;
    audited like any call) and one valid acting call drawn uniformly from
    :data:`RANDOM_TOOL_CHOICES` (``no_action``: none), with uniformly drawn arguments (a pool
    device; a calibration factor log-uniform in [0.5, 2]; a router of ``sect`` / ``explore_risk``;
    a profile update of that device with Table 4's window of 30 and minimum 2 samples). It uses the same tools and
    bounds as every controller, so whatever it scores is what acting without understanding costs.

    Parameter ``run_seed``: set by the e3 policy from its own seed stream (seed, scenario, policy),
    so each replicate draws differently and reruns draw the same."""

    name = "random_tools"
    parameters = {**Controller.parameters, "run_seed": 0}

    def __init__(self, params: dict[str, Any]) -> None:
        import random

        super().__init__(params)
        self.rng = random.Random(int(self.params["run_seed"]))
        self.drawn = dict.fromkeys(RANDOM_TOOL_CHOICES, 0)

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:
        import math

        self.calls += 1
        rng = self.rng
        devices = sorted(tools.call("get_system_status")["devices"])
        tool = rng.choice(RANDOM_TOOL_CHOICES)
        self.drawn[tool] += 1
        if tool == "set_device_risky" or tool == "clear_device_risky":
            tools.call(tool, {"device": rng.choice(devices)})
        elif tool == "update_calibration":
            tools.call(tool, {"device": rng.choice(devices), "factor": round(math.exp(rng.uniform(-math.log(2), math.log(2))), 4)})
        elif tool == "trigger_online_profile_update":
            tools.call(tool, {"device": rng.choice(devices), "window_tasks": 30, "min_samples": 2})
        elif tool == "switch_router":
            tools.call(tool, {"router": rng.choice(("sect", "explore_risk"))})

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "random_tools_drawn": dict(self.drawn)}


#: Share of controller calls that may fall back to the rules before a run warns (a provider
#: that is down turns every call into a fallback; a few malformed replies are expected).
FALLBACK_WARN_FRACTION = 0.1


def fallback_warning(summary: dict[str, Any], max_fraction: float = FALLBACK_WARN_FRACTION) -> str | None:
    """A warning line when an LLM run's fallbacks exceed ``max_fraction`` of its controller
    calls, else None.

    Args:
        summary: a run's ``summary.json`` dict (reads ``policy_summary.llm_fallbacks``,
            ``controller_calls`` and ``llm_fallback_reasons``).
    """
    ps = summary.get("policy_summary", {})
    calls, fallbacks = ps.get("controller_calls", 0), ps.get("llm_fallbacks", 0)
    if not calls or fallbacks <= max_fraction * calls:
        return None
    reasons = {k: v for k, v in sorted(ps.get("llm_fallback_reasons", {}).items()) if v}
    return (f"{fallbacks} of {calls} LLM controller calls fell back to the rules controller "
            f"({reasons}); the run measures the rules, not the LLM. Check the provider "
            f"(controllers.llm: model, api_base) and the audit log's 'fallback' records")
