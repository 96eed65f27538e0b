"""An OPM variant: recursive least squares with a forgetting factor (no refit schedule needed).

For an LLM device, Eq. 1's coefficients ``theta = (alpha, beta)`` are updated after every
completed task by exponentially weighted RLS (forgetting factor ``lam``; e.g. S. Haykin,
*Adaptive Filter Theory*, ch. 10), on features scaled to (L_in / 1000, L_out / 100) for
conditioning, and clipped at 0. For an SDXL device ``c`` is the exponentially forgotten mean of
the observed service times (the scalar case of the same recursion). Predictions therefore track
drift continuously; ``refit`` (the control tool) only recomputes the uncertainty.
"""

from __future__ import annotations

import math

import numpy as np

from e3.agent.opm import OnlinePerformanceModel
from e3.sim.observation import CompletedTask

_SCALE = np.array([1000.0, 100.0])


class RLSPerformanceModel(OnlinePerformanceModel):
    """:class:`OnlinePerformanceModel` with RLS (forgetting factor ``lam`` in (0, 1]) updates.

    Args:
        lam: forgetting factor; the effective memory is about ``1 / (1 - lam)`` tasks.
        p0: initial covariance scale (large: the prior's coefficients are a weak start).
    """

    def __init__(self, pool, window_tasks=30, smoothing=0.3, min_samples=2, lam: float = 0.95,
                 p0: float = 1e4) -> None:
        super().__init__(pool, window_tasks, smoothing, min_samples)
        if not 0 < lam <= 1:
            raise ValueError(f"RLS forgetting factor lam must be in (0, 1], got {lam}")
        self.lam = lam
        self._theta = {d: np.array([e.alpha, e.beta]) * _SCALE for d, e in self.est.items() if e.kind == "llm"}
        self._P = {d: np.eye(2) * p0 for d in self._theta}
        self._sq = {d: 0.0 for d in self.est}   # forgotten mean of squared relative residuals
        self._w = {d: 0.0 for d in self.est}

    def observe(self, rec: CompletedTask) -> None:
        super().observe(rec)
        d, e, lam = rec.device, self.est[rec.device], self.lam
        y = rec.service_ms / e.calibration
        if e.kind == "llm":
            x = np.array([rec.task.input_tokens, rec.task.output_tokens]) / _SCALE
            P, th = self._P[d], self._theta[d]
            pred = float(x @ th)
            k = P @ x / (lam + x @ P @ x)
            th = np.maximum(th + k * (y - pred), 0.0)
            self._P[d] = (P - np.outer(k, x @ P)) / lam
            self._theta[d] = th
            e.alpha, e.beta = float(th[0] / _SCALE[0]), float(th[1] / _SCALE[1])
        else:
            pred = e.c
            e.c = lam * e.c + (1 - lam) * y
        rel = (y - pred) / max(y, 1e-9)
        self._sq[d] = lam * self._sq[d] + rel * rel
        self._w[d] = lam * self._w[d] + 1.0
        e.uncertainty = min(1.0, math.sqrt(1.0 / (1 + e.n_total) + self._sq[d] / self._w[d]))
        e.refits += 1

    def refit(self, device: str, min_samples: int | None = None, window: int | None = None) -> bool:
        """RLS is always current; a requested refit changes nothing and reports so."""
        return False
