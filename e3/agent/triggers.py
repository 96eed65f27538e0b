"""Event-driven triggers for the meta-controller (paper section 3.5, Table 4).

Event triggers (semantic onset/offset, device leave/return) fire when exposed. Non-event triggers
(drift alarms: observed/predicted ratio above the threshold; residual alarms: ratio below its
inverse; warmup intervention points) additionally obey a minimum gap since the last non-event
call. Every trigger obeys a signature-based cooldown: the same (type, device) signature is
suppressed for ``anomaly_cooldown_tasks`` arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EVENT_TYPES = ("semantic_onset", "semantic_offset", "device_leave", "device_return")
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
    """

    def __init__(self, anomaly_cooldown_tasks: int = 20, min_nonevent_gap_tasks: int = 20) -> None:
        self.cooldown = anomaly_cooldown_tasks
        self.gap = min_nonevent_gap_tasks
        self._last_sig: dict[tuple[str, str], int] = {}
        self._last_nonevent: int | None = None
        self.suppressed = 0

    def admit(self, trig: Trigger) -> bool:
        k = trig.task_index
        last = self._last_sig.get(trig.signature)
        if last is not None and k - last < self.cooldown:
            self.suppressed += 1
            return False
        if trig.type in NON_EVENT_TYPES:
            if self._last_nonevent is not None and k - self._last_nonevent < self.gap:
                self.suppressed += 1
                return False
            self._last_nonevent = k
        self._last_sig[trig.signature] = k
        return True
