"""Scenarios of the fairness system (``config/fairness/NAME.yaml``) and the request stream.

Arrivals (spec "To invent"): one Poisson process per (ingress node, model) with a rate that is
piecewise constant: ``total * mix[m] / n_nodes * epoch_rate_factors[epoch] * burst factors``.
Each process has its own seeded stream (from the replicate seed only: every policy faces the same
requests), and the memoryless property makes restarting at every breakpoint exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e3.config import REPO_ROOT, load_schema, read_yaml, validate
from e3.errors import ConfigError
from e3.fairness.engine import RequestView
from e3.fairness.system import System
from e3.scenario_files import ScenarioFolder
from e3.seeds import stream

SCENARIO_DIR = REPO_ROOT / "config" / "fairness"


@dataclass(frozen=True)
class FairnessScenario:
    """A validated scenario.

    Attributes:
        name: scenario name; mix: model -> share (sums to 1).
        epoch_rate_factors: total-rate multiplier per epoch.
        bursts: dicts ``{start_s, duration_s, factor, models?, ingress?}``.
        raw: the file's content (for the run summary hash).
    """

    name: str
    mix: dict[str, float]
    epoch_rate_factors: tuple[float, ...]
    bursts: tuple[dict[str, Any], ...]
    raw: dict[str, Any]


#: the fairness system's scenario files (one home for the helpers: e3.scenario_files)
SCENARIOS = ScenarioFolder(SCENARIO_DIR, "fairness")
scenario_path = SCENARIOS.path
available_scenarios = SCENARIOS.names
is_fairness_scenario = SCENARIOS.holds


def load_scenario(name_or_path: str | Path, system: System) -> FairnessScenario:
    """Read and validate a scenario against the schema and the system's models and nodes.

    Raises:
        ConfigError: missing file, schema violation, unknown model or node, a model without a
            share or with a share of 0.
    """
    path = scenario_path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{path}: fairness scenario not found; available: {available_scenarios()}")
    raw = validate(read_yaml(path), load_schema("fairness_scenario.schema.yaml"), path)
    unknown = sorted(set(raw["mix"]) - set(system.models))
    if unknown:
        raise ConfigError(f"{path}: field 'mix': unknown models {unknown}; known: {list(system.models)}")
    # Every model is served and measured: a model without requests has no latency, and Jain's
    # index and the per-model tables would be NaN after the whole run (issue 33, defect 10).
    missing = [m for m in system.models if m not in raw["mix"]]
    if missing:
        raise ConfigError(f"{path}: field 'mix': no share for models {missing}; give every model of "
                          f"fairness.models a share > 0 (known: {list(system.models)})")
    zero = [m for m, v in raw["mix"].items() if not v > 0]
    if zero:
        raise ConfigError(f"{path}: field 'mix.{zero[0]}': share {raw['mix'][zero[0]]!r}; every model needs a "
                          "share > 0 (a model with no requests has no latency to be fair about)")
    tot = sum(raw["mix"].values())
    if tot <= 0:
        raise ConfigError(f"{path}: field 'mix': shares sum to {tot}; need > 0")
    mix = {m: raw["mix"].get(m, 0.0) / tot for m in system.models}
    for i, b in enumerate(raw.get("bursts", [])):
        for m in b.get("models", []):
            if m not in system.models:
                raise ConfigError(f"{path}: field 'bursts.{i}.models': unknown model {m!r}")
        for n in b.get("ingress", []):
            if n not in system.node_names:
                raise ConfigError(f"{path}: field 'bursts.{i}.ingress': unknown node {n!r}; known: {system.node_names}")
    return FairnessScenario(raw["name"], mix, tuple(raw["epoch_rate_factors"]), tuple(raw.get("bursts", [])), raw)


def rate_per_s(sc: FairnessScenario, total_per_s: float, n_nodes: int, ingress: str, model: str, t_s: float,
               epoch_s: float) -> float:
    """Arrival rate of (ingress, model) at time ``t_s`` (req/s)."""
    f = sc.epoch_rate_factors[int(t_s // epoch_s) % len(sc.epoch_rate_factors)]
    r = total_per_s * sc.mix[model] / n_nodes * f
    for b in sc.bursts:
        if b["start_s"] <= t_s < b["start_s"] + b["duration_s"] and model in b.get("models", [model]) \
                and ingress in b.get("ingress", [ingress]):
            r *= b["factor"]
    return r


def generate_requests(sc: FairnessScenario, system: System, total_per_s: float, horizon_s: float, epoch_s: float,
                      seed: int) -> list[RequestView]:
    """All requests of one replicate, in arrival order (ids 0..N-1).

    Ties in time are broken by (ingress, model) order, so the stream is a pure function of its
    inputs and the seed.
    """
    nodes = system.node_names
    cuts = {0.0, float(horizon_s)}
    k = 1
    while k * epoch_s < horizon_s:
        cuts.add(k * epoch_s)
        k += 1
    for b in sc.bursts:
        cuts.update(x for x in (float(b["start_s"]), float(b["start_s"] + b["duration_s"])) if x < horizon_s)
    cuts_l = sorted(cuts)
    raw: list[tuple[float, int, int, int, int]] = []
    for ni, ing in enumerate(nodes):
        for mi, m in enumerate(system.models):
            info = system.models[m]
            rng = stream(seed, "fairness", "arrivals", ing, m)
            for a, b in zip(cuts_l[:-1], cuts_l[1:], strict=True):
                lam = rate_per_s(sc, total_per_s, len(nodes), ing, m, a, epoch_s)
                if lam <= 0:
                    continue
                t = a + rng.expovariate(lam)
                while t < b:
                    li = rng.choice(info.input_token_bins) if info.input_token_bins else 0
                    lo = rng.choice(info.output_token_bins) if info.output_token_bins else 0
                    raw.append((t, ni, mi, li, lo))
                    t += rng.expovariate(lam)
    raw.sort()
    models = list(system.models)
    out = []
    for i, (t, ni, mi, li, lo) in enumerate(raw):
        info = system.models[models[mi]]
        lo = info.caption_tokens if info.modality == "image_to_text" else lo
        out.append(RequestView(i, models[mi], nodes[ni], li, lo, info.in_bytes, info.out_bytes, 1000.0 * t))
    return out
