"""Change detection driving recalibration without an LLM: a Page-Hinkley controller.

Reference: E. S. Page, "Continuous inspection schemes", Biometrika 41 (1954); D. V. Hinkley,
"Inference about the change-point from cumulative sum tests", Biometrika 58 (1971). The detector
is river's Page-Hinkley test (two-sided, ported below), one per device, fed the log of the OPM's
residual ratio (observed / predicted service) of every completed task after warmup. A detection
refits that device's profile through the same tool the LLM and the rules use
(``trigger_online_profile_update``); the detector then restarts (river resets on detection).

The detector is :class:`PageHinkley`, a port of river 0.26's ``river.drift.PageHinkley`` with the
same floating-point operations in the same order, so its detections are river's bit for bit
(``tests/test_change_detection.py`` compares them on random streams). It is ported, not imported,
because ``import river.drift`` takes about 2 s (it loads scipy.stats for an unrelated detector),
paid by every operating-point job: about a fifth of the default run's CPU time.
Every trigger (events, and the e3 policy's threshold drift/residual alarms) is handled as by the
``rules`` controller: Page-Hinkley compares residuals with their own running mean, so it detects
*changes* but not a bias present from the start (a stale prior), which the threshold alarm
catches. (Measured: without the threshold alarms, warmup_0 seed 1 was 2.7x worse than rules.)
"""

from __future__ import annotations

import math
from typing import Any

from e3.agent.control import ControlSurface
from e3.agent.controllers import RulesController, register_controller


class PageHinkley:
    """Two-sided Page-Hinkley test on a stream of floats (river 0.26 ``drift.PageHinkley``).

    ``update(x)`` adds one value; ``drift_detected`` is then True when, after ``min_instances``
    values, the cumulative deviation from the running mean (less ``delta`` per value, forgotten at
    rate ``alpha``) has risen (mode ``up``), fallen (``down``) or either (``both``) by more than
    ``threshold`` since its extreme. The next ``update`` after a detection restarts the test.
    Source: Page, Biometrika 41 (1954); river's implementation, ported operation for operation.

    Raises:
        ValueError: ``mode`` is not ``up``, ``down`` or ``both``.
    """

    __slots__ = ("min_instances", "delta", "threshold", "alpha", "mode", "drift_detected", "_n",
                 "_mean", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease")

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: str = "both") -> None:
        if mode not in ("up", "down", "both"):
            raise ValueError(f"Invalid 'mode' {mode!r}: valid values are up, down, both")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._reset()

    def _reset(self) -> None:
        self.drift_detected = False
        self._n = 0.0  # river's stats.Mean: a float count and an incremental mean
        self._mean = 0.0
        self._sum_increase = 0.0
        self._sum_decrease = 0.0
        self._min_increase = float("inf")
        self._max_decrease = -1

    def update(self, x: float) -> None:
        """Add one value (any unit; here a log ratio) and set ``drift_detected``."""
        if self.drift_detected:
            self._reset()
        self._n += 1.0
        self._mean += (1.0 / self._n) * (x - self._mean)
        dev = x - self._mean
        self._sum_increase = self.alpha * self._sum_increase + dev - self.delta
        self._sum_decrease = self.alpha * self._sum_decrease + dev + self.delta
        if self._sum_increase < self._min_increase:
            self._min_increase = self._sum_increase
        if self._sum_decrease > self._max_decrease:
            self._max_decrease = self._sum_decrease
        if self._n >= self.min_instances:
            up = self._sum_increase - self._min_increase > self.threshold
            down = self._max_decrease - self._sum_decrease > self.threshold
            self.drift_detected = up if self.mode == "up" else down if self.mode == "down" else up or down


@register_controller
class PageHinkleyController(RulesController):
    """Rules for events; Page-Hinkley on OPM residuals for drift. Parameters (config
    ``controllers.page_hinkley``): ``ph_delta`` (tolerated log-ratio drift per task, 0.1),
    ``ph_threshold`` (alarm level, 1.5), ``ph_min_instances`` (5), ``ph_refit_window_tasks``
    (window of the refit a detection triggers, 10 tasks), and the rules' parameters for the
    triggers it handles as the ``rules`` controller does."""

    name = "page_hinkley"
    parameters = {**RulesController.parameters, "ph_delta": 0.1, "ph_threshold": 1.5, "ph_min_instances": 5,
                  "ph_refit_window_tasks": 10}

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self._ph: dict[str, PageHinkley] = {}  # device -> its detector
        self.detections = 0

    def _detector(self, device: str) -> PageHinkley:
        if device not in self._ph:
            self._ph[device] = PageHinkley(min_instances=int(self.params["ph_min_instances"]),
                                           delta=float(self.params["ph_delta"]),
                                           threshold=float(self.params["ph_threshold"]),
                                           alpha=1.0, mode="both")
        return self._ph[device]

    def observe(self, device: str, residual_ratio: float, tools: ControlSurface) -> None:
        ph = self._detector(device)
        ph.update(math.log(max(residual_ratio, 1e-9)))
        if ph.drift_detected:
            self.detections += 1
            self.calls += 1
            caller, tools.caller = tools.caller, "page_hinkley:detection"
            tools.call("trigger_online_profile_update",
                       {"device": device, "window_tasks": int(self.params["ph_refit_window_tasks"]),
                        "min_samples": 2})
            tools.caller = caller

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "ph_detections": self.detections}
