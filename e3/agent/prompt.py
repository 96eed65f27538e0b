"""The versioned prompt template of the LLM meta-controller (paper section 3.5).

The system message is fixed for a run (role, pool, decision rules, and in ``json_schema`` mode the
tool list), so a local server can reuse its prompt prefix; the user message carries the trigger and
a compact telemetry snapshot from ``get_system_status``. Changing any text here must bump
:data:`PROMPT_VERSION`, which is part of every cache key.
"""

from __future__ import annotations

import json
from typing import Any

from e3.agent.control import BOUNDED_VIEW_DEVICES, kind_totals
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


def _kind_counts(kinds: list[str]) -> str:
    return ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))


def system_message(devices: dict[str, str], tools: list[dict[str, Any]] | None) -> str:
    """The run-constant system text. ``devices``: name -> kind. ``tools``: listed inline when the
    model gets no native tool list (``json_schema`` reply format), else None. A pool of more than
    :data:`~e3.agent.tool_schemas.BOUNDED_VIEW_DEVICES` devices is described by its counts per
    kind (the text's length does not grow with the pool)."""
    if len(devices) <= BOUNDED_VIEW_DEVICES:
        pool = "Devices: " + ", ".join(f"{n} ({k})" for n, k in devices.items()) + "."
    else:
        pool = (f"Devices: {len(devices)} ({_kind_counts(list(devices.values()))}). Each status lists the "
                f"event's device and at most {BOUNDED_VIEW_DEVICES} others (risky, in a semantic event, "
                "or the longest queues), with totals per kind.")
    lines = [_ROLE, pool]
    if tools is not None:
        lines.append("Tools (reply as {\"name\": TOOL, \"arguments\": {...}}):\n" + json.dumps(tools, separators=(",", ":")))
    # The rules come last, nearest the question: with the tool list after them, a 1.5B model chose
    # a profile update on 5 of 5 semantic onsets; with the rules last it chose set_device_risky.
    lines.append(_RULES)
    return "\n".join(lines)


def _compact_status(status: dict[str, Any], focus: str | None = None) -> dict[str, Any]:
    """The telemetry a prompt carries. Up to BOUNDED_VIEW_DEVICES devices: every device. A larger
    pool (issue 11, bounded view): totals per kind, then at most BOUNDED_VIEW_DEVICES devices (the
    ``focus`` device, risky ones, those in a semantic event, then the longest queues; ties by name)
    and only their semantic events. A large pool's status from ``get_system_status`` is already
    bounded (it has ``pool``, the totals it keeps)."""
    devices = status.get("devices", {})

    def row(d: dict[str, Any]) -> dict[str, Any]:
        return {"available": d["available"], "queue": d["queue_length"], "risky": d["risky"],
                "samples": d["samples"], "uncertainty": round(d["uncertainty"], 2)}

    events = status.get("semantic_events", {})
    if len(devices) <= BOUNDED_VIEW_DEVICES and "pool" not in status:
        return {"task_index": status.get("task_index"), "router": status.get("router"),
                "devices": {name: row(d) for name, d in devices.items()}, "semantic_events": events}
    ranked = sorted(devices, key=lambda n: (n != focus, not devices[n]["risky"], n not in events,
                                            -devices[n]["queue_length"], n))
    shown = ranked[:BOUNDED_VIEW_DEVICES]
    totals = status.get("pool")  # a large pool's get_system_status is already bounded and totalled
    if totals is None:
        totals = kind_totals((d.get("kind", "?"), d["available"], d["queue_length"], d["risky"])
                             for d in devices.values())
    return {"task_index": status.get("task_index"), "router": status.get("router"), "pool": totals,
            "devices": {name: row(devices[name]) for name in shown},
            "semantic_events": {n: events[n] for n in shown if n in events},
            "semantic_events_total": len(events)}


def trigger_message(trig: Trigger, status: dict[str, Any]) -> str:
    """The user text for one trigger: its type, device and observable detail, plus telemetry."""
    detail = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in trig.detail.items() if v not in ("", None)}
    head = {"trigger": trig.type, "device": trig.device or None, "detail": detail}
    return ("Event: " + json.dumps(head, separators=(",", ":"), sort_keys=True) + "\nStatus: "
            + json.dumps(_compact_status(status, trig.device or None), separators=(",", ":"), sort_keys=True)
            + "\nReply with one tool call.")


def result_message(name: str, result: dict[str, Any]) -> str:
    """The user text that returns a sensing tool's result for the second round (a status of a pool
    larger than BOUNDED_VIEW_DEVICES is the bounded view, as in :func:`trigger_message`)."""
    if name == "get_system_status" and (len(result.get("devices", {})) > BOUNDED_VIEW_DEVICES or "pool" in result):
        result = _compact_status(result)
    return (f"Result of {name}: " + json.dumps(result, separators=(",", ":"), sort_keys=True, default=str)
            + "\nReply with the next tool call, or no_action.")
