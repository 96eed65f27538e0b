"""Oracle: online, full-information earliest completion (paper section 2.3, Eq. 5)."""

from __future__ import annotations

import numpy as np

from e3.errors import ConfigError
from e3.policies.base import Policy, register
from e3.sim import backlog


@register
class Oracle(Policy):
    """Routes each task to the feasible device with the earliest expected completion under the
    *true current* parameters and the *true* backlogs (rest of the running task's realised
    service plus the true expected service of queued tasks). Sees hidden degradation through
    the parameters; never sees future arrivals, future events or future noise draws. An
    upper-bound baseline, not an implementable policy.

    From ``e3.sim.backlog.VECTOR_MIN_DEVICES`` feasible devices of a kind it scores them over
    arrays (:meth:`e3.sim.truth.OracleView.completion_ms`): the same choice in a few array
    operations per task instead of a Python loop over every device and its queue (issue 11)."""

    name = "oracle"
    needs_truth = True

    def __init__(self, *a, oracle=None, **k) -> None:
        super().__init__(*a, **k)
        if oracle is None:
            raise ConfigError("the oracle policy needs an OracleView (the engine provides it)")
        self._oracle = oracle

    def choose(self, task, obs):
        self.decisions += 1
        o = self._oracle
        feas = obs.feasible(task.kind)
        if len(feas) >= backlog.VECTOR_MIN_DEVICES:
            # the same scores over arrays, bit for bit, and the same first minimum in pool order
            scores, available, _, devices = o.completion_ms(task)
            return devices[int(np.argmin(np.where(available, scores, np.inf)))].name
        best = min(feas, key=lambda d: o.true_backlog_ms(d.name) + o.expected_service_ms(d.name, task))
        return best.name
