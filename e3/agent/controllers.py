"""Meta-controllers: they receive a :class:`Trigger` and act only through a ControlSurface.

* ``rules``: a deterministic expert controller (the offline default and the ablation against
  which an LLM controller is measured).
* ``none``: no meta-control; the fast path and the OPM's own schedule alone.
* ``llm``: any LLM through litellm, replayable (:mod:`e3.agent.llm_controller`).

A controller is one registered class, like a policy (``@register_controller``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from e3.agent.control import ControlSurface
from e3.agent.triggers import Trigger
from e3.errors import ConfigError

_CONTROLLERS: dict[str, type[Controller]] = {}
_BUILTIN_MODULES = ("e3.agent.llm_controller", "e3.agent.change_detection")


class Controller:
    """Base class. ``handle`` is called once per admitted trigger (one "LLM call" in the paper's
    accounting); every action goes through ``tools.call(name, args)``."""

    name: ClassVar[str] = ""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.calls = 0

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def observe(self, device: str, residual_ratio: float, tools: ControlSurface) -> None:
        """Per completed task after warmup: observed/predicted service of ``device`` (the OPM's
        residual as a ratio). Default: ignore. Change detectors act on it through ``tools``."""

    def summary(self) -> dict[str, Any]:
        return {"controller_calls": self.calls}


def register_controller(cls: type[Controller]) -> type[Controller]:
    """Class decorator adding a controller to the registry under ``cls.name``."""
    _CONTROLLERS[cls.name] = cls
    return cls


def _load_builtins() -> None:
    import importlib

    for m in _BUILTIN_MODULES:  # registered on import; imported late to avoid an import cycle
        importlib.import_module(m)


def get_controller(name: str) -> type[Controller]:
    """The controller class registered as ``name``. Raises ConfigError listing the known ones."""
    _load_builtins()
    if name not in _CONTROLLERS:
        raise ConfigError(f"unknown controller {name!r}; registered: {sorted(_CONTROLLERS)}")
    return _CONTROLLERS[name]


def controller_names() -> list[str]:
    """Registered controller names."""
    _load_builtins()
    return sorted(_CONTROLLERS)


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
    * drift or residual alarm: measure the drift, refit that device's profile; for an SDXL
      device, also reset its calibration factor to 1 (the refit absorbs the level);
    * warmup point: refit every device with minimum samples 1 (fast calibration);
    * device leave/return: look at the status (the fast path already drops the device from the
      feasible set and refreshes its statistics on return).
    """

    name = "rules"

    def handle(self, trig: Trigger, tools: ControlSurface) -> None:
        self.calls += 1
        t, d = trig.type, trig.device
        window = self.params.get("refit_window_tasks", 30)
        if t == "semantic_onset":
            tools.call("get_system_status")
            tools.call("set_device_risky", {"device": d})
        elif t == "semantic_offset":
            tools.call("clear_device_risky", {"device": d})
        elif t in ("drift_alarm", "residual_alarm"):
            tools.call("compute_drift", {"device": d, "window_s": self.params.get("drift_window_s", 60.0)})
            tools.call("trigger_online_profile_update", {"device": d, "window_tasks": window, "min_samples": 2})
        elif t == "warmup_point":
            tools.call("trigger_online_profile_update", {"window_tasks": window, "min_samples": 1})
        else:
            tools.call("get_system_status")


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
