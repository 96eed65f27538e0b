"""A plain heapq event loop of the same setting as the salabim model, for the engine benchmark.

:class:`HeapqSimulation` reuses everything of :class:`e3.sim.engine.Simulation` (workload, hidden
truth, policy calls, scenario events, trace writer, counters) and replaces only the event engine:
salabim's components become a binary heap of ``(time_ms, seq, action, payload)`` entries. The
benchmark therefore measures what salabim costs over the cheapest event loop one could write,
and checks that both engines produce the same trace.
"""

from __future__ import annotations

import heapq
import time

from e3.errors import E3Error
from e3.sim.engine import Simulation
from e3.sim.trace import TraceWriter

_ARRIVAL, _FINISH = 0, 1


class _HeapqDevice:
    """Stands in for the salabim device component: idle flag plus ``activate`` to start service."""

    __slots__ = ("loop", "state", "busy")

    def __init__(self, loop: HeapqSimulation, state) -> None:
        self.loop, self.state, self.busy = loop, state, False

    def ispassive(self) -> bool:
        return not self.busy

    def activate(self) -> None:
        self.loop._start_next(self)


class HeapqSimulation(Simulation):
    """Same model as :class:`Simulation`, executed by a heapq loop instead of salabim."""

    def _start_next(self, dev: _HeapqDevice) -> None:
        st = dev.state
        if dev.busy or not st._queue or not st._available:
            return
        task = st._queue.popleft()
        now = self._now
        job = self._jobs[task.task_id]
        service = self._truth.expected_service_ms(st.name, task) * job.noise
        st._in_service, st._in_service_start_ms = task, now
        self._service_end[st.name] = now + service
        dev.busy = True
        self._seq += 1
        heapq.heappush(self._heap, (now + service, self._seq, _FINISH, (dev, task, job, now)))

    def run(self):
        """Run to completion; same outputs and checks as :meth:`Simulation.run`."""
        self._t0 = time.perf_counter()
        self._now, self._seq, self._heap = 0.0, 0, []
        self._procs = {st.name: _HeapqDevice(self, st) for st in self._states}
        self.env = self  # Simulation._arrive reads env.now()
        tasks = iter(self._tasks)

        def push_next_arrival() -> None:
            task = next(tasks, None)
            if task is not None:
                self._seq += 1
                heapq.heappush(self._heap, (task.arrival_ms, self._seq, _ARRIVAL, task))

        push_next_arrival()
        with TraceWriter(self.trace_path) as w:
            self._writer = w
            heap = self._heap
            while heap:
                self._now, _, action, payload = heapq.heappop(heap)
                if action == _ARRIVAL:
                    self._arrive(payload)
                    push_next_arrival()
                else:
                    dev, task, job, start = payload
                    dev.state._in_service = None
                    dev.busy = False
                    self._complete(task, job, dev.state.name, start, self._now)
                    self._start_next(dev)
        if self._jobs or self.stats.n_tasks != self.n_tasks:
            raise E3Error(f"conservation violated: {self.stats.n_tasks} of {self.n_tasks} tasks finished")
        self.stats.wall_s = time.perf_counter() - self._t0
        return self.stats

    def now(self) -> float:
        """Current simulated time in ms (the salabim ``env.now()`` the shared code calls)."""
        return self._now


def minimal_loop(n_tasks: int, interval_ms: float = 5000.0, seed: int = 1) -> float:
    """The cheapest simulation of the same setting one could write; returns its mean latency (ms).

    Alternating LLM and SDXL arrivals every ``interval_ms``, token counts drawn from the config's
    bins, four FIFO single-server devices (two per kind, Eq. 1 / Eq. 2 with fixed parameters of
    the paper's pool's magnitude), round-robin dispatch, one heap of completion events, no task
    objects, no trace, no policy interface. The floor against which the simulator's per-task
    cost is reported (issue 11: "a minimal heapq loop, about 860 k tasks/s").
    """
    import random
    from collections import deque

    rng = random.Random(seed)
    ins, outs = (128, 256, 512, 1024, 2048), (32, 64, 128, 256)
    params = {0: (0.4, 30.0), 1: (0.9, 60.0), 2: 5000.0, 3: 7000.0}  # LLM: (alpha, beta); SDXL: c
    queues = [deque() for _ in range(4)]
    busy = [False] * 4
    heap: list[tuple[float, int, int]] = []
    seq = 0
    latency_sum = 0.0
    rr = [0, 2]  # next device per kind
    push, pop = heapq.heappush, heapq.heappop
    t = 0.0
    for k in range(n_tasks):
        # Finish everything that ends before this arrival.
        while heap and heap[0][0] <= t:
            end, _, d = pop(heap)
            latency_sum += end - queues[d].popleft()[0]
            if queues[d]:
                arr, service = queues[d][0]
                seq += 1
                push(heap, (end + service, seq, d))
            else:
                busy[d] = False
        kind = k & 1
        d = rr[kind]
        rr[kind] = d + 1 if d + 1 < 2 * (kind + 1) else 2 * kind
        if kind == 0:
            a, b = params[d]
            service = a * rng.choice(ins) + b * rng.choice(outs)
        else:
            service = params[d]
        queues[d].append((t, service))
        if not busy[d]:
            busy[d] = True
            seq += 1
            push(heap, (t + service, seq, d))
        t += interval_ms
    while heap:
        end, _, d = pop(heap)
        latency_sum += end - queues[d].popleft()[0]
        if queues[d]:
            seq += 1
            push(heap, (end + queues[d][0][1], seq, d))
    return latency_sum / n_tasks
