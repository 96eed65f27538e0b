"""Task stream: fixed inter-arrival interval, alternating LLM and SDXL tasks (paper section 4.1).

LLM input/output token counts are drawn from discrete bins (seeded). A Poisson-arrival option
exists for queueing checks (M/D/1) and sensitivity studies; the paper uses a fixed interval.

Trace replay (``arrivals: trace``, :class:`TraceWorkload`): arrival times and LLM token counts
come from a production request trace (:mod:`e3.workload.readers`), optionally cut to a window
and with the time axis stretched by ``time_scale`` (a cloud trace runs at a cloud rate; an edge
cell replays it slower). Rule for SDXL tasks: each arrival, in trace order, becomes an SDXL task
with probability ``sdxl_fraction``, drawn from the replicate's workload stream (so every policy
of a replicate sees the same tasks); its token counts are dropped. The other arrivals are LLM
tasks with the trace's counts, kept as they are even beyond the token bins the Eq. 1 priors were
made for (never clipped).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from e3.errors import E3Error

if TYPE_CHECKING:
    from e3.workload.readers import RequestTrace


@dataclass(frozen=True, slots=True)
class TaskView:
    """What the dispatcher knows about a task at arrival: its features, never its service time.

    Attributes:
        task_id: 0-based arrival index.
        kind: ``"llm"`` or ``"sdxl"``.
        input_tokens: LLM prompt length L_in (0 for SDXL).
        output_tokens: LLM generated length L_out (0 for SDXL).
        arrival_ms: arrival time in simulated ms.
    """

    task_id: int
    kind: str
    input_tokens: int
    output_tokens: int
    arrival_ms: float


@functools.lru_cache(maxsize=4)
def _cached_trace(path: str, fmt: str, mtime_ns: int, size: int) -> RequestTrace:
    # Keyed by the file's mtime and size too, so an edited file is read again.
    from e3.workload.readers import read_request_trace  # pandas: only for trace workloads

    return read_request_trace(path, fmt)


def load_request_trace(path: str | Path, fmt: str) -> RequestTrace:
    """Read a request trace once per process (cached on path, format, mtime and size).

    Raises:
        InputError: missing file or bad rows (see :mod:`e3.workload.readers`).
    """
    p = Path(path)
    st = p.stat() if p.is_file() else None
    if st is None:
        from e3.workload.readers import read_request_trace

        return read_request_trace(p, fmt)  # raises the reader's "not found" error
    return _cached_trace(str(p), fmt, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class TraceWorkload:
    """Trace replay parameters (config ``workload.trace``; see the module docstring).

    Attributes:
        path: the trace file.
        format: ``"azure"``, ``"burstgpt"`` or ``"mooncake"``.
        time_scale: simulated ms per trace ms (> 0; 10 replays the trace ten times slower).
        sdxl_fraction: probability that an arrival becomes an SDXL task, in [0, 1].
        start_s: window start, in trace seconds after the first request.
        duration_s: window length in trace seconds; None: to the end of the trace.
    """

    path: str
    format: str = "azure"
    time_scale: float = 1.0
    sdxl_fraction: float = 0.5
    start_s: float = 0.0
    duration_s: float | None = None

    def requests(self) -> RequestTrace:
        """The requests of the window, arrival times in unscaled trace ms from ``start_s``."""
        return load_request_trace(self.path, self.format).window(self.start_s, self.duration_s)
def _task_view_factory():
    """A constructor equal to ``TaskView(task_id, kind, input_tokens, output_tokens, arrival_ms)``
    (same type, values and immutability), about twice as fast: it fills the slots through their
    descriptors instead of the generated ``__init__``'s ``object.__setattr__`` calls. One TaskView
    is built per task."""
    new = object.__new__
    s_id, s_kind, s_in, s_out, s_arr = (TaskView.task_id.__set__, TaskView.kind.__set__,
                                         TaskView.input_tokens.__set__, TaskView.output_tokens.__set__,
                                         TaskView.arrival_ms.__set__)

    def task_view(task_id: int, kind: str, input_tokens: int, output_tokens: int, arrival_ms: float) -> TaskView:
        t = new(TaskView)
        s_id(t, task_id)
        s_kind(t, kind)
        s_in(t, input_tokens)
        s_out(t, output_tokens)
        s_arr(t, arrival_ms)
        return t

    return task_view


_task_view = _task_view_factory()


@dataclass(frozen=True)
class WorkloadSpec:
    """Workload parameters (config ``workload``).

    Attributes:
        arrival_rate_per_s: tasks per second (all kinds together).
        arrivals: ``"fixed"`` (the paper) or ``"poisson"``.
        mix: ``"alternate"`` (LLM, SDXL, LLM, ...; the paper), ``"llm"`` or ``"sdxl"`` only.
        input_token_bins: possible L_in values, drawn uniformly.
        output_token_bins: possible L_out values, drawn uniformly.
        trace: trace replay; when set, arrivals, kinds and token counts come from it and
            ``arrival_rate_per_s``, ``arrivals``, ``mix`` and the bins are not used.
    """

    arrival_rate_per_s: float
    arrivals: str = "fixed"
    mix: str = "alternate"
    input_token_bins: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    output_token_bins: tuple[int, ...] = (32, 64, 128, 256)
    trace: TraceWorkload | None = None

    @property
    def interval_ms(self) -> float:
        """Mean inter-arrival time in ms."""
        return 1000.0 / self.arrival_rate_per_s


def generate(spec: WorkloadSpec, n_tasks: int, rng: random.Random) -> Iterator[TaskView]:
    """Yield ``n_tasks`` tasks in arrival order (lazily, so long horizons use no memory).

    The first task arrives at t = 0 ms. ``rng`` drives token bins and Poisson gaps only. With
    ``spec.trace`` set, see :func:`generate_from_trace`.
    """
    if spec.trace is not None:
        yield from generate_from_trace(spec.trace, n_tasks, rng)
        return
    t = 0.0
    gap = spec.interval_ms
    for k in range(n_tasks):
        if spec.mix == "alternate":
            kind = "llm" if k % 2 == 0 else "sdxl"
        else:
            kind = spec.mix
        if kind == "llm":
            yield _task_view(k, kind, rng.choice(spec.input_token_bins), rng.choice(spec.output_token_bins), t)
        else:
            yield _task_view(k, kind, 0, 0, t)
        t += rng.expovariate(1.0 / gap) if spec.arrivals == "poisson" else gap


def generate_from_trace(tw: TraceWorkload, n_tasks: int, rng: random.Random) -> Iterator[TaskView]:
    """Yield the first ``n_tasks`` requests of the trace window as tasks, in trace order.

    Arrival of request k: ``arrival_ms[k] * time_scale`` (ms after the window start). ``rng``
    draws one uniform per request: below ``sdxl_fraction`` it is an SDXL task, otherwise an LLM
    task with the trace's input/output token counts.

    Raises:
        E3Error: ``n_tasks`` exceeds the number of requests in the window.
    """
    tr = tw.requests()
    if n_tasks > len(tr):
        raise E3Error(f"{tw.path}: the trace window [{tw.start_s}, {tw.duration_s}) s holds {len(tr)} "
                      f"requests, fewer than the {n_tasks} tasks asked for")
    arr, lin, lout = tr.arrival_ms, tr.input_tokens, tr.output_tokens
    for k in range(n_tasks):
        t = float(arr[k]) * tw.time_scale
        if rng.random() < tw.sdxl_fraction:
            yield TaskView(k, "sdxl", 0, 0, t)
        else:
            yield TaskView(k, "llm", int(lin[k]), int(lout[k]), t)
