"""The salabim model: an arrival process and one long-lived FIFO single-server component per device.

Tasks are light records (:class:`TaskView` plus a small private job slot), not components: a
component per task is about two orders of magnitude slower in salabim. No animation and no
monitors are used. Simulated time is in milliseconds.

Order of operations at the arrival of task k: (1) apply the scenario events scheduled at index k
(ends before starts) and expose their annotations to the policy; (2) ask the policy for a device;
(3) enqueue, recording Eq. 3's stutter if the device is in a hidden degraded state. A device takes
its service time at start from the true parameters in force then, times the task's noise draw.
Under churn, a departing device finishes its running task; its waiting tasks are re-dispatched at
once through the policy (none lost, none run twice).
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import salabim as sim

from e3.errors import E3Error
from e3.seeds import stream
from e3.sim.backlog import TrueBacklog
from e3.sim.components import LeanComponent, QuietEnvironment, quiet_component
from e3.sim.devices import DevicePrior
from e3.sim.events import draw_events
from e3.sim.observation import Annotation, DeviceState, Observation, new_completed_task
from e3.sim.policy_api import PolicyFactory
from e3.sim.scenario import Scenario
from e3.sim.trace import LatencyColumn, TraceWriter
from e3.sim.truth import GroundTruth, OracleView, TruthSpec
from e3.sim.workload import TaskView, WorkloadSpec, generate

sim.yieldless(False)


class PolicyError(E3Error):
    """A policy returned a device that is unknown, unavailable or of the wrong kind."""


@dataclass
class RunStats:
    """Counters gathered during a run (latency percentiles come from the trace afterwards)."""

    n_tasks: int = 0
    latency_sum_ms: float = 0.0
    wait_sum_ms: float = 0.0
    service_sum_ms: float = 0.0
    stutter_count: int = 0
    redispatches: int = 0
    makespan_ms: float = 0.0
    busy_ms: dict[str, float] = field(default_factory=dict)
    tasks_per_device: dict[str, int] = field(default_factory=dict)
    wait_ms_per_device: dict[str, float] = field(default_factory=dict)  # summed queueing delay (ms)
    wall_s: float = 0.0


class _Job:
    __slots__ = ("dispatch_ms", "noise", "stutter", "redispatches", "device")

    def __init__(self, noise: float) -> None:
        self.dispatch_ms = 0.0
        self.noise = noise
        self.stutter = False
        self.redispatches = 0
        self.device = ""


class _DeviceProc(LeanComponent):
    def setup(self, model: Simulation, state: DeviceState) -> None:
        self.model = model
        self.state = state
        quiet_component(self)

    def process(self):
        m, st, env = self.model, self.state, self.env
        name, queue, jobs, service_end = st._name, st._queue, m._jobs, m._service_end
        true_service_ms, complete = m._truth.expected_service_ms, m._complete
        sinks = m.obs._touch_sinks
        while True:
            while not queue or not st._available:
                yield self.passivate()
            task = queue.popleft()
            now = env.now()
            job = jobs[task.task_id]
            service = true_service_ms(name, task) * job.noise
            st._in_service, st._in_service_start_ms = task, now
            if sinks:
                m.obs._touch(st)
            service_end[name] = now + service
            yield self.hold(service)
            st._in_service = None
            if sinks:
                m.obs._touch(st)
            complete(task, job, name, now, env.now())


class _ArrivalProc(LeanComponent):
    def setup(self, model: Simulation, tasks) -> None:
        self.model = model
        self.tasks = tasks
        quiet_component(self)

    def process(self):
        env, arrive = self.env, self.model._arrive
        for task in self.tasks:
            wait = task.arrival_ms - env.now()
            if wait > 0:
                yield self.hold(wait)
            arrive(task)


class Simulation:
    """One simulation run of one policy on one scenario and seed.

    Args:
        pool: devices with priors (from :func:`e3.mlperf.pool.resolve_pool`).
        scenario: the event plan.
        workload: arrival process and token bins.
        truth: mismatch and noise of the hidden truth.
        policy_cls: the policy factory (:class:`e3.sim.policy_api.PolicyFactory`; a registered
            policy class is one).
        policy_params: parameter overrides for the policy.
        seed: replicate seed. Workload, mismatch jitter and noise derive from it alone, so every
            policy and scenario of a replicate faces the same tasks and the same base truth; the
            policy's own stream derives from (seed, scenario, policy).
        n_tasks: horizon in tasks.
        trace_path: per-task trace output (.parquet or .csv), streamed; None: no file. Either
            way the latency column is kept (:attr:`latency_ms` after :meth:`run`).
        progress: optional ``callable(str)``; called about every 10 % of the horizon.
        controllers: config ``controllers`` section (meta-controller options), handed to the policy.
        audit_sink: callable(record) receiving the policy's audit records as they happen.
    """

    def __init__(self, pool: list[DevicePrior], scenario: Scenario, workload: WorkloadSpec,
                 truth: TruthSpec, policy_cls: PolicyFactory, policy_params: dict[str, Any],
                 seed: int, n_tasks: int, trace_path: str | Path | None,
                 progress: Callable[[str], None] | None = None,
                 controllers: dict[str, Any] | None = None, audit_sink=None) -> None:
        self.pool, self.scenario, self.n_tasks = pool, scenario, n_tasks
        self.trace_path = Path(trace_path) if trace_path is not None else None
        self.latency_ms = None  # float64 array (ms): the trace's latency_ms column, set by run()
        self.progress = progress
        # Workload, mismatch jitter and noise depend on the replicate seed only: every policy and
        # every scenario of a replicate faces the same tasks and the same base truth.
        self._truth = GroundTruth(pool, truth, stream(seed, "truth"))
        self._noise_rng = stream(seed, "noise")
        self._tasks = generate(workload, n_tasks, stream(seed, "workload"))
        self._states = [DeviceState(d.name, d.kind) for d in pool]
        self._by_name = {s.name: s for s in self._states}
        self.obs = Observation(self._states)
        self._jobs: dict[int, _Job] = {}
        self._service_end = {d.name: 0.0 for d in pool}
        #: this run's drawn events (a scenario with an ``events`` family, e3.sim.events; else empty)
        self.drawn_events = (draw_events(scenario.events, scenario.events["catalogue_content"],
                                         scenario.events["devices"], stream(seed, "events", scenario.name))
                             if scenario.events else ())
        self._events = self._event_plan(scenario)
        oracle = (OracleView(self._truth, self._true_backlog_ms,
                             lambda: TrueBacklog(self.obs, self._truth, self._service_end))
                  if policy_cls.needs_truth else None)
        kwargs = {"oracle": oracle} if oracle is not None else {}
        self.policy = policy_cls(pool, dict(policy_params), stream(seed, scenario.name, "policy", policy_cls.name),
                                 warmup_budget_tasks=scenario.warmup_budget_tasks, controllers=controllers,
                                 audit_sink=audit_sink, **kwargs)
        self.stats = RunStats(busy_ms={d.name: 0.0 for d in pool}, tasks_per_device={d.name: 0 for d in pool})
        self._writer: TraceWriter | None = None
        self._next_report = max(1, n_tasks // 10)

    # --- scenario events -------------------------------------------------------------------
    def _event_plan(self, sc: Scenario) -> dict[int, list[tuple[int, Callable[[], None]]]]:
        plan: dict[int, list[tuple[int, Callable[[], None]]]] = {}

        def at(k: int, order: int, fn: Callable[[], None]) -> None:
            plan.setdefault(k, []).append((order, fn))

        t = self._truth
        for w in sc.semantic:
            at(w.start_task, 1, lambda w=w: (t.set_semantic_factor(w.device, w.slowdown),
                                              self._annotate(w.device, "semantic_onset", w.label)))
            at(w.end_task, 0, lambda w=w: (t.set_semantic_factor(w.device, 1.0),
                                            self._annotate(w.device, "semantic_offset", w.label)))
        for e in self.drawn_events:
            if e.degrades:
                at(e.effect_start_task, 1, lambda e=e: t.set_semantic_factor(e.device, e.slowdown))
                at(e.effect_end_task, 0, lambda e=e: t.set_semantic_factor(e.device, 1.0))
            if e.announced:  # known: the structured channel; held-out: a free-text notice
                on, off = ("semantic_onset", "semantic_offset") if e.event_class == "known" else ("notice_onset", "notice_end")
                at(e.start_task, 1, lambda e=e, on=on: self._annotate(e.device, on, e.onset_text))
                at(e.end_task, 0, lambda e=e, off=off: self._annotate(e.device, off, e.end_text))
        for w in sc.drift:
            at(w.start_task, 1, lambda w=w: t.set_drift_factor(w.device, w.factor))
            at(w.end_task, 0, lambda w=w: t.set_drift_factor(w.device, 1.0))
        for w in sc.churn:
            at(w.leave_task, 1, lambda w=w: self._leave(w.device))
            at(w.return_task, 0, lambda w=w: self._return(w.device))
        for k in plan:
            plan[k].sort(key=lambda x: x[0])
        return plan

    def _annotate(self, device: str, event: str, label: str = "") -> None:
        a = Annotation(self.obs.task_index, self.obs.now_ms, device, event, label)
        self.obs._annotations.append(a)
        self.policy.on_annotation(a, self.obs)

    def _leave(self, device: str) -> None:
        st = self._by_name[device]
        self.obs._set_available(st, False)
        self._annotate(device, "device_leave")
        waiting = list(st._queue)
        st._queue.clear()
        self.obs._touch(st)
        for task in waiting:  # FIFO order; each task is dispatched again, exactly once
            self._jobs[task.task_id].redispatches += 1
            self.stats.redispatches += 1
            self._dispatch(task)

    def _return(self, device: str) -> None:
        st = self._by_name[device]
        self.obs._set_available(st, True)
        self._annotate(device, "device_return")
        self._procs[device].activate() if self._procs[device].ispassive() and st._queue else None

    # --- task flow ---------------------------------------------------------------------------
    def _true_backlog_ms(self, device: str) -> float:
        st = self._by_name[device]
        rest = max(0.0, self._service_end[device] - self.obs.now_ms) if st._in_service is not None else 0.0
        return rest + sum(self._truth.expected_service_ms(device, t) for t in st._queue)

    def _arrive(self, task: TaskView) -> None:
        obs = self.obs
        obs._now_ms = self.env.now()
        k = obs._task_index = task.task_id
        events = self._events.get(k)
        if events:
            for _, fn in events:
                fn()
        self._jobs[k] = _Job(self._truth.noise_factor(self._noise_rng))
        self._dispatch(task)
        if self.progress and (k + 1) % self._next_report == 0:
            self.progress(f"{task.task_id + 1}/{self.n_tasks} tasks dispatched "
                          f"({time.perf_counter() - self._t0:.1f} s)")

    def _dispatch(self, task: TaskView) -> None:
        name = self.policy.choose(task, self.obs)
        st = self._by_name.get(name)
        if st is None or st._kind != task.kind or not st._available:
            raise PolicyError(f"policy {self.policy.name!r} chose {name!r} for task {task.task_id} "
                              f"({task.kind}); feasible: {[d.name for d in self.obs.feasible(task.kind)]}")
        job = self._jobs[task.task_id]
        job.dispatch_ms = self.obs.now_ms
        job.device = name
        job.stutter = self._truth.degraded(name)  # Eq. 3, for every task kind
        st._queue.append(task)
        if self.obs._touch_sinks:
            self.obs._touch(st)
        proc = self._procs[name]
        if proc.ispassive():
            proc.activate()

    def _complete(self, task: TaskView, job: _Job, device: str, start: float, end: float) -> None:
        del self._jobs[task.task_id]
        s = self.stats
        arrival = task.arrival_ms
        service = end - start
        s.n_tasks += 1
        s.latency_sum_ms += end - arrival
        s.wait_sum_ms += start - arrival
        s.service_sum_ms += service
        stutter = job.stutter
        s.stutter_count += stutter
        s.busy_ms[device] += service
        s.tasks_per_device[device] += 1
        s.wait_ms_per_device[device] = s.wait_ms_per_device.get(device, 0.0) + (start - arrival)
        if end > s.makespan_ms:  # = max(makespan, end)
            s.makespan_ms = end
        dispatch_ms = job.dispatch_ms
        self._writer.add(task, dispatch_ms, device, start, end, stutter, job.redispatches)
        rec = new_completed_task(task, device, dispatch_ms, start, end)
        obs = self.obs
        obs._now_ms = end
        obs._recent.append(rec)
        self.policy.on_complete(rec, obs)

    def run(self) -> RunStats:
        """Run to completion of every task; write the trace. Returns the counters."""
        self._t0 = time.perf_counter()
        # All randomness comes from e3's own streams; salabim's global seeding is neutralised.
        self.env = QuietEnvironment(trace=False, random_seed=0, set_numpy_random_seed=False)
        self._procs = {st.name: _DeviceProc(env=self.env, model=self, state=st, name=st.name)
                       for st in self._states}
        _ArrivalProc(env=self.env, model=self, tasks=self._tasks, name="arrivals")
        with (TraceWriter(self.trace_path) if self.trace_path is not None else LatencyColumn()) as w:
            self._writer = w
            # Objects from before the run (imported libraries, config) are long-lived: keep the
            # cyclic garbage collector from re-scanning them at every full collection.
            gc.freeze()
            try:
                self.env.run()
            finally:
                gc.unfreeze()
        self.latency_ms = w.latency_ms()
        if self._jobs or self.stats.n_tasks != self.n_tasks:
            raise E3Error(f"conservation violated: {self.stats.n_tasks} of {self.n_tasks} tasks finished, "
                          f"{len(self._jobs)} still in the system")
        self.stats.wall_s = time.perf_counter() - self._t0
        return self.stats


def _stderr(msg: str) -> None:
    print(f"[e3] {msg}", file=sys.stderr, flush=True)
