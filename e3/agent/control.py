"""The control surface of E3-Agent (paper Table 2): the only way a meta-controller acts.

Each method is one tool: bounded arguments, an audit record (simulated time, task index, caller,
arguments, return value, old and new state), and a return value built from observables only (the
OPM's own estimates, queue states, completed-task records, exposed annotations), never from the
simulator's ground truth: the surface holds the policy's state, the OPM and the Observation, none
of which can reach it.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

from e3.agent.opm import OnlinePerformanceModel
from e3.errors import E3Error
from e3.sim.backlog import QueueCounts
from e3.sim.observation import Observation

ROUTERS = ("sect", "explore_risk")

#: Pools larger than this get the bounded view (issue 11): no device enum in the schemas, and in the
#: prompt and in get_system_status per-kind counts plus at most this many devices (e3.agent.prompt).
BOUNDED_VIEW_DEVICES = 16

#: Bounds of every numeric argument (inclusive).
BOUNDS = {
    "window_tasks": (1, 200), "limit": (1, 50), "window_s": (1.0, 3600.0), "factor": (0.1, 10.0),
    "explore_weight_ms": (0.0, 20000.0), "risk_penalty_ms": (0.0, 600000.0),
    "min_samples": (1, 50), "ttl_tasks": (1, 500),
}


def kind_totals(rows: Iterable[tuple[str, bool, int, bool]]) -> dict[str, dict[str, int]]:
    """Per-kind totals of a pool, the bounded view's summary (issue 11).

    Args:
        rows: one ``(kind, available, queue_length, risky)`` per device.

    Returns:
        kind -> ``{"devices", "available", "queue", "risky"}`` counts, kinds in order of first
        appearance.
    """
    totals: dict[str, dict[str, int]] = {}
    for kind, available, queue, risky in rows:
        t = totals.setdefault(kind, {"devices": 0, "available": 0, "queue": 0, "risky": 0})
        t["devices"] += 1
        t["available"] += bool(available)
        t["queue"] += queue
        t["risky"] += bool(risky)
    return totals


class ToolError(E3Error):
    """Invalid tool arguments; the message is returned to the controller, never a crash."""


class RouterState:
    """Mutable fast-path settings owned by the e3 policy and changed only through tools.

    Attributes:
        router: ``sect`` or ``explore_risk``.
        explore_weight_ms: weight of the uncertainty bonus in the SECT score (Eq. 6).
        risk_penalty_ms: penalty added to risky devices' scores.
        risky_until: device -> task index at which its risk override expires (TTL in tasks).
    """

    def __init__(self, router: str, explore_weight_ms: float, risk_penalty_ms: float) -> None:
        self.router = router
        self.explore_weight_ms = explore_weight_ms
        self.risk_penalty_ms = risk_penalty_ms
        self.risky_until: dict[str, int] = {}

    def is_risky(self, device: str, task_index: int) -> bool:
        """Whether ``device`` has an unexpired risk override at ``task_index`` (a pure read: an
        override set at task k with TTL n holds for arrivals k .. k + n - 1)."""
        until = self.risky_until.get(device)
        return until is not None and task_index < until

    def expire(self, task_index: int) -> None:
        """Drop the overrides that have expired by ``task_index`` (the policy calls it once per
        arrival, so reads such as a sensing tool never change state)."""
        for device in [d for d, until in self.risky_until.items() if task_index >= until]:
            del self.risky_until[device]

    def active(self, task_index: int) -> dict[str, int]:
        """The unexpired overrides at ``task_index``: device -> expiry task index, sorted by device."""
        return {d: u for d, u in sorted(self.risky_until.items()) if task_index < u}


def smoothed_calibration(old: float, ratio: float, smoothing: float) -> float:
    """The calibration factor after one drift measurement (paper Table 4, "calibration smoothing
    0.3 ... updates calibration"): ``old * (1 - smoothing + smoothing * ratio)``, clipped to the
    ``update_calibration`` bounds (``BOUNDS["factor"]``).

    Args:
        old: the device's current calibration factor (dimensionless, multiplies predictions).
        ratio: observed/predicted service ratio over the drift window (``compute_drift``).
        smoothing: weight of the new measurement, in [0, 1] (Table 4: 0.3).
    """
    lo, hi = BOUNDS["factor"]
    return min(hi, max(lo, old * (1.0 - smoothing + smoothing * ratio)))


def _bounded(name: str, value: Any, integer: bool = False) -> float | int:
    lo, hi = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError(f"argument {name!r} must be a number, got {value!r}")
    if integer and int(value) != value:
        raise ToolError(f"argument {name!r} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ToolError(f"argument {name!r}={value!r} is outside [{lo}, {hi}]")
    return int(value) if integer else float(value)


class ControlSurface:
    """The nine tools of Table 2 over the e3 policy's state.

    Args:
        router: the policy's :class:`RouterState`.
        opm: the policy's Online Performance Model.
        obs: the engine's Observation (read-only use).
        default_ttl_tasks: TTL used when ``set_device_risky`` gets none (Table 4: 50).
        calibration_smoothing: weight of a drift measurement in the calibration that
            ``compute_drift`` proposes (Table 4: 0.3; :func:`smoothed_calibration`).
        sink: where audit records go (e.g. a line writer streaming ``audit.jsonl``, so memory stays
            flat over long horizons); default: kept in ``self.audit``.
        persistent_actions: (issue 28) ``update_calibration`` restarts the device's OPM window at
            the new calibration and opens a recalibration period, and ``trigger_online_profile_update``
            keeps only the samples it fitted (and, for one device, opens a recalibration period with
            its ``min_samples``), so no later refit of older samples undoes the action. False: the
            0.1.0 behaviour, where the next refit of the whole window cancelled both.
    """

    def __init__(self, router: RouterState, opm: OnlinePerformanceModel, obs: Observation,
                 default_ttl_tasks: int = 50, sink: Callable[[dict[str, Any]], None] | None = None,
                 calibration_smoothing: float = 0.3, persistent_actions: bool = True) -> None:
        self._router = router
        self.persistent_actions = persistent_actions
        self.calibration_smoothing = calibration_smoothing
        self._opm = opm
        self._obs = obs
        self.default_ttl_tasks = default_ttl_tasks
        self.audit: list[dict[str, Any]] = []  # kept only without a sink
        self._sink = sink if sink is not None else self.audit.append
        self.tool_calls = 0
        self.tool_errors = 0
        self.caller = "controller"
        self.focus: str | None = None  # the device of the trigger being handled (bounded status view)
        # Bounded view of a large pool (built at its first use): queue counts kept incrementally,
        # names in order, and the devices whose calibration differs from 1 (the audit's state).
        self._queue_counts: QueueCounts | None = None
        self._names_sorted: list[str] | None = None
        self._calibrated: set[str] | None = None
        self._calibration_view: dict[str, float] | None = None  # see _non_unit_calibrations
        self._calibration_copy: dict[str, float] | None = None  # see _calibration_snapshot
        self._calibration_written: set[str] | None = None
        self._order: dict[str, int] = {}  # device -> pool position

    # --- plumbing --------------------------------------------------------------------------
    def call(self, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Invoke ``tool`` by name with ``args``; invalid calls return ``{"error": ...}``."""
        args = dict(args or {})
        fn = getattr(self, tool, None) if tool in TOOL_NAMES else None
        old = self._state()
        try:
            if fn is None:
                raise ToolError(f"unknown tool {tool!r}; tools: {list(TOOL_NAMES)}")
            try:  # only a mismatch with the tool's signature is the caller's error
                _signature(tool).bind(self, **args)
            except TypeError as exc:
                raise ToolError(f"bad arguments for {tool}: {exc}") from None
            result = fn(**args)  # a TypeError raised inside a tool is a bug: it propagates
        except ToolError as exc:
            result = {"error": str(exc)}
        self.tool_calls += 1
        self.tool_errors += "error" in result
        self._sink({"time_ms": self._obs.now_ms, "task_index": self._obs.task_index,
                    "caller": self.caller, "tool": tool, "arguments": args, "result": result,
                           "old_state": old, "new_state": self._state()})
        return result

    def note(self, event: str, detail: dict[str, Any]) -> None:
        """Append a non-tool audit record (a controller's fallback or no-action decision)."""
        self._sink({"time_ms": self._obs.now_ms, "task_index": self._obs.task_index,
                    "caller": self.caller, "event": event, "detail": detail})

    def _state(self) -> dict[str, Any]:
        r = self._router
        est = self._opm.est
        # A large pool's audit lists only calibrations that differ from 1 (its size would otherwise
        # grow with the pool on every tool call).
        cal = ({d: e.calibration for d, e in est.items()} if len(est) <= BOUNDED_VIEW_DEVICES
               else self._calibration_snapshot())
        return {"router": r.router, "explore_weight_ms": r.explore_weight_ms,
                "risk_penalty_ms": r.risk_penalty_ms, "risky_until": r.active(self._obs.task_index),
                "calibration": cal}

    def _calibration_snapshot(self) -> dict[str, float]:
        # A copy of _non_unit_calibrations(), made again only after a calibration changed: audit
        # records are written once and never changed, so consecutive states share it (on a large
        # pool thousands of entries, twice per tool call).
        view = self._non_unit_calibrations()
        if self._calibration_copy is None:
            self._calibration_copy = dict(view)
        return self._calibration_copy

    def _non_unit_calibrations(self) -> dict[str, float]:
        # {device: calibration} of the devices whose calibration is not 1, in the OPM's (pool)
        # order, for the caller to copy: O(estimates written since the last call) through the OPM's
        # subscription, not a scan of the pool. A value written in place keeps the order; the dict
        # is rebuilt in order only when a device joins or leaves (issue 11: reading every such
        # device's estimate twice per tool call was a third of e3's time at 10,000 devices).
        est = self._opm.est
        if self._calibrated is None:
            self._calibration_written = self._opm.subscribe()
            self._order = {d: i for i, d in enumerate(est)}
            self._calibrated = {d for d, e in est.items() if e.calibration != 1.0}
        view = self._calibration_view
        if self._calibration_written:
            for d in self._calibration_written:
                cal = est[d].calibration
                if cal != 1.0:
                    if d not in self._calibrated:
                        self._calibrated.add(d)
                        view = None
                    elif view is not None:
                        old = view[d]
                        if type(old) is not type(cal) or old != cal:  # a new value: a new copy
                            view[d] = cal
                            self._calibration_copy = None
                elif d in self._calibrated:
                    self._calibrated.discard(d)
                    view = None
            self._calibration_written.clear()
        if view is None:
            view = self._calibration_view = {d: est[d].calibration
                                             for d in sorted(self._calibrated, key=self._order.__getitem__)}
            self._calibration_copy = None
        return view

    def _device(self, device: Any) -> str:
        if device not in self._obs.devices:
            raise ToolError(f"unknown device {device!r}; devices: {list(self._obs.devices)}")
        return device

    def _pool_totals(self, risky: set[str]) -> dict[str, dict[str, int]]:
        # = kind_totals over every device's row, from counts kept up to date incrementally
        obs = self._obs
        if self._queue_counts is None:
            self._queue_counts = QueueCounts(obs)
        kinds = obs._by_kind
        risky_kind = [obs.devices[d].kind for d in risky if d in obs.devices]
        return {kind: {"devices": len(ds), "available": len(obs.feasible(kind)),
                       "queue": self._queue_counts.total(kind), "risky": risky_kind.count(kind)}
                for kind, ds in kinds.items()}

    def _longest_queues_first(self, count: int) -> list[str]:
        # The first ``count`` device names by (-queue_length, name): the non-empty queues, then
        # the others by name (= sorted(devices, key=lambda st: (-st.queue_length, st.name))[:count]).
        if self._names_sorted is None:
            self._names_sorted = sorted(self._obs.devices)
        qc = self._queue_counts
        first = qc.longest(count)
        if len(first) >= count:
            return first
        return first + list(itertools.islice((d for d in self._names_sorted if not qc.is_nonempty(d)),
                                             count - len(first)))

    # --- sensing ---------------------------------------------------------------------------
    def get_system_status(self) -> dict[str, Any]:
        """Queue lengths, availability, OPM estimates, risk overrides, exposed semantic state and,
        when any is open, the free-text notices (``notices``: device -> text; issue 31).

        Up to BOUNDED_VIEW_DEVICES devices: every device. A larger pool (issue 11, bounded view):
        ``pool`` (per kind: devices, available, queue, risky), ``devices_total``, and the rows of
        the ``focus`` device (the trigger's), every device in a semantic event, the risky ones and
        then the longest queues (ties by name), at most BOUNDED_VIEW_DEVICES unless more devices
        are in semantic events. Its cost and size then no longer grow with the pool's rows.
        """
        k = self._obs.task_index
        active, notices = {}, {}
        for a in self._obs.annotations:
            if a.event == "semantic_onset":
                active[a.device] = a.label
            elif a.event == "semantic_offset":
                active.pop(a.device, None)
            elif a.event == "notice_onset":
                notices[a.device] = a.label
            elif a.event == "notice_end":
                notices.pop(a.device, None)
        devices = self._obs.devices
        out = {"time_ms": self._obs.now_ms, "task_index": k, "router": self._router.router}
        if len(devices) <= BOUNDED_VIEW_DEVICES:
            shown = list(devices)
        else:
            risky = set(self._router.active(k))
            totals = self._pool_totals(risky)
            first = [d for d in dict.fromkeys([self.focus, *active, *notices, *sorted(risky)]) if d in devices]
            room = max(0, BOUNDED_VIEW_DEVICES - len(first))
            taken = set(first)
            shown = first + [d for d in self._longest_queues_first(room + len(taken)) if d not in taken][:room]
            out.update(pool=totals, devices_total=len(devices))
        devs = {}
        for name in shown:
            st, e = devices[name], self._opm.est[name]
            devs[name] = {"kind": st.kind, "available": st.available, "queue_length": st.queue_length,
                          "risky": self._router.is_risky(name, k), "uncertainty": round(e.uncertainty, 4),
                          "samples": self._opm.n_window(name), "calibration": e.calibration,
                          "estimate": ({"alpha_ms_per_token": round(e.alpha, 6), "beta_ms_per_token": round(e.beta, 6)}
                                       if e.kind == "llm" else {"c_ms": round(e.c, 3)})}
        out.update(devices=devs, semantic_events=active)
        if notices:  # open free-text notices (issue 31); absent otherwise, so older prompts are unchanged
            out["notices"] = notices
        return out

    def pull_observations(self, window_tasks: int = 50, limit: int = 20) -> dict[str, Any]:
        """Summaries of recently completed tasks (what a deployed system measures: device, service and
        latency; never whether the device was in a hidden degraded state)."""
        window_tasks = _bounded("window_tasks", window_tasks, integer=True)
        limit = _bounded("limit", limit, integer=True)
        recent = list(self._obs.recent)[-window_tasks:]
        rows = [{"task_id": r.task.task_id, "kind": r.task.kind, "device": r.device,
                 "service_ms": round(r.service_ms, 3), "latency_ms": round(r.latency_ms, 3)} for r in recent[-limit:]]
        return {"count": len(recent), "records": rows}

    def compute_drift(self, device: str, window_s: float = 60.0) -> dict[str, Any]:
        """Observed/predicted service ratio of ``device`` over the last ``window_s`` seconds, with
        the device's calibration factor and, when the window has samples, the factor Table 4's
        smoothing proposes (``calibration_proposed``, :func:`smoothed_calibration`); sensing only."""
        device = self._device(device)
        window_s = _bounded("window_s", window_s)
        ratio, n = self._opm.drift_ratio(device, self._obs.now_ms, window_s)
        old = self._opm.est[device].calibration
        out = {"device": device, "ratio": round(ratio, 4), "samples": n, "calibration": round(old, 4)}
        if n and math.isfinite(ratio):
            out["calibration_proposed"] = round(smoothed_calibration(old, ratio, self.calibration_smoothing), 4)
        return out

    # --- actuation -------------------------------------------------------------------------
    def update_calibration(self, device: str, factor: float) -> dict[str, Any]:
        """Set the OPM calibration factor of ``device`` (multiplies its predictions)."""
        device = self._device(device)
        factor = _bounded("factor", factor)
        old = self._opm.est[device].calibration
        self._opm.est[device].calibration = factor
        if self.persistent_actions and factor != old:  # later refits fit only samples at this calibration
            self._opm.restart_window(device)
            self._opm.open_recalibration(device)
        return {"device": device, "old": old, "new": factor}

    def switch_router(self, router: str) -> dict[str, Any]:
        """Switch the fast-path router (``sect`` or ``explore_risk``)."""
        if router not in ROUTERS:
            raise ToolError(f"router must be one of {list(ROUTERS)}, got {router!r}")
        old, self._router.router = self._router.router, router
        return {"old": old, "new": router}

    def set_router_params(self, explore_weight_ms: float | None = None,
                          risk_penalty_ms: float | None = None) -> dict[str, Any]:
        """Set the exploration weight and/or risk penalty (ms) of the SECT score."""
        if explore_weight_ms is None and risk_penalty_ms is None:
            raise ToolError("give explore_weight_ms and/or risk_penalty_ms")
        if explore_weight_ms is not None:
            self._router.explore_weight_ms = _bounded("explore_weight_ms", explore_weight_ms)
        if risk_penalty_ms is not None:
            self._router.risk_penalty_ms = _bounded("risk_penalty_ms", risk_penalty_ms)
        return {"explore_weight_ms": self._router.explore_weight_ms, "risk_penalty_ms": self._router.risk_penalty_ms}

    def trigger_online_profile_update(self, window_tasks: int = 30, min_samples: int = 2,
                                      device: str | None = None) -> dict[str, Any]:
        """Refit the OPM (one device, or all) from recent completed tasks."""
        window_tasks = _bounded("window_tasks", window_tasks, integer=True)
        min_samples = _bounded("min_samples", min_samples, integer=True)
        devices = [self._device(device)] if device is not None else list(self._obs.devices)
        if self.persistent_actions:  # later refits see only the samples fitted here and newer ones
            for d in devices:
                self._opm.restart_window(d, keep=window_tasks)
            if device is not None:
                self._opm.open_recalibration(device, min_samples)
        changed = [d for d in devices if self._opm.refit(d, min_samples=min_samples, window=window_tasks)]
        return {"refitted": changed}

    def set_device_risky(self, device: str, ttl_tasks: int | None = None) -> dict[str, Any]:
        """Apply a risk override to ``device`` for ``ttl_tasks`` arrivals (Table 4 default 50)."""
        device = self._device(device)
        ttl = self.default_ttl_tasks if ttl_tasks is None else _bounded("ttl_tasks", ttl_tasks, integer=True)
        self._router.risky_until[device] = self._obs.task_index + ttl
        return {"device": device, "risky_until_task": self._obs.task_index + ttl}

    def clear_device_risky(self, device: str) -> dict[str, Any]:
        """Clear ``device``'s risk override."""
        device = self._device(device)
        was_risky = self._router.is_risky(device, self._obs.task_index)
        self._router.risky_until.pop(device, None)
        return {"device": device, "was_risky": was_risky}


TOOL_NAMES = ("get_system_status", "pull_observations", "compute_drift", "update_calibration",
              "switch_router", "set_router_params", "trigger_online_profile_update",
              "set_device_risky", "clear_device_risky")


@functools.cache
def _signature(tool: str) -> inspect.Signature:
    # computed once per tool: inspect.signature costs more than most tools' work
    return inspect.signature(getattr(ControlSurface, tool))
