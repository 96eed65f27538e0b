# workflow/examples/plugins/jsq2_serving.py: docs/policies.md's example fairness plugin

from e3.fairness.policies import FairnessPolicy, register


@register
class PowerOfTwoServing(FairnessPolicy):
    """The best static deployment; each request goes to the shorter queue of two active pods
    drawn at random (Mitzenmacher 2001)."""

    name = "jsq2_serving"
    deployment = "best_static"  # the fixed plan the routing baselines share (feasible)

    def route(self, request, obs):  # obs: ServingObservation (telemetry only)
        self.decisions += 1
        active = obs.active_pods(request.model)
        if not active:
            return None

        def jobs(node):  # queued plus in service
            pod = obs.pods[(node, request.model)]
            return pod.queue_length + pod.busy

        picks = self.rng.sample(active, min(2, len(active)))
        return min(picks, key=lambda n: (jobs(n), n))
