"""Event-driven triggers for the meta-controller (paper section 3.5, Table 4).

Event triggers (semantic onset/offset, device leave/return) fire when exposed. Non-event triggers
(drift alarms: observed/predicted ratio above the threshold; residual alarms: ratio below its
inverse; warmup intervention points) additionally obey a minimum gap since the last non-event
call: pool-wide by default (today's reading of Table 4, "Minimum non-event LLM gap 20 tasks": a
bound on LLM calls), or per device with ``per_device_gap`` (an alarm on one device then no longer
silences the other devices' alarms; pool-wide triggers such as warmup points form their own
group). Every trigger obeys a signature-based cooldown: the same (type, device) signature is
suppressed for ``anomaly_cooldown_tasks`` arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``notice_onset`` / ``notice_end``: a free-text notice of the held-out event benchmark (issue 31;
#: e3.sim.events), whose detail ``label`` is the text alone.
EVENT_TYPES = ("semantic_onset", "semantic_offset", "device_leave", "device_return", "notice_onset", "notice_end")
NON_EVENT_TYPES = ("drift_alarm", "residual_alarm", "warmup_point")


@dataclass(frozen=True)
class Trigger:
    """Why the meta-controller is invoked.

    Attributes:
        type: one of :data:`EVENT_TYPES` or :data:`NON_EVENT_TYPES`.
        task_index: arrival index at which it fired.
        device: the device concerned, or "" for pool-wide triggers.
        detail: observable facts (annotation label, drift ratio and sample count, ...).
    """

    type: str
    task_index: int
    device: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def signature(self) -> tuple[str, str]:
        return (self.type, self.device)


class TriggerGate:
    """Cooldown bookkeeping. ``admit(trigger)`` says whether to invoke the controller.

    Args:
        anomaly_cooldown_tasks: suppression window for a repeated signature (Table 4: 20).
        min_nonevent_gap_tasks: minimum arrivals between non-event invocations (Table 4: 20).
        per_device_gap: measure that gap per device (False: pool-wide, the default).
    """

    def __init__(self, anomaly_cooldown_tasks: int = 20, min_nonevent_gap_tasks: int = 20,
                 per_device_gap: bool = False) -> None:
        self.cooldown = anomaly_cooldown_tasks
        self.gap = min_nonevent_gap_tasks
        self.per_device_gap = per_device_gap
        self._last_sig: dict[tuple[str, str], int] = {}
        self._last_nonevent: dict[str, int] = {}  # gap group ("" when pool-wide) -> task index
        self.suppressed = 0

    def admit(self, trig: Trigger, scheduled: bool = False) -> bool:
        """Whether ``trig`` reaches the controller (updates the bookkeeping when it does).
        ``scheduled=True`` (a warmup intervention point of a fixed, bounded schedule, which fires
        once and so never repeats) exempts it from the minimum gap and the signature cooldown and
        leaves both clocks alone."""
        k = trig.task_index
        if scheduled:
            return True
        last = self._last_sig.get(trig.signature)
        if last is not None and k - last < self.cooldown:
            self.suppressed += 1
            return False
        if trig.type in NON_EVENT_TYPES:
            group = trig.device if self.per_device_gap else ""
            prev = self._last_nonevent.get(group)
            if prev is not None and k - prev < self.gap:
                self.suppressed += 1
                return False
            self._last_nonevent[group] = k
        self._last_sig[trig.signature] = k
        return True
