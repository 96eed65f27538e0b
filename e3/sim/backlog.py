"""Per-kind arrays of every device's estimated backlog, for SECT scoring of large pools (issue 11).

:meth:`e3.sim.observation.Observation.expected_completion_ms` scores one device in Python, so a
SECT policy that scores every feasible device pays O(devices x queue length) per task. This is its
vectorised counterpart: for each task kind, numpy arrays over the kind's devices (pool order) of

* ``qsum_ms``: the predicted service of every waiting task, summed in FIFO order;
* ``run_pred_ms`` and ``run_start_ms``: the running task's predicted service and start time;

kept incrementally. The engine records which devices' queues changed (``Observation._touch``);
only those devices' sums are recomputed, and only devices whose predictor the caller changed
(:meth:`PoolBacklog.set_predictor`). A task's scores then cost a handful of array operations.

Every element equals, bit for bit, what ``expected_completion_ms`` returns for that device and
predictor: the same IEEE double operations in the same order (a waiting-task sum is recomputed
from the start, never updated by subtraction; a zero added where a device runs nothing leaves the
sum unchanged). ``tests/test_backlog_arrays.py`` checks it on random queues and whole runs.
"""

from __future__ import annotations

import numpy as np
from sortedcontainers import SortedList

from e3.service_model import service_ms
from e3.sim.observation import DeviceState, Observation
from e3.sim.truth import GroundTruth
from e3.sim.workload import TaskView

#: From this many feasible devices of a kind, the policies that use these arrays (e3, sed_ewma) score
#: over them; below it their Python loop is faster than numpy's per-call overhead. Either way the
#: choice is the same.
VECTOR_MIN_DEVICES = 24


class _KindArrays:
    """The arrays of one task kind (internal to :class:`PoolBacklog`)."""

    __slots__ = ("kind", "states", "index", "factor", "alpha", "beta", "c", "qsum_ms", "run_pred_ms",
                 "run_start_ms", "available")

    def __init__(self, kind: str, states: tuple[DeviceState, ...]) -> None:
        n = len(states)
        self.kind = kind
        self.states = states
        self.index = {st.name: i for i, st in enumerate(states)}
        self.factor = np.ones(n)
        self.alpha = np.zeros(n)
        self.beta = np.zeros(n)
        self.c = np.zeros(n)
        self.qsum_ms = np.zeros(n)
        self.run_pred_ms = np.zeros(n)
        self.run_start_ms = np.zeros(n)
        self.available = np.ones(n, dtype=bool)

    def refresh(self, i: int) -> None:
        # The exact loop of Observation.expected_completion_ms, for one device.
        st, kind = self.states[i], self.kind
        f, a, b, c = float(self.factor[i]), float(self.alpha[i]), float(self.beta[i]), float(self.c[i])
        total = 0.0
        for t in st._queue:
            total += f * service_ms(kind, a, b, c, t.input_tokens, t.output_tokens)
        self.qsum_ms[i] = total
        run = st._in_service
        if run is None:
            # -inf: "rest > 0" is then false, as for a device that runs nothing.
            self.run_pred_ms[i] = -np.inf
            self.run_start_ms[i] = 0.0
        else:
            self.run_pred_ms[i] = f * service_ms(kind, a, b, c, run.input_tokens, run.output_tokens)
            self.run_start_ms[i] = st._in_service_start_ms
        self.available[i] = st._available


class _IncrementalArrays:
    """Per-kind arrays kept current by recomputing only the devices the engine touched (its queue
    notes) or that :meth:`_mark` named: the bookkeeping :class:`PoolBacklog` and
    :class:`TrueBacklog` share. Subclasses set ``_kinds`` (kind -> arrays with ``states`` and
    ``index``) before calling :meth:`_track` and implement :meth:`_refresh`."""

    def _track(self, obs: Observation) -> None:
        self._touched = obs._subscribe_touched()
        self._dirty: set[tuple[str, int]] = {(k, i) for k, a in self._kinds.items() for i in range(len(a.states))}

    def _mark(self, kind: str, device: str) -> None:
        a = self._kinds.get(kind)
        if a is not None:
            self._dirty.add((kind, a.index[device]))

    def _refresh(self, arrays, i: int) -> None:
        raise NotImplementedError

    def _sync(self) -> None:
        if self._touched:
            for st in self._touched:
                self._mark(st._kind, st._name)
            self._touched.clear()
        if self._dirty:
            kinds = self._kinds
            for k, i in self._dirty:
                self._refresh(kinds[k], i)
            self._dirty.clear()


class PoolBacklog(_IncrementalArrays):
    """Vectorised expected completion times over each kind's devices (see the module docstring).

    Args:
        obs: the run's observation; the object subscribes to its queue changes.
        kinds: the task kinds to keep arrays for (default: every kind of the pool).

    The caller sets each device's predictor with :meth:`set_predictor` (until then a device
    predicts 0 ms); :meth:`completion_ms` brings the arrays up to date before it scores.
    """

    def __init__(self, obs: Observation, kinds: tuple[str, ...] | None = None) -> None:
        self.obs = obs  # the observation these arrays follow (a policy rebuilds them for a new run)
        self._kinds = {k: _KindArrays(k, ds) for k, ds in obs._by_kind.items() if kinds is None or k in kinds}
        self._track(obs)

    def devices(self, kind: str) -> tuple[DeviceState, ...]:
        """The devices of ``kind`` in array order (pool order), available or not.

        Raises:
            KeyError: a kind this object keeps no arrays for.
        """
        return self._kinds[kind].states

    def index(self, kind: str) -> dict[str, int]:
        """Device name -> array position, for ``kind``."""
        return self._kinds[kind].index

    def set_predictor(self, device: str, kind: str, factor: float, alpha: float, beta: float, c: float) -> None:
        """Predict ``factor * service_ms(kind, alpha, beta, c, L_in, L_out)`` on ``device`` from now
        on (ms; Eq. 1 / Eq. 2 with the caller's parameters, e.g. the OPM's estimate).

        Raises:
            KeyError: a device or kind this object keeps no arrays for.
        """
        a = self._kinds[kind]
        i = a.index[device]
        a.factor[i], a.alpha[i], a.beta[i], a.c[i] = factor, alpha, beta, c
        self._dirty.add((kind, i))

    def _refresh(self, arrays: _KindArrays, i: int) -> None:
        arrays.refresh(i)

    def _backlog(self, a: _KindArrays) -> np.ndarray:
        rest = a.run_pred_ms - (self.obs.now_ms - a.run_start_ms)
        return a.qsum_ms + np.where(rest > 0, rest, 0.0)

    def backlog_ms(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Estimated backlog of every device of ``kind`` (ms) and which are available.

        Returns:
            (backlog_ms, available): arrays of shape (devices of ``kind``,) in pool order; the
            backlogs equal ``obs.backlog_ms(d, predict)`` with each device's predictor, bit for bit.

        Raises:
            KeyError: a kind this object keeps no arrays for.
        """
        self._sync()
        a = self._kinds[kind]
        return self._backlog(a), a.available

    def completion_ms(self, task: TaskView) -> tuple[np.ndarray, np.ndarray]:
        """Expected completion of ``task`` on every device of its kind, and which are available.

        Returns:
            (scores_ms, available): arrays of shape (devices of ``task.kind``,) in pool order; the
            scores equal ``obs.expected_completion_ms(d, task, ...)`` with each device's predictor,
            bit for bit; ``available`` is the feasibility mask.

        Raises:
            KeyError: a kind this object keeps no arrays for.
        """
        self._sync()
        a = self._kinds[task.kind]
        new = a.factor * service_ms(a.kind, a.alpha, a.beta, a.c, task.input_tokens, task.output_tokens)
        return self._backlog(a) + new, a.available


class _TrueKindArrays:
    """The true-backlog arrays of one task kind (internal to :class:`TrueBacklog`)."""

    __slots__ = ("kind", "states", "index", "alpha", "beta", "c", "factor", "semantic", "qsum_ms",
                 "running", "service_end_ms", "available")

    def __init__(self, kind: str, states: tuple[DeviceState, ...], eq: dict[str, tuple]) -> None:
        n = len(states)
        self.kind = kind
        self.states = states
        self.index = {st.name: i for i, st in enumerate(states)}
        self.alpha = np.array([eq[st.name][1] for st in states], dtype=float)
        self.beta = np.array([eq[st.name][2] for st in states], dtype=float)
        self.c = np.array([eq[st.name][3] for st in states], dtype=float)
        self.factor = np.ones(n)  # semantic x drift, as GroundTruth.expected_service_ms forms it
        self.semantic = np.ones(n)
        self.qsum_ms = np.zeros(n)
        self.running = np.zeros(n, dtype=bool)
        self.service_end_ms = np.zeros(n)
        self.available = np.ones(n, dtype=bool)


class TrueBacklog(_IncrementalArrays):
    """Vectorised true expected completion times over each kind's devices: the Oracle's score
    (paper section 2.3, Eq. 5) for large pools (issue 11).

    Element ``i`` of :meth:`completion_ms` equals, bit for bit, what the engine's true backlog plus
    :meth:`e3.sim.truth.GroundTruth.expected_service_ms` give for device ``i`` in Python: the rest of
    the running task's *realised* service (``max(0, service_end - now)``), plus the true expected
    service of each waiting task summed in FIFO order with the builtin ``sum`` (recomputed from the
    start when the queue or the device's hidden factors change, never updated by subtraction), plus
    the new task's true expected service (Eq. 1 / Eq. 2 times the semantic and drift factors).

    Args:
        obs: the run's observation (its queues; the object subscribes to their changes).
        truth: the run's hidden ground truth (its parameters; the object subscribes to factor
            changes). Kernel-internal: only :class:`e3.sim.truth.OracleView` hands out the result.
        service_end_ms: device -> realised end of its running task (ms), the engine's own dict.
    """

    def __init__(self, obs: Observation, truth: GroundTruth, service_end_ms: dict[str, float]) -> None:
        self.obs = obs
        self._truth = truth
        self._service_end = service_end_ms
        self._kinds = {k: _TrueKindArrays(k, ds, truth._eq) for k, ds in obs._by_kind.items()}
        self._track(obs)
        self._changed = truth._subscribe_changed()

    def _refresh(self, a: _TrueKindArrays, i: int) -> None:
        st, t = a.states[i], self._truth
        name = st._name
        m = t.semantic_factor[name] * t.drift_factor[name]
        kind, alpha, beta, c = t._eq[name]
        a.factor[i] = m
        a.semantic[i] = t.semantic_factor[name]
        # the generator of the engine's _true_backlog_ms, through the same builtin sum
        a.qsum_ms[i] = sum(m * service_ms(kind, alpha, beta, c, q.input_tokens, q.output_tokens) for q in st._queue)
        a.running[i] = st._in_service is not None
        a.service_end_ms[i] = self._service_end[name]
        a.available[i] = st._available

    def completion_ms(self, task: TaskView) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[DeviceState, ...]]:
        """True expected completion of ``task`` on every device of its kind (ms).

        Returns:
            (scores_ms, available, degraded, devices): three arrays of shape (devices of
            ``task.kind``,) in pool order (the scores, the feasibility mask, the hidden degraded
            state of Eq. 3) and the devices in that order.

        Raises:
            KeyError: a kind the pool has no device of.
        """
        if self._changed:
            for name in self._changed:
                self._mark(self._truth.kinds[name], name)
            self._changed.clear()
        self._sync()
        a = self._kinds[task.kind]
        rest = a.service_end_ms - self.obs.now_ms
        total = np.where(a.running & (rest > 0.0), rest, 0.0) + a.qsum_ms
        new = a.factor * service_ms(a.kind, a.alpha, a.beta, a.c, task.input_tokens, task.output_tokens)
        return total + new, a.available, a.semantic > 1.0, a.states


class QueueCounts:
    """Per-kind totals of queue lengths (waiting plus running) and the devices with a non-empty
    queue, kept incrementally from the engine's queue notes (issue 11: the bounded status view of
    a large pool, which would otherwise scan every device at every tool call).

    Args:
        obs: the run's observation; the object subscribes to its queue changes.
    """

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self._touched = obs._subscribe_touched()
        self._touched.update(obs.devices.values())  # the first sync reads every device once
        self._length: dict[str, int] = {}  # device -> queue length, non-empty queues only
        self._total = dict.fromkeys(obs._by_kind, 0)
        # (-queue length, device) of the non-empty queues, in order: the longest queues without a
        # scan of the busy devices (on a large pool thousands of them, at every status call)
        self._by_length = SortedList()

    def _sync(self) -> None:
        length, total, by_length = self._length, self._total, self._by_length
        for st in self._touched:
            name = st._name
            n, old = st.queue_length, length.get(name, 0)
            if n != old:
                total[st._kind] += n - old
                if old:
                    by_length.remove((-old, name))
                if n:
                    length[name] = n
                    by_length.add((-n, name))
                else:
                    del length[name]
        self._touched.clear()

    def total(self, kind: str) -> int:
        """Tasks waiting or running on the devices of ``kind`` now (0 for an unknown kind)."""
        if self._touched:
            self._sync()
        return self._total.get(kind, 0)

    def longest(self, count: int) -> list[str]:
        """The first ``count`` devices with a non-empty queue by (-queue length, name), i.e.
        ``[d for _, d in heapq.nsmallest(count, [(-n, d) for each non-empty queue of n tasks])]``,
        in O(count + log devices) (fewer when fewer queues are non-empty)."""
        if self._touched:
            self._sync()
        return [d for _, d in self._by_length.islice(0, max(0, count))]

    def is_nonempty(self, device: str) -> bool:
        """Whether ``device``'s queue (waiting plus running) is not empty now."""
        if self._touched:
            self._sync()
        return device in self._length
