"""Serving nodes with multi-dimensional capacity, model pods, and a node's shared processor.

Kernel primitives of the multi-model serving engine (:mod:`e3.fairness.engine`), free of salabim so
they are tested by hand-worked examples:

* :class:`Node`: a machine with a capacity per named dimension (``gpu_mem_gb``, ``ram_gb``, or
  any other, e.g. compute, storage, bandwidth for agent placement); pods reserve a demand vector
  and admission never lets the sum exceed the capacity (raises otherwise).
* :class:`Pod`: one FIFO server of one model on one node (spec "Simulator mapping": a pod = an E3
  device server keyed by (node, model)); its life cycle is inactive -> activating -> active ->
  deactivating -> inactive, and only an active pod accepts requests.
* :class:`SharedProcessor`: the node's accelerator. Every job in it progresses at rate 1/k when k
  jobs share it (processor sharing, the spec's default for time-sliced vGPUs); strict FIFO per
  node is obtained by the engine admitting one job at a time.

Units: times in simulated ms, work in ms of exclusive service, capacities in the dimension's unit.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from e3.errors import E3Error

#: Pod life-cycle states (spec: pods activated/deactivated on demand, slow to start and stop).
INACTIVE, ACTIVATING, ACTIVE, DEACTIVATING = "inactive", "activating", "active", "deactivating"
_EPS_MS = 1e-9


class CapacityError(E3Error):
    """A reservation would exceed a node's capacity in some dimension."""


@dataclass
class Node:
    """A serving machine with a capacity vector and the reservations of its pods.

    Attributes:
        name: node label (e.g. ``gpu0``).
        kind: hardware class (``gpu`` or ``cpu``): selects the service prior and footprint.
        capacity: dimension -> capacity (e.g. ``{"gpu_mem_gb": 8.0, "ram_gb": 32.0}``); a dimension
            absent from a demand is not used by it.
        used: dimension -> sum of current reservations (same keys as ``capacity``).
    """

    name: str
    kind: str
    capacity: dict[str, float]
    used: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for dim, cap in self.capacity.items():
            if not cap >= 0:  # also rejects NaN
                raise E3Error(f"node {self.name!r}: capacity {dim!r} must be >= 0 (value: {cap!r})")
            self.used.setdefault(dim, 0.0)

    def fits(self, demand: dict[str, float]) -> bool:
        """True when ``demand`` can be added without exceeding any dimension.

        Raises:
            E3Error: ``demand`` names a dimension the node does not have.
        """
        for dim, need in demand.items():
            if dim not in self.capacity:
                raise E3Error(f"node {self.name!r} has no capacity dimension {dim!r} (has {sorted(self.capacity)})")
            if self.used[dim] + need > self.capacity[dim] + 1e-9:
                return False
        return True

    def reserve(self, demand: dict[str, float]) -> None:
        """Add ``demand`` to ``used``. Raises :class:`CapacityError` if it does not fit."""
        if not self.fits(demand):
            raise CapacityError(f"node {self.name!r}: demand {demand} exceeds free capacity "
                                f"(capacity {self.capacity}, used {self.used})")
        for dim, need in demand.items():
            self.used[dim] += need

    def release(self, demand: dict[str, float]) -> None:
        """Remove ``demand`` from ``used`` (clamped at zero against rounding)."""
        for dim, need in demand.items():
            self.used[dim] = max(0.0, self.used[dim] - need)

    def headroom(self) -> dict[str, float]:
        """Free capacity per dimension."""
        return {d: self.capacity[d] - self.used[d] for d in self.capacity}


@dataclass
class Pod:
    """One model server (a FIFO queue, one request in service at a time) on one node.

    Attributes:
        node: node name.
        model: model name.
        demand: the capacity it reserves on its node while not inactive.
        state: one of ``inactive``, ``activating``, ``active``, ``deactivating``.
        queue: waiting requests (engine records), FIFO.
        in_service: the request in service, or None.
        ready_ms: when an activating pod becomes active.
        activations: how many times it was activated.
        epoch: bumped at every state change, so stale timer callbacks can be ignored.
    """

    node: str
    model: str
    demand: dict[str, float]
    state: str = INACTIVE
    queue: deque = field(default_factory=deque)
    in_service: Any = None
    ready_ms: float = 0.0
    activations: int = 0
    epoch: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """``(node, model)``."""
        return (self.node, self.model)

    @property
    def accepts(self) -> bool:
        """Only an active pod may receive requests."""
        return self.state == ACTIVE


class SharedProcessor:
    """Processor sharing among the jobs on one node: with k jobs present each gets rate 1/k.

    Jobs are opaque hashable keys with a remaining work in ms of exclusive service. The caller
    advances the clock with :meth:`advance` before any change, and asks :meth:`next_completion_ms`
    for the time until the next job finishes if nothing changes.
    """

    def __init__(self) -> None:
        self.remaining: dict[Any, float] = {}
        self.last_ms = 0.0
        self.busy_ms = 0.0

    def __len__(self) -> int:
        return len(self.remaining)

    def advance(self, now_ms: float) -> list[Any]:
        """Progress every job to ``now_ms``; return the jobs that have finished (removed), in
        insertion order.

        Raises:
            E3Error: time runs backwards.
        """
        dt = now_ms - self.last_ms
        if dt < -_EPS_MS:
            raise E3Error(f"processor clock went backwards: {self.last_ms} -> {now_ms}")
        self.last_ms = now_ms
        k = len(self.remaining)
        if k == 0 or dt <= 0:
            return self._done()
        self.busy_ms += dt
        share = dt / k
        for job in self.remaining:
            self.remaining[job] -= share
        return self._done()

    def _done(self) -> list[Any]:
        tol = _EPS_MS * max(1.0, self.last_ms)
        done = [j for j, r in self.remaining.items() if r <= tol]
        for j in done:
            del self.remaining[j]
        return done

    def add(self, job: Any, work_ms: float, now_ms: float) -> None:
        """Start ``job`` with ``work_ms`` of work at ``now_ms`` (call :meth:`advance` first)."""
        if not work_ms >= 0:
            raise E3Error(f"job work must be >= 0 ms (value: {work_ms!r})")
        if now_ms != self.last_ms:
            raise E3Error("advance the processor to now before adding a job")
        self.remaining[job] = work_ms

    def remove(self, job: Any) -> float:
        """Take ``job`` out unfinished (e.g. its pod is shut down); returns its remaining work."""
        return self.remaining.pop(job)

    def next_completion_ms(self) -> float | None:
        """Time from now until the first job finishes if nothing changes; None when idle."""
        if not self.remaining:
            return None
        return max(0.0, min(self.remaining.values()) * len(self.remaining))
