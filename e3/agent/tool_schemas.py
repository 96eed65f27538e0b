"""JSON-schema signatures of the nine Table-2 tools, in the OpenAI tool format.

Numeric bounds come from :data:`e3.agent.control.BOUNDS`, so the schema an LLM sees and the checks
the control surface applies cannot disagree. Device arguments are enums of the pool's device
names up to :data:`BOUNDED_VIEW_DEVICES` devices; a larger pool gets a plain string (the control
surface rejects an unknown name), so the schema stays bounded at any pool size. :func:`reply_schema` wraps the same signatures into one JSON schema for models that cannot
call tools natively (the reply is a single ``{"name": ..., "arguments": {...}}`` object, or the
pseudo-tool ``no_action``), which llama.cpp turns into a grammar.
"""

from __future__ import annotations

from typing import Any

from e3.agent.control import BOUNDED_VIEW_DEVICES, BOUNDS, ROUTERS, TOOL_NAMES

NO_ACTION = "no_action"

_DESCRIPTIONS = {
    "get_system_status": "Queue lengths, availability, OPM estimates, uncertainty, risk overrides and "
                         "active semantic events of every device.",
    "pull_observations": "Recently completed tasks (device, service_ms, latency_ms, stutter).",
    "compute_drift": "Observed/predicted service-time ratio of one device over a recent window.",
    "update_calibration": "Set a device's calibration factor (multiplies the OPM's predictions).",
    "switch_router": "Switch the fast-path router: sect (steady state) or explore_risk (warmup).",
    "set_router_params": "Set the SECT exploration weight and/or the risk penalty, in ms.",
    "trigger_online_profile_update": "Refit the OPM's profile of one device (or all) from recent "
                                     "completed tasks.",
    "set_device_risky": "Mark a device risky for ttl_tasks arrivals: the fast path avoids it while "
                        "a safe device is available.",
    "clear_device_risky": "Clear a device's risk override.",
}


def _num(name: str, integer: bool, description: str) -> dict[str, Any]:
    lo, hi = BOUNDS[name]
    return {"type": "integer" if integer else "number", "minimum": lo, "maximum": hi, "description": description}


def tool_parameters(devices: list[str]) -> dict[str, dict[str, Any]]:
    """Tool name -> JSON schema of its arguments (object, closed, bounded).

    Args:
        devices: the pool's device names; more than :data:`BOUNDED_VIEW_DEVICES` gives a device
            argument without an enum (its size would grow with the pool).
    """
    if len(devices) <= BOUNDED_VIEW_DEVICES:
        dev = {"type": "string", "enum": list(devices), "description": "device name"}
    else:
        dev = {"type": "string", "minLength": 1, "maxLength": 64, "description": "device name, as in the status"}

    def obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    return {
        "get_system_status": obj({}, []),
        "pull_observations": obj({"window_tasks": _num("window_tasks", True, "recent completions to scan"),
                                  "limit": _num("limit", True, "records to return")}, []),
        "compute_drift": obj({"device": dev, "window_s": _num("window_s", False, "window in seconds")}, ["device"]),
        "update_calibration": obj({"device": dev, "factor": _num("factor", False, "multiplier on predictions")},
                                  ["device", "factor"]),
        "switch_router": obj({"router": {"type": "string", "enum": list(ROUTERS)}}, ["router"]),
        "set_router_params": obj({"explore_weight_ms": _num("explore_weight_ms", False, "ms"),
                                  "risk_penalty_ms": _num("risk_penalty_ms", False, "ms")}, []),
        "trigger_online_profile_update": obj({"device": dev,
                                              "window_tasks": _num("window_tasks", True, "recent completions"),
                                              "min_samples": _num("min_samples", True, "minimum samples")}, []),
        "set_device_risky": obj({"device": dev, "ttl_tasks": _num("ttl_tasks", True, "time to live, in arrivals")},
                                ["device"]),
        "clear_device_risky": obj({"device": dev}, ["device"]),
    }


def openai_tools(devices: list[str]) -> list[dict[str, Any]]:
    """The nine tools as an OpenAI ``tools`` list (``{"type": "function", "function": {...}}``)."""
    params = tool_parameters(devices)
    return [{"type": "function", "function": {"name": n, "description": _DESCRIPTIONS[n], "parameters": params[n]}}
            for n in TOOL_NAMES]


def reply_schema(devices: list[str]) -> dict[str, Any]:
    """One JSON schema for a single-tool reply: ``anyOf`` one ``{name: const, arguments}`` per tool,
    plus ``no_action``."""
    params = tool_parameters(devices)
    options = [{"type": "object", "properties": {"name": {"const": n}, "arguments": params[n]},
                "required": ["name", "arguments"], "additionalProperties": False} for n in TOOL_NAMES]
    options.append({"type": "object", "properties": {"name": {"const": NO_ACTION},
                                                     "arguments": {"type": "object", "maxProperties": 0}},
                    "required": ["name", "arguments"], "additionalProperties": False})
    return {"anyOf": options}
