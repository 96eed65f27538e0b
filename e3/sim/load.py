"""Offered load of a scenario: utilisations that say whether a semantic window can be ridden out.

For a task kind k with arrival rate ``lambda_k`` (tasks/s) and devices of expected service times
``E[S_d]`` (ms; Eq. 1 at the mean token counts of the workload's bins for LLM devices, Eq. 2 for
SDXL), a kind's load spread ideally over a set D of devices gives the utilisation

    rho(D) = lambda_k / sum_{d in D} (1000 / E[S_d])

* ``rho_pool``: D = every device of the kind, degraded ones at their slowed rate (the pool as a
  whole can keep up when rho_pool < 1);
* ``rho_safe``: D = the kind's devices in no semantic window (hard avoidance: the non-degraded
  devices carry the kind's whole load). rho_safe > 1 means any zero-stutter policy, the Oracle
  barred from degraded devices included, builds a queue for the whole window (issue 10).

Inputs are the true base parameters (a :class:`e3.sim.truth.GroundTruth`'s ``base``, or the
config's mismatch factors at median jitter from :func:`median_base`), so these are analysis
numbers, never seen by a policy.

Trace workloads (issue 12): for task kind k (``llm``, ``sdxl``) with arrival rate lambda_k and devices d of that kind with
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
from statistics import fmean
from typing import TYPE_CHECKING, Any

from e3.errors import ConfigError
from e3.sim.devices import DevicePrior
from e3.sim.scenario import Scenario
from e3.sim.truth import TruthSpec
from e3.sim.workload import WorkloadSpec

if TYPE_CHECKING:  # pandas-backed; only trace workloads read it
    from e3.workload.readers import RequestTrace

#: rho_safe at or below this leaves the non-degraded devices stable with headroom (issue 10's rule
#: for the `semantic` scenario).
RHO_SAFE_STABLE = 0.85


def median_base(pool: list[DevicePrior], spec: TruthSpec) -> dict[str, dict[str, float]]:
    """True base parameters at the config's mismatch factors with the jitter at its median (1):
    device -> {"alpha", "beta"} (ms/token) or {"c"} (ms)."""
    out = {}
    for d in pool:
        f = spec.mismatch.get(d.name, {})
        if d.kind == "llm":
            out[d.name] = {"alpha": d.alpha_prior_ms_per_token * f.get("alpha", 1.0),
                           "beta": d.beta_prior_ms_per_token * f.get("beta", 1.0)}
        else:
            out[d.name] = {"c": d.c_prior_ms * f.get("c", 1.0)}
    return out


def expected_service_ms(params: dict[str, float], workload: WorkloadSpec) -> float:
    """Mean service time (ms) of a task on a device with ``params`` under ``workload`` (tokens
    drawn uniformly from the bins; noise has mean one)."""
    if "c" in params:
        return params["c"]
    return params["alpha"] * fmean(workload.input_token_bins) + params["beta"] * fmean(workload.output_token_bins)


def kind_rates_per_s(workload: WorkloadSpec) -> dict[str, float]:
    """Arrival rate of each task kind (tasks/s)."""
    if workload.mix == "alternate":
        return {"llm": workload.arrival_rate_per_s / 2, "sdxl": workload.arrival_rate_per_s / 2}
    return {workload.mix: workload.arrival_rate_per_s}


def utilisation(rate_per_s: float, service_ms: list[float]) -> float:
    """``rate / sum(1000 / E[S])``; inf for no device."""
    cap = sum(1000.0 / s for s in service_ms)
    return rate_per_s / cap if cap > 0 else math.inf


def scenario_loads(pool: list[DevicePrior], base: dict[str, dict[str, float]], workload: WorkloadSpec,
                   scenario: Scenario) -> dict[str, Any]:
    """``rho_pool`` per kind with no event, and per semantic window of ``scenario``: its device,
    kind, interval, ``rho_pool`` and ``rho_safe`` of that kind (every window overlapping it counts
    as degrading its device, at its slowdown)."""
    kinds = {d.name: d.kind for d in pool}
    svc = {d.name: expected_service_ms(base[d.name], workload) for d in pool}
    rates = kind_rates_per_s(workload)
    static = {k: utilisation(r, [svc[d] for d in kinds if kinds[d] == k]) for k, r in rates.items()}
    windows = []
    for w in scenario.semantic:
        k = kinds[w.device]
        slow = {v.device: v.slowdown for v in scenario.semantic
                if kinds[v.device] == k and v.start_task < w.end_task and w.start_task < v.end_task}
        devs = [d for d in kinds if kinds[d] == k]
        windows.append({"device": w.device, "label": w.label, "kind": k, "start_task": w.start_task,
                        "end_task": w.end_task,
                        "rho_pool": utilisation(rates.get(k, 0.0), [svc[d] * slow.get(d, 1.0) for d in devs]),
                        "rho_safe": utilisation(rates.get(k, 0.0), [svc[d] for d in devs if d not in slow])})
    return {"rho_pool_static": static, "semantic_windows": windows}


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
