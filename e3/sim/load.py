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
"""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any

from e3.mlperf.pool import DevicePrior
from e3.sim.scenario import Scenario
from e3.sim.truth import TruthSpec
from e3.sim.workload import WorkloadSpec

#: rho_safe at or below this leaves the non-degraded devices stable with headroom (issue 10's rule
#: for the `semantic_stable` scenario).
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
