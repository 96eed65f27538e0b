# workflow/examples/plugins/worst_fit.py: docs/policies.md's example placement plugin

from e3.placement.policies import PlacementPolicy, register


@register
class WorstFit(PlacementPolicy):
    """The server with the most residual capacity after placement, owner's region first
    (the classic worst-fit bin-packing rule)."""

    name = "worst_fit"

    def _choose(self, a, ok, used, access):
        def residual(s):
            return sum((c - u - n) / c for u, n, c in zip(used[s], self.ev.demand[a], self.ev.capacity[s], strict=True))

        return max(self._region_first(a, ok, access), key=lambda s: (residual(s), -s))
