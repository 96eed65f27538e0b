"""What the kernel needs of a dispatch policy, as a structural type (no import of e3.policies).

The engine builds its policy through a factory (a registered policy class is one):
``factory(pool, params, rng, warmup_budget_tasks=..., controllers=..., audit_sink=...,
[oracle=OracleView])``, and then only calls the methods below. ``e3.policies.base.Policy``
satisfies this protocol; the kernel never imports it, so ``e3/sim`` stays below the policies.
"""

from __future__ import annotations

from typing import Any, Protocol

from e3.sim.observation import Annotation, CompletedTask, Observation
from e3.sim.workload import TaskView


class DispatchPolicy(Protocol):
    """A policy as the engine sees it.

    Attributes:
        name: registry name (part of the policy's random stream identity).
        needs_truth: True only for oracles: the engine then passes ``oracle=OracleView``.
        decisions: number of dispatch decisions taken so far.
    """

    name: str
    needs_truth: bool
    decisions: int

    def choose(self, task: TaskView, obs: Observation) -> str:
        """Name of a feasible device of ``task.kind`` for ``task`` (the engine checks it)."""

    def on_annotation(self, annotation: Annotation, obs: Observation) -> None:
        """A coarse event (semantic onset/offset, device leave/return) was exposed."""

    def on_complete(self, record: CompletedTask, obs: Observation) -> None:
        """Delayed feedback: one task finished."""

    def summary(self) -> dict[str, Any]:
        """Policy counters for ``summary.json``."""


class PolicyFactory(Protocol):
    """Builds the run's :class:`DispatchPolicy` (a registered policy class is one)."""

    name: str
    needs_truth: bool

    def __call__(self, pool: list, params: dict[str, Any], rng: Any, **kwargs: Any) -> DispatchPolicy:
        """A new policy for one run; ``kwargs``: warmup_budget_tasks, controllers, audit_sink, [oracle]."""
