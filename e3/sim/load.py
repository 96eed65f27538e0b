"""Offered load of a trace workload on a device pool (rho), and the time scale that targets one.

For task kind k (``llm``, ``sdxl``) with arrival rate lambda_k and devices d of that kind with
nominal mean service time E[S_d] (Eq. 1 with the window's mean token counts for LLM, Eq. 2 for
SDXL), ``rho_k = lambda_k / sum_d (1 / E[S_d])``: the utilisation every device of the kind would
have if the load were spread in proportion to speed. ``rho_pool = max_k rho_k`` (the bottleneck
kind). "Nominal" is the priors times the configured ``truth.mismatch`` factors, without the seeded
jitter, the per-task noise (mean one) or any scenario event, so the figure is the same for every
seed and policy. It is the experimenter's yardstick for the load, never shown to a policy.

Since every arrival rate scales as ``1 / time_scale``, the scale that puts the pool at a target
``rho`` is ``rho_pool(time_scale=1) / target`` (closed form).
"""

from __future__ import annotations

import math
from typing import Any

from e3.errors import ConfigError
from e3.mlperf.pool import DevicePrior
from e3.sim.truth import TruthSpec
from e3.workload.readers import RequestTrace


def nominal_service_ms(d: DevicePrior, truth: TruthSpec, input_tokens: float, output_tokens: float) -> float:
    """Nominal true mean service time of ``d`` (ms): priors times the mismatch factors."""
    f = truth.mismatch.get(d.name, {})
    if d.kind == "llm":
        return (d.alpha_prior_ms_per_token * f.get("alpha", 1.0) * input_tokens
                + d.beta_prior_ms_per_token * f.get("beta", 1.0) * output_tokens)
    return d.c_prior_ms * f.get("c", 1.0)


def offered_load(requests: RequestTrace, span_s: float, time_scale: float, sdxl_fraction: float,
                 pool: list[DevicePrior], truth: TruthSpec) -> dict[str, Any]:
    """Offered load of a trace window on ``pool`` (see the module docstring).

    Args:
        requests: the window's requests (:meth:`RequestTrace.window`).
        span_s: the window's length in trace seconds.
        time_scale: simulated ms per trace ms.
        sdxl_fraction: expected share of arrivals that are SDXL tasks.
        pool: the devices.
        truth: mismatch factors (jitter and noise are ignored).

    Returns:
        ``{"rho_pool", "rho_by_kind": {kind: rho}, "arrival_rate_per_s": {kind: tasks/s}}``
        (simulated seconds; ``rho_pool`` is None when the window is empty or has zero length).

    Raises:
        ConfigError: a kind with arrivals has no device in the pool.
    """
    n = len(requests)
    if n == 0 or span_s <= 0:
        return {"rho_pool": None, "rho_by_kind": {}, "arrival_rate_per_s": {}}
    sim_span_s = span_s * time_scale
    share = {"llm": 1.0 - sdxl_fraction, "sdxl": sdxl_fraction}
    mean_in, mean_out = float(requests.input_tokens.mean()), float(requests.output_tokens.mean())
    rho: dict[str, float] = {}
    rate: dict[str, float] = {}
    for kind, s in share.items():
        if s <= 0:
            continue
        devs = [d for d in pool if d.kind == kind]
        if not devs:
            raise ConfigError(f"workload.trace: {100 * s:.0f} % of arrivals are {kind} tasks but the pool "
                              f"has no {kind} device")
        capacity_per_s = sum(1000.0 / nominal_service_ms(d, truth, mean_in, mean_out) for d in devs)
        rate[kind] = s * n / sim_span_s
        rho[kind] = rate[kind] / capacity_per_s
    return {"rho_pool": max(rho.values()), "rho_by_kind": rho, "arrival_rate_per_s": rate}


def time_scale_for(target_rho_pool: float, requests: RequestTrace, span_s: float, sdxl_fraction: float,
                   pool: list[DevicePrior], truth: TruthSpec) -> float:
    """The time scale at which the window's ``rho_pool`` equals ``target_rho_pool``.

    Raises:
        ConfigError: empty window or zero span (no load to scale).
    """
    rho1 = offered_load(requests, span_s, 1.0, sdxl_fraction, pool, truth)["rho_pool"]
    if rho1 is None or not math.isfinite(rho1) or rho1 <= 0:
        raise ConfigError("workload.trace.time_scale: 'auto' needs a trace window with at least two "
                          f"requests over a positive span (got {len(requests)} requests over {span_s} s)")
    return rho1 / target_rho_pool
