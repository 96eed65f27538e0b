"""Small builders shared by the simulator tests, and walkers of nested config documents shared by
the property tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from e3.mlperf.pool import DevicePrior
from e3.policies.base import get_policy
from e3.sim.engine import Simulation
from e3.sim.scenario import Scenario
from e3.sim.truth import TruthSpec
from e3.sim.workload import WorkloadSpec


def one_device_sim(tmp: Path, service_ms: float, rate_per_s: float, n: int, arrivals: str = "fixed",
                   seed: int = 0) -> pd.DataFrame:
    """Run a single SDXL device with deterministic service ``service_ms``; return the trace."""
    pool = [DevicePrior("SD#0", "sdxl", "test", "v0", c_prior_ms=service_ms)]
    wl = WorkloadSpec(rate_per_s, arrivals, "sdxl")
    trace = tmp / f"t{seed}.parquet"
    Simulation(pool, Scenario("static", "test"), wl, TruthSpec(), get_policy("round_robin"), {},
               seed, n, trace).run()
    return pd.read_parquet(trace)


def scenarios_with_inputs() -> list[str]:
    """The shipped scenarios whose inputs are present: every plain scenario, and the trace
    scenarios whose trace file has been fetched (`snakemake fetch_traces`; a lone clone has none).
    tests/test_trace_workload.py runs the trace scenarios from the mirror instead."""
    from e3.config import REPO_ROOT, read_yaml
    from e3.sim.scenario import available_scenarios, scenario_path

    out = []
    for name in available_scenarios():
        trace = ((read_yaml(scenario_path(name)) or {}).get("workload") or {}).get("trace") or {}
        if not trace.get("path") or (REPO_ROOT / trace["path"]).is_file() or Path(trace["path"]).is_file():
            out.append(name)
    return out


def leaves(doc, skip=(), prefix=()):
    """(path, value) of every scalar leaf of a nested dict/list document, in document order; a
    path in ``skip`` (a tuple of keys) is not entered."""
    if prefix in skip:
        return
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from leaves(v, skip, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from leaves(v, skip, (*prefix, i))
    else:
        yield prefix, doc


def set_path(doc, path, value):
    """Set the leaf at ``path`` (keys and indices) of a nested document."""
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value
