"""The information boundary: everything a policy, the OPM or the meta-controller may see.

Paper Table 1: decision-time observables (task features, available devices, queue states, event
annotations already exposed) and delayed feedback (completed-task records). These types hold only
plain observables (numbers, strings, :class:`TaskView` records); none holds, or can reach, the
simulator's :class:`e3.sim.truth.GroundTruth`. ``tests/test_information_boundary.py`` walks
the object graph reachable from a policy to check it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from e3.service_model import service_ms
from e3.sim.workload import TaskView


@dataclass(frozen=True, slots=True)
class Annotation:
    """A coarse event exposed to the controller (semantic onset/offset, device leave/return).

    Attributes:
        task_index: arrival index at which the event was exposed.
        time_ms: simulated time of exposure.
        device: the device concerned.
        event: ``semantic_onset``, ``semantic_offset``, ``device_leave``, ``device_return``, or
            ``notice_onset`` / ``notice_end`` (a free-text notice, issue 31's event benchmark).
        label: e.g. ``game`` for a semantic window; a notice's text (never a magnitude or effect).
    """

    task_index: int
    time_ms: float
    device: str
    event: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class CompletedTask:
    """Delayed feedback for one finished task (paper section 3.4, execution record).

    Times in simulated ms. ``service_ms = end_ms - start_ms`` is the measured service component
    (excluding queueing); ``latency_ms = end_ms - arrival_ms``. Eq. 3's stutter indicator is not
    here: it says whether the device was in a hidden degraded state, which a deployed system cannot
    observe (issue 31's review), so only the trace (the ground truth written after the run) holds it.
    """

    task: TaskView
    device: str
    dispatch_ms: float
    start_ms: float
    end_ms: float

    @property
    def service_ms(self) -> float:
        return self.end_ms - self.start_ms

    @property
    def latency_ms(self) -> float:
        return self.end_ms - self.task.arrival_ms


def _completed_task_factory():
    """A constructor equal to ``CompletedTask(task, device, dispatch_ms, start_ms, end_ms)``
    (same type, values and immutability), about twice as fast: it fills the slots through their
    descriptors instead of the generated ``__init__``'s ``object.__setattr__`` calls. The engine
    builds one record per finished task."""
    new = object.__new__
    c = CompletedTask
    s_task, s_dev, s_disp, s_start, s_end = (c.task.__set__, c.device.__set__, c.dispatch_ms.__set__,
                                             c.start_ms.__set__, c.end_ms.__set__)

    def completed_task(task: TaskView, device: str, dispatch_ms: float, start_ms: float,
                       end_ms: float) -> CompletedTask:
        r = new(c)
        s_task(r, task)
        s_dev(r, device)
        s_disp(r, dispatch_ms)
        s_start(r, start_ms)
        s_end(r, end_ms)
        return r

    return completed_task


new_completed_task = _completed_task_factory()


class DeviceState:
    """Observable state of one device: availability, FIFO queue of task features, running task.

    Read-only to everyone but the engine (issue 11): the public attributes are properties without
    setters, so a policy or a tool cannot change a queue or an availability flag (assignment
    raises AttributeError; ``queue`` is a tuple snapshot). The engine, the kernel's owner of this
    state, writes the underscored slots. ``queue`` holds waiting tasks only; the running task is
    ``in_service`` (started at ``in_service_start_ms``).
    """

    __slots__ = ("_name", "_kind", "_available", "_queue", "_in_service", "_in_service_start_ms")

    def __init__(self, name: str, kind: str) -> None:
        self._name = name
        self._kind = kind
        self._available = True
        self._queue: deque[TaskView] = deque()
        self._in_service: TaskView | None = None
        self._in_service_start_ms = 0.0

    @property
    def name(self) -> str:
        """Device name (pool order is the Observation's)."""
        return self._name

    @property
    def kind(self) -> str:
        """Task kind it serves: ``llm`` or ``sdxl``."""
        return self._kind

    @property
    def available(self) -> bool:
        """False while the device has left the pool (churn)."""
        return self._available

    @property
    def queue(self) -> tuple[TaskView, ...]:
        """Waiting tasks, oldest first (a snapshot)."""
        return tuple(self._queue)

    @property
    def in_service(self) -> TaskView | None:
        """The running task, or None."""
        return self._in_service

    @property
    def in_service_start_ms(self) -> float:
        """Start time of the running task (simulated ms)."""
        return self._in_service_start_ms

    @property
    def queue_length(self) -> int:
        """Tasks on the device: waiting plus running."""
        return len(self._queue) + (self._in_service is not None)


class ReadOnlySequence(Sequence):
    """A read-only view of a list or deque the engine owns: len, indexing, slicing (a list copy),
    iteration, ``in``; no method that changes it (issue 33: a policy could clear the engine's
    annotations or completed records through the view it was handed)."""

    __slots__ = ("_items",)

    def __init__(self, items) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return list(self._items)[i]
        return self._items[i]

    def __iter__(self):
        return iter(self._items)

    def __repr__(self) -> str:
        return f"ReadOnlySequence({list(self._items)!r})"


class Observation:
    """The decision-time view handed to policies (one object, updated in place by the engine).

    Read-only to everyone but the engine (issue 33): the public attributes are properties without
    setters (assignment raises AttributeError) and the sequences are :class:`ReadOnlySequence`
    views; the engine writes the underscored slots.

    Attributes:
        now_ms: current simulated time.
        task_index: arrival index of the task being dispatched.
        devices: name -> :class:`DeviceState`, in pool order (a read-only mapping).
        annotations: every annotation exposed so far, in order (read-only view).
        recent: the most recent completed-task records (bounded, read-only view; policies keep
            their own history).
    """

    __slots__ = ("_now_ms", "_task_index", "_devices", "_annotations", "_recent", "_annotations_view",
                 "_recent_view", "_by_kind", "_feasible", "_touch_sinks")

    def __init__(self, devices: list[DeviceState], recent_maxlen: int = 1000) -> None:
        self._now_ms = 0.0
        self._task_index = 0
        self._devices = MappingProxyType({d.name: d for d in devices})
        self._annotations: list[Annotation] = []
        self._recent: deque[CompletedTask] = deque(maxlen=recent_maxlen)
        self._annotations_view = ReadOnlySequence(self._annotations)
        self._recent_view = ReadOnlySequence(self._recent)
        self._by_kind: dict[str, tuple[DeviceState, ...]] = {}
        for d in devices:
            self._by_kind[d.kind] = self._by_kind.get(d.kind, ()) + (d,)
        # The feasible set of each kind, kept up to date by _set_available: availability changes a
        # few times a run, dispatches happen every task, and a scan per dispatch is O(devices).
        self._feasible = {k: tuple(d for d in ds if d._available) for k, ds in self._by_kind.items()}
        # Sets that the engine adds a device to whenever its queue, running task or availability
        # changes (kernel-internal: e3.sim.backlog keeps its sums current from them).
        self._touch_sinks: list[set[DeviceState]] = []

    @property
    def now_ms(self) -> float:
        """Current simulated time (ms)."""
        return self._now_ms

    @property
    def task_index(self) -> int:
        """Arrival index of the task being dispatched."""
        return self._task_index

    @property
    def devices(self) -> MappingProxyType:
        """name -> :class:`DeviceState`, in pool order (read-only mapping)."""
        return self._devices

    @property
    def annotations(self) -> ReadOnlySequence:
        """Every annotation exposed so far, in order (read-only view)."""
        return self._annotations_view

    @property
    def recent(self) -> ReadOnlySequence:
        """The most recent completed-task records, oldest first (read-only view)."""
        return self._recent_view

    def feasible(self, kind: str) -> tuple[DeviceState, ...]:
        """Available devices that serve task ``kind``, in pool order (empty for an unknown kind).

        O(1): a tuple kept by :meth:`_set_available`, so it is immutable and shared between calls.
        """
        return self._feasible.get(kind, ())

    def _set_available(self, device: DeviceState, available: bool) -> None:
        """The engine's write of a device's availability (churn), which also updates the
        feasible set of its kind. Not for policies: they receive this object but never call it."""
        device._available = available
        self._feasible[device._kind] = tuple(d for d in self._by_kind[device._kind] if d._available)
        self._touch(device)

    def _touch(self, device: DeviceState) -> None:
        """The engine's note that ``device``'s queue, running task or availability changed."""
        for sink in self._touch_sinks:
            sink.add(device)

    def _subscribe_touched(self) -> set[DeviceState]:
        """A new set that receives every device :meth:`_touch` notes from now on (the subscriber
        empties it as it consumes it); kernel-internal, for :mod:`e3.sim.backlog`."""
        sink: set[DeviceState] = set()
        self._touch_sinks.append(sink)
        return sink

    def backlog_ms(self, device: DeviceState, predict_ms: Callable[[str, TaskView], float]) -> float:
        """Backlog of ``device`` as estimated with the caller's own service predictor (ms):
        predicted service of every waiting task plus the predicted remainder of the running one."""
        total = 0.0
        for t in device._queue:
            total += predict_ms(device._name, t)
        if device._in_service is not None:
            rest = predict_ms(device._name, device._in_service) - (self._now_ms - device._in_service_start_ms)
            if rest > 0:
                total += rest
        return total

    def expected_completion_ms(self, device: DeviceState, task: TaskView, factor: float, kind: str,
                               alpha: float, beta: float, c: float) -> float:
        """Estimated backlog of ``device`` plus the predicted service of ``task`` on it (ms), for the
        predictor ``factor * service_ms(kind, alpha, beta, c, L_in, L_out)`` (Eq. 1 / Eq. 2 with the
        caller's parameters and factor).

        Equal, bit for bit, to ``backlog_ms(device, predict) + predict(device.name, task)`` with that
        predictor (same operations in the same order); the fast path of the SECT-style policies,
        which would otherwise call a predictor per waiting task.
        """
        total = 0.0
        for t in device._queue:
            total += factor * service_ms(kind, alpha, beta, c, t.input_tokens, t.output_tokens)
        run = device._in_service
        if run is not None:
            rest = (factor * service_ms(kind, alpha, beta, c, run.input_tokens, run.output_tokens)
                    - (self._now_ms - device._in_service_start_ms))
            if rest > 0:
                total += rest
        return total + factor * service_ms(kind, alpha, beta, c, task.input_tokens, task.output_tokens)
