"""Fixed-Heuristic: SECT on the offline MLPerf priors only (paper section 4.1)."""

from __future__ import annotations

from e3.policies.base import Policy, register


@register
class FixedHeuristic(Policy):
    """Shortest Expected Completion Time with service times predicted by the priors alone
    (Eq. 1 with alpha/beta priors, Eq. 2 with c prior): no online calibration, no risk control.

    score_d = backlog_d + prior_service_d, where the backlog is estimated with the same priors."""

    name = "fixed_heuristic"

    def _predict(self, device: str, task) -> float:
        return self.priors[device].prior_service_ms(task.input_tokens, task.output_tokens)

    def choose(self, task, obs):
        self.decisions += 1
        pr = self.priors

        def score(d):  # = obs.backlog_ms(d, self._predict) + self._predict(d.name, task); 1.0 * x == x
            p = pr[d.name]
            return obs.expected_completion_ms(d, task, 1.0, p.kind, p.alpha_prior_ms_per_token,
                                              p.beta_prior_ms_per_token, p.c_prior_ms)

        return min(obs.feasible(task.kind), key=score).name
