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

#: The decision-table prompt's version (0.1.0's only prompt; its recorded replies are keyed by it).
PROMPT_VERSION = "e3-prompt-4"
#: The reasoning prompt's version (issue 28; the default from 0.2.0).
REASONING_PROMPT_VERSION = "e3-prompt-5-reasoning"
#: Prompt variants (``controllers.llm.prompt``) and their versions.
PROMPT_VERSIONS = {"decision_table": PROMPT_VERSION, "reasoning": REASONING_PROMPT_VERSION}

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


# The reasoning prompt (issue 28): the goal, what the telemetry means, what each tool changes and
# the constraints of Tables 2 and 4, never which tool to call for which trigger.
_GOAL = (
    "Goal: keep the mean end-to-end latency of tasks low and avoid stutter, i.e. tasks served by a "
    "device while it is degraded by a semantic event. Device speeds are unknown at first and can "
    "change without notice; the router's predictions come from an online performance model (OPM) "
    "fitted to completed tasks."
)
_TELEMETRY = (
    "Telemetry: queue = tasks waiting or running on the device; samples = completed tasks in its "
    "OPM window; uncertainty in [0, 1] (high: few samples or poor fit); risky = under a risk "
    "override (the router avoids it while a safe device of its kind exists). Event details: ratio = "
    "observed / predicted service time over the recent window (above 1.3: slower than predicted; "
    "below 1/1.3: faster); semantic_onset / semantic_offset = an announced degradation of a device "
    "starts / ends."
)
_CONSTRAINTS = (
    "Constraints: you may call at most two tools per event; one sensing result (get_system_status, "
    "pull_observations, compute_drift) is returned to you before your second call. A risk override "
    "lasts ttl_tasks arrivals (default 50) unless cleared. A calibration factor multiplies every "
    "prediction of the device (bounds 0.1-10); compute_drift proposes one smoothed with weight 0.3. "
    "A profile update refits the OPM from the last window_tasks completions; min_samples 1 calibrates "
    "fastest on little data. Acting when nothing changed adds noise: no_action is a valid answer."
)


def _kind_counts(kinds: list[str]) -> str:
    return ", ".join(f"{kinds.count(k)} {k}" for k in sorted(set(kinds)))


def system_message(devices: dict[str, str], tools: list[dict[str, Any]] | None,
                   prompt: str = "decision_table") -> str:
    """The run-constant system text. ``devices``: name -> kind. ``tools``: listed inline when the
    model gets no native tool list (``json_schema`` reply format), else None. A pool of more than
    :data:`~e3.agent.tool_schemas.BOUNDED_VIEW_DEVICES` devices is described by its counts per
    kind (the text's length does not grow with the pool).

    ``prompt``: ``decision_table`` (0.1.0: a rule per trigger naming the tool and its arguments)
    or ``reasoning`` (0.2.0's default: goal, telemetry, tools and constraints, no trigger-to-tool
    rule). Raises ValueError for another name."""
    if prompt not in PROMPT_VERSIONS:
        raise ValueError(f"prompt {prompt!r} is not one of {sorted(PROMPT_VERSIONS)}")
    if len(devices) <= BOUNDED_VIEW_DEVICES:
        pool = "Devices: " + ", ".join(f"{n} ({k})" for n, k in devices.items()) + "."
    else:
        pool = (f"Devices: {len(devices)} ({_kind_counts(list(devices.values()))}). Each status lists the "
                f"event's device and at most {BOUNDED_VIEW_DEVICES} others (risky, in a semantic event, "
                "or the longest queues), with totals per kind.")
    if prompt == "reasoning":
        lines = [_ROLE.replace(" Answer with exactly one tool call.", ""), _GOAL, pool, _TELEMETRY, _CONSTRAINTS]
        if tools is not None:
            lines.append("Tools (reply as {\"name\": TOOL, \"arguments\": {...}}; no_action when nothing "
                         "should change):\n" + json.dumps(tools, separators=(",", ":")))
        lines.append("Decide from the event and the telemetry which single tool call, if any, best serves "
                     "the goal now. Answer with exactly one tool call.")
        return "\n".join(lines)
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
        out = {"task_index": status.get("task_index"), "router": status.get("router"),
               "devices": {name: row(d) for name, d in devices.items()}, "semantic_events": events}
        if status.get("notices"):  # issue 31's free-text notices; absent otherwise (older prompts unchanged)
            out["notices"] = status["notices"]
        return out
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
            "semantic_events_total": len(events),
            # issue 31's open notices of the devices shown; absent otherwise (older prompts unchanged)
            **({"notices": {n: status["notices"][n] for n in shown if n in status["notices"]}}
               if status.get("notices") else {})}


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
