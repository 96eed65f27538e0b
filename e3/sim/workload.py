"""Task stream: fixed inter-arrival interval, alternating LLM and SDXL tasks (paper section 4.1).

LLM input/output token counts are drawn from discrete bins (seeded). A Poisson-arrival option
exists for queueing checks (M/D/1) and sensitivity studies; the paper uses a fixed interval.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


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
    """

    arrival_rate_per_s: float
    arrivals: str = "fixed"
    mix: str = "alternate"
    input_token_bins: tuple[int, ...] = (128, 256, 512, 1024, 2048)
    output_token_bins: tuple[int, ...] = (32, 64, 128, 256)

    @property
    def interval_ms(self) -> float:
        """Mean inter-arrival time in ms."""
        return 1000.0 / self.arrival_rate_per_s


def generate(spec: WorkloadSpec, n_tasks: int, rng: random.Random) -> Iterator[TaskView]:
    """Yield ``n_tasks`` tasks in arrival order (lazily, so long horizons use no memory).

    The first task arrives at t = 0 ms. ``rng`` drives token bins and Poisson gaps only.
    """
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
