"""The versioned prompt template of the LLM meta-controller (paper section 3.5).

The system message is fixed for a run (role, pool, decision rules, and in ``json_schema`` mode the
tool list), so a local server can reuse its prompt prefix; the user message carries the trigger and
a compact telemetry snapshot from ``get_system_status``. Changing any text here must bump
:data:`PROMPT_VERSION`, which is part of every cache key.
"""

from __future__ import annotations

import json
from typing import Any

from e3.agent.triggers import Trigger

PROMPT_VERSION = "e3-prompt-4"

_ROLE = (
    "You are the meta-controller of an edge server that dispatches LLM and SDXL inference tasks to "
    "a pool of devices. A fast router already sends every task to the device with the smallest "
    "predicted completion time. You are called only when something changes. You act only through "
    "the tools. Answer with exactly one tool call."
)

_RULES = (
    "Rules (D is the event's device; use these argument values):\n"
    '- semantic_onset on D: {"name": "set_device_risky", "arguments": {"device": D, "ttl_tasks": 50}}\n'
    '- semantic_offset on D: {"name": "clear_device_risky", "arguments": {"device": D}}\n'
    "- drift_alarm or residual_alarm on D: "
    '{"name": "compute_drift", "arguments": {"device": D, "window_s": 60}}\n'
    "- Result of compute_drift on D with calibration_proposed P: "
    '{"name": "update_calibration", "arguments": {"device": D, "factor": P}}\n'
    "- warmup_point: "
    '{"name": "trigger_online_profile_update", "arguments": {"window_tasks": 30, "min_samples": 1}}\n'
    '- device_leave or device_return: {"name": "no_action", "arguments": {}}\n'
    '- If nothing needs to change: {"name": "no_action", "arguments": {}}'
)


def system_message(devices: dict[str, str], tools: list[dict[str, Any]] | None) -> str:
    """The run-constant system text. ``devices``: name -> kind. ``tools``: listed inline when the
    model gets no native tool list (``json_schema`` reply format), else None."""
    lines = [_ROLE, "Devices: " + ", ".join(f"{n} ({k})" for n, k in devices.items()) + "."]
    if tools is not None:
        lines.append("Tools (reply as {\"name\": TOOL, \"arguments\": {...}}):\n" + json.dumps(tools, separators=(",", ":")))
    # The rules come last, nearest the question: with the tool list after them, a 1.5B model chose
    # a profile update on 5 of 5 semantic onsets; with the rules last it chose set_device_risky.
    lines.append(_RULES)
    return "\n".join(lines)


def _compact_status(status: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, d in status.get("devices", {}).items():
        out[name] = {"available": d["available"], "queue": d["queue_length"], "risky": d["risky"],
                     "samples": d["samples"], "uncertainty": round(d["uncertainty"], 2)}
    return {"task_index": status.get("task_index"), "router": status.get("router"), "devices": out,
            "semantic_events": status.get("semantic_events", {})}


def trigger_message(trig: Trigger, status: dict[str, Any]) -> str:
    """The user text for one trigger: its type, device and observable detail, plus telemetry."""
    detail = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in trig.detail.items() if v not in ("", None)}
    head = {"trigger": trig.type, "device": trig.device or None, "detail": detail}
    return ("Event: " + json.dumps(head, separators=(",", ":"), sort_keys=True) + "\nStatus: "
            + json.dumps(_compact_status(status), separators=(",", ":"), sort_keys=True)
            + "\nReply with one tool call.")


def result_message(name: str, result: dict[str, Any]) -> str:
    """The user text that returns a sensing tool's result for the second round."""
    return (f"Result of {name}: " + json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)
            + "\nReply with the next tool call, or no_action.")
