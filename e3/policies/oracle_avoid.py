"""Oracle with hard avoidance of degraded devices: the stutter-matched reference (issue 10)."""

from __future__ import annotations

import numpy as np

from e3.policies.base import register
from e3.policies.oracle import Oracle
from e3.sim import backlog


@register
class OracleAvoid(Oracle):
    """The Oracle (paper section 2.3, Eq. 5) barred from devices in a hidden degraded state while a
    non-degraded device of the task's kind is feasible; when every feasible device is degraded it
    routes anyway, as the Oracle does.

    It sees the hidden semantic state (Eq. 3's stutter source) through the OracleView, so it is
    the best zero-stutter policy of this information model: the reference for E3-Agent's hard
    avoidance (section 3.3), which the plain Oracle, free to stutter, is not. The paper does not
    say which of the two its Oracle is; Table 5 reports the gap to both.

    Parameter ``soft_penalty_ms`` (default None: the hard bar above): a number lifts the bar and
    adds that penalty to a degraded device's expected completion instead, the Oracle given the
    same soft risk penalty as ``e3`` with ``hard_avoidance: false`` (the operating-point study's
    latency-stutter frontier).
    """

    name = "oracle_avoid"
    parameters = {"soft_penalty_ms": None}
    test_config = {"soft_penalty_ms": 30000.0}

    def choose(self, task, obs):
        self.decisions += 1
        o = self._oracle
        feas = obs.feasible(task.kind)
        pen = self.params["soft_penalty_ms"]
        if len(feas) >= backlog.VECTOR_MIN_DEVICES:  # the loops below over arrays, bit for bit
            scores, available, degraded, devices = o.completion_ms(task)
            if pen is None:
                healthy = available & ~degraded
                s = np.where(healthy if healthy.any() else available, scores, np.inf)
            else:
                s = np.where(available, scores + pen * degraded, np.inf)
            return devices[int(np.argmin(s))].name
        if pen is None:
            cands = [d for d in feas if not o.degraded(d.name)] or feas
            best = min(cands, key=lambda d: o.true_backlog_ms(d.name) + o.expected_service_ms(d.name, task))
        else:
            best = min(feas, key=lambda d: o.true_backlog_ms(d.name) + o.expected_service_ms(d.name, task)
                       + pen * o.degraded(d.name))
        return best.name
