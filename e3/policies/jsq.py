"""Join the shortest queue and its power-of-d sampling variant (classic online dispatch).

References: W. Winston, "Optimality of the shortest line discipline", J. Appl. Prob. 14 (1977);
M. Mitzenmacher, "The power of two choices in randomized load balancing", IEEE TPDS 12 (2001).
Both use only queue lengths (tasks waiting plus running), never service-time estimates.
"""

from __future__ import annotations

from e3.policies.base import Policy, register
from e3.sim.jsq import join_shortest_queue


@register
class JoinShortestQueue(Policy):
    """JSQ: the feasible device with the fewest tasks; ties broken uniformly at random (seeded)."""

    name = "jsq"

    def choose(self, task, obs):
        self.decisions += 1
        return join_shortest_queue(obs.feasible(task.kind), lambda d: d.queue_length, self.rng).name


@register
class PowerOfD(Policy):
    """JSQ(d): sample ``d`` feasible devices uniformly without replacement, join the shortest of
    them (ties at random). ``d`` >= the number of feasible devices is JSQ; ``d = 1`` is random."""

    name = "jsq_d"
    parameters = {"d": 2}
    test_config = {"d": 1}

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        if not isinstance(self.params["d"], int) or self.params["d"] < 1:
            from e3.errors import ConfigError

            raise ConfigError(f"policy jsq_d: parameter d must be an integer >= 1, got {self.params['d']!r}")

    def choose(self, task, obs):
        self.decisions += 1
        feas = obs.feasible(task.kind)
        sample = self.rng.sample(feas, min(self.params["d"], len(feas)))
        return join_shortest_queue(sample, lambda d: d.queue_length, self.rng).name
