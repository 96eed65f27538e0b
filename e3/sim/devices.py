"""The kernel's device record: one pool device with the offline priors the simulator starts from.

Built by :func:`e3.mlperf.pool.resolve_pool` (a named pool) or :func:`e3.mlperf.pool.generate_pool`
(a generated one); the kernel (truth, engine, load) reads it and never imports the MLPerf layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from e3.service_model import service_ms


@dataclass(frozen=True)
class DevicePrior:
    """One pool device with its offline priors (paper section 4.1).

    Attributes:
        name: pool label used everywhere in e3 (``"LLM#0"``).
        kind: ``"llm"`` or ``"sdxl"``: the task kind the device serves.
        system: MLPerf system name of the matched record.
        round: MLPerf round of the matched record.
        alpha_prior_ms_per_token: LLM only: ``ttft_ms_p99 / reference_input_tokens`` (Eq. 1 alpha).
        beta_prior_ms_per_token: LLM only: ``tpot_ms_p99`` (Eq. 1 beta).
        c_prior_ms: SDXL only: ``latency_ms_p99`` (Eq. 2 c).
        record_key: the matched record's identifying fields, for provenance.
    """

    name: str
    kind: str
    system: str
    round: str
    alpha_prior_ms_per_token: float = 0.0
    beta_prior_ms_per_token: float = 0.0
    c_prior_ms: float = 0.0
    record_key: tuple = ()

    def prior_service_ms(self, input_tokens: int = 0, output_tokens: int = 0) -> float:
        """Service time predicted by the priors: Eq. 1 for LLM, Eq. 2 for SDXL (ms)."""
        return service_ms(self.kind, self.alpha_prior_ms_per_token, self.beta_prior_ms_per_token, self.c_prior_ms,
                          input_tokens, output_tokens)
