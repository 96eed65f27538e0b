"""Hidden ground truth: the true, time-varying service-time parameters of each device.

Eq. 1 (LLM): ``service_ms = alpha_d(t) * L_in + beta_d(t) * L_out``; Eq. 2 (SDXL):
``service_ms = c_d(t)``. The true parameters depart from the MLPerf priors by a configurable
per-device mismatch (explicit factors times a seeded log-normal jitter), are multiplied by the
active hidden semantic slowdowns and drift steps, and each task's realised service time carries a
mean-one log-normal noise factor.

Only the simulation engine and the Oracle (through :class:`OracleView`) ever hold a
:class:`GroundTruth`. Policies, the OPM and the meta-controller receive
:class:`e3.sim.observation.Observation` objects, which hold no reference to it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from e3.service_model import service_ms
from e3.sim.devices import DevicePrior
from e3.sim.workload import TaskView


@dataclass(frozen=True)
class TruthSpec:
    """How the hidden truth departs from the priors (config ``truth``).

    Attributes:
        mismatch: device -> {"alpha": f, "beta": f} (LLM) or {"c": f} (SDXL): multiplicative
            factors applied to the priors; missing entries mean 1.
        mismatch_sigma: std of a seeded log-normal jitter on every factor (0 disables).
        noise_sigma: std of the per-task log-normal service noise (mean one; 0 disables).
    """

    mismatch: dict[str, dict[str, float]] = field(default_factory=dict)
    mismatch_sigma: float = 0.0
    noise_sigma: float = 0.0


class GroundTruth:
    """True device parameters and hidden state. Engine and Oracle only.

    Args:
        pool: the devices with their priors.
        spec: mismatch and noise settings.
        rng: stream for the mismatch jitter (derived from the replicate seed, not the policy).
    """

    def __init__(self, pool: list[DevicePrior], spec: TruthSpec, rng: random.Random) -> None:
        self.kinds = {d.name: d.kind for d in pool}
        self.base: dict[str, dict[str, float]] = {}
        for d in pool:
            f = spec.mismatch.get(d.name, {})

            def jitter() -> float:
                return math.exp(rng.gauss(0.0, spec.mismatch_sigma)) if spec.mismatch_sigma > 0 else 1.0

            if d.kind == "llm":
                self.base[d.name] = {"alpha": d.alpha_prior_ms_per_token * f.get("alpha", 1.0) * jitter(),
                                     "beta": d.beta_prior_ms_per_token * f.get("beta", 1.0) * jitter()}
            else:
                self.base[d.name] = {"c": d.c_prior_ms * f.get("c", 1.0) * jitter()}
        # (kind, alpha, beta, c) per device: the arguments of Eq. 1 / Eq. 2, looked up once per task.
        self._eq = {n: (self.kinds[n], b.get("alpha", 0.0), b.get("beta", 0.0), b.get("c", 0.0))
                    for n, b in self.base.items()}
        self.semantic_factor = {n: 1.0 for n in self.kinds}
        self.drift_factor = {n: 1.0 for n in self.kinds}
        self.noise_sigma = spec.noise_sigma
        # Sets that receive every device whose factors change (e3.sim.backlog.TrueBacklog).
        self._change_sinks: list[set[str]] = []

    def set_semantic_factor(self, device: str, factor: float) -> None:
        """Set ``device``'s hidden semantic slowdown (1.0 = none); the engine's scenario events."""
        self.semantic_factor[device] = factor
        for sink in self._change_sinks:
            sink.add(device)

    def set_drift_factor(self, device: str, factor: float) -> None:
        """Set ``device``'s hidden drift step (1.0 = none); the engine's scenario events."""
        self.drift_factor[device] = factor
        for sink in self._change_sinks:
            sink.add(device)

    def _subscribe_changed(self) -> set[str]:
        """A new set that receives the name of every device whose factors change from now on
        (the subscriber empties it as it consumes it); kernel-internal."""
        sink: set[str] = set()
        self._change_sinks.append(sink)
        return sink

    def degraded(self, device: str) -> bool:
        """Whether ``device`` is in a hidden semantic degraded state now (Eq. 3 stutter source)."""
        return self.semantic_factor[device] > 1.0

    def params(self, device: str) -> dict[str, float]:
        """Current true parameters (ms/token for alpha/beta, ms for c)."""
        m = self.semantic_factor[device] * self.drift_factor[device]
        return {k: v * m for k, v in self.base[device].items()}

    def expected_service_ms(self, device: str, task: TaskView) -> float:
        """Noise-free service time of ``task`` on ``device`` under the current parameters (ms)."""
        kind, alpha, beta, c = self._eq[device]
        m = self.semantic_factor[device] * self.drift_factor[device]
        return m * service_ms(kind, alpha, beta, c, task.input_tokens, task.output_tokens)

    def noise_factor(self, rng: random.Random) -> float:
        """One mean-one log-normal noise draw (1.0 when noise is off)."""
        s = self.noise_sigma
        return math.exp(rng.gauss(-0.5 * s * s, s)) if s > 0 else 1.0


class OracleView:
    """What the online full-information Oracle may see: true current parameters, hidden states
    and true backlogs; never future arrivals (paper Table 1, "Oracle-only information").

    Args:
        truth: the hidden ground truth.
        true_backlog_ms: callable(device) -> true remaining work on the device now (ms).
        arrays_factory: zero-argument callable building the run's
            :class:`e3.sim.backlog.TrueBacklog`, called at the first :meth:`completion_ms` (large
            pools only), so small pools never pay for its bookkeeping.
    """

    __slots__ = ("_truth", "_true_backlog_ms", "_arrays_factory", "_arrays")

    def __init__(self, truth: GroundTruth, true_backlog_ms, arrays_factory=None) -> None:
        self._truth = truth
        self._true_backlog_ms = true_backlog_ms
        self._arrays_factory = arrays_factory
        self._arrays = None

    def completion_ms(self, task: TaskView):
        """True backlog plus true expected service of ``task`` on every device of its kind, as
        arrays (:meth:`e3.sim.backlog.TrueBacklog.completion_ms`: scores, availability, hidden
        degraded state, the devices in pool order); element ``i`` equals
        ``true_backlog_ms(d) + expected_service_ms(d, task)`` bit for bit.

        Raises:
            E3Error: the engine gave this view no arrays (a view built without a factory).
        """
        if self._arrays is None:
            if self._arrays_factory is None:
                from e3.errors import E3Error

                raise E3Error("this OracleView has no vectorised backlog (no arrays_factory)")
            self._arrays = self._arrays_factory()
        return self._arrays.completion_ms(task)

    def expected_service_ms(self, device: str, task: TaskView) -> float:
        """Noise-free true service time of ``task`` on ``device`` now (ms)."""
        return self._truth.expected_service_ms(device, task)

    def true_backlog_ms(self, device: str) -> float:
        """True remaining work on ``device`` now: rest of the running task plus queued tasks (ms)."""
        return self._true_backlog_ms(device)

    def degraded(self, device: str) -> bool:
        """Hidden degraded state of ``device`` now."""
        return self._truth.degraded(device)
