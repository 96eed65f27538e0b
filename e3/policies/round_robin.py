"""RoundRobin: cycle over the available devices that serve the task's kind (paper section 4.1)."""

from __future__ import annotations

from e3.policies.base import Policy, register


@register
class RoundRobin(Policy):
    """Topology-agnostic baseline: the k-th task of a kind goes to the next available device of
    that kind in pool order. Ignores queues, priors and feedback."""

    name = "round_robin"

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self._next: dict[str, int] = {}

    def choose(self, task, obs):
        feas = obs.feasible(task.kind)
        i = self._next.get(task.kind, 0)
        self._next[task.kind] = i + 1
        self.decisions += 1
        return feas[i % len(feas)].name
