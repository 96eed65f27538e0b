"""Resolve a configured device pool against the priors records, and derive Eq. 1/Eq. 2 priors.

A pool entry names a system loosely (``"Jetson Thor"``); every whitespace-separated word must
appear, case-insensitively, in the record's system name, platform or accelerator. Exactly one
record must match (after the optional ``round``/``division``/``submitter`` filters); zero or
several is an error that lists the candidates.
"""

from __future__ import annotations

from typing import Any

from e3.errors import ConfigError
from e3.mlperf.rounds import BENCHMARKS
from e3.sim.devices import DevicePrior


def _label(r: dict[str, Any]) -> str:
    return f"{r['system']!r} ({r['round']} {r['division']}, {r['submitter']}, {r['scenario']})"


def match_record(records: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
    """Return the single record matching a pool entry.

    Args:
        records: priors records (see :mod:`e3.mlperf.priors`).
        entry: ``{"name", "system", "benchmark", "scenario"?, "round"?, "division"?, "submitter"?}``.

    Raises:
        ConfigError: no record or several records match; the message lists the candidates.
    """
    bench = entry["benchmark"]
    if bench not in BENCHMARKS:
        raise ConfigError(f"pool entry {entry.get('name')!r}: field 'benchmark': unknown benchmark {bench!r}; known: {sorted(BENCHMARKS)}")
    scenario = entry.get("scenario", "SingleStream")
    pool = [r for r in records if r["benchmark"] == bench and r["scenario"] == scenario]
    for f in ("round", "division", "submitter"):
        if entry.get(f):
            pool = [r for r in pool if str(r[f]).lower() == str(entry[f]).lower()]
    words = str(entry["system"]).lower().split()
    hits = [r for r in pool if all(w in f"{r['system']} {r['platform']} {r['accelerator'] or ''}".lower() for w in words)]
    if len(hits) == 1:
        return hits[0]
    cands = hits if hits else pool
    listing = "\n  ".join(_label(r) for r in cands) or "(none)"
    what = "matches no record" if not hits else f"matches {len(hits)} records; add 'round' or 'division' to pick one"
    raise ConfigError(f"pool entry {entry.get('name')!r}: system {entry['system']!r} {what} "
                      f"for {bench} {scenario}. Candidates:\n  {listing}")


def resolve_pool(records: list[dict[str, Any]], pool_cfg: list[dict[str, Any]],
                 reference_input_tokens: float) -> list[DevicePrior]:
    """Resolve every pool entry to a :class:`DevicePrior`.

    Args:
        records: priors records.
        pool_cfg: the config's ``pool`` list.
        reference_input_tokens: the input length that turns ``ttft_ms_p99`` into a per-token
            alpha (a documented choice, see docs/choices.md).

    Raises:
        ConfigError: a duplicate device name, an entry that is not SingleStream (Offline records
            have no latencies), or an entry that does not match exactly one record.
    """
    names = [e["name"] for e in pool_cfg]
    if len(set(names)) != len(names):
        raise ConfigError(f"pool: duplicate device names in {names}")
    out = []
    for e in pool_cfg:
        if e.get("scenario", "SingleStream") != "SingleStream":
            raise ConfigError(f"pool entry {e['name']!r}: field 'scenario': {e['scenario']!r}: the simulator's "
                              "Eq. 1/Eq. 2 priors are SingleStream latencies; use SingleStream")
        r = match_record(records, e)
        m = r["metrics"]
        key = (r["round"], r["division"], r["submitter"], r["system"], r["benchmark"], r["scenario"])
        if r["task_kind"] == "llm":
            out.append(DevicePrior(e["name"], "llm", r["system"], r["round"],
                                   alpha_prior_ms_per_token=m["ttft_ms_p99"] / reference_input_tokens,
                                   beta_prior_ms_per_token=m["tpot_ms_p99"], record_key=key))
        else:
            out.append(DevicePrior(e["name"], "sdxl", r["system"], r["round"],
                                   c_prior_ms=m["latency_ms_p99"], record_key=key))
    return out


def generator_records(records: list[dict[str, Any]], benchmark: str, scenario: str = "SingleStream") -> list[dict[str, Any]]:
    """Every priors record of ``benchmark`` in ``scenario``, in a fixed order (round, system).

    These are all the MLPerf edge systems that ran the benchmark, not only the paper's four.

    Raises:
        ConfigError: no record of that benchmark and scenario.
    """
    hits = sorted((r for r in records if r["benchmark"] == benchmark and r["scenario"] == scenario),
                  key=lambda r: (r["round"], r["division"], r["submitter"], r["system"]))
    if not hits:
        raise ConfigError(f"pool_generator: no priors record of {benchmark} {scenario} to draw devices from")
    return hits


def _prior_from_record(name: str, r: dict[str, Any], reference_input_tokens: float, speed: float) -> DevicePrior:
    m = r["metrics"]
    key = (r["round"], r["division"], r["submitter"], r["system"], r["benchmark"], r["scenario"])
    if r["task_kind"] == "llm":
        return DevicePrior(name, "llm", r["system"], r["round"],
                           alpha_prior_ms_per_token=speed * m["ttft_ms_p99"] / reference_input_tokens,
                           beta_prior_ms_per_token=speed * m["tpot_ms_p99"], record_key=key)
    return DevicePrior(name, "sdxl", r["system"], r["round"], c_prior_ms=speed * m["latency_ms_p99"], record_key=key)


def generate_pool(records: list[dict[str, Any]], gen: dict[str, Any], reference_input_tokens: float) -> list[DevicePrior]:
    """A generated pool of ``gen["devices"]`` devices drawn from the priors (issue 11, edge scale).

    Rule: ``round(devices * llm_fraction)`` LLM devices (at least one of each kind), named
    ``LLM#0..`` and ``SD#0..`` in order. Device ``i`` of a kind takes a record drawn uniformly,
    with replacement, from :func:`generator_records` of its benchmark, and a per-device speed factor
    ``exp(N(0, heterogeneity_sigma))`` on all its priors (one factor per device: the same silicon
    at a different clock, power mode or thermal envelope). Draws come from the stream
    ``("pool", seed)``, so the pool is fixed hardware: the same for every replicate seed and policy.

    Args:
        records: priors records.
        gen: config ``pool_generator``: ``devices``, ``llm_fraction``, ``heterogeneity_sigma``,
            ``seed``, ``scenario``.
        reference_input_tokens: as in :func:`resolve_pool` (Eq. 1 alpha from TTFT).

    Returns:
        ``devices`` :class:`DevicePrior` objects, LLM devices first.

    Raises:
        ConfigError: fewer than two devices, or no record for a benchmark.
    """
    import math
    import random

    from e3.seeds import derive_seed

    n = int(gen["devices"])
    if n < 2:
        raise ConfigError(f"pool_generator: field 'devices': {n}; a generated pool needs at least 2 devices "
                          "(one of each task kind)")
    n_llm = min(n - 1, max(1, round(n * float(gen.get("llm_fraction", 0.5)))))
    sigma = float(gen.get("heterogeneity_sigma", 0.0))
    rng = random.Random(derive_seed(int(gen.get("seed", 0)), "pool"))
    scenario = gen.get("scenario", "SingleStream")
    out = []
    for count, bench, prefix in ((n_llm, "llama3.1-8b-edge", "LLM"), (n - n_llm, "stable-diffusion-xl", "SD")):
        recs = generator_records(records, bench, scenario)
        for i in range(count):
            r = recs[rng.randrange(len(recs))]
            speed = math.exp(rng.gauss(0.0, sigma)) if sigma > 0 else 1.0
            out.append(_prior_from_record(f"{prefix}#{i}", r, reference_input_tokens, speed))
    return out


def generated_mismatch(pool: list[DevicePrior], named_pool: list[DevicePrior],
                       mismatch: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Truth-mismatch factors for a generated pool: the same model as the named pool's.

    Rule: a generated device drawn from the MLPerf record that a configured (named) device
    resolves to takes that device's factors (the deployed stack differs from that record's profile
    the same way on every unit); a device drawn from any other record has factor 1. The seeded
    jitter ``truth.mismatch_sigma`` then applies per device and replicate as usual.

    Args:
        pool: the generated devices.
        named_pool: the config's ``pool`` entries resolved with :func:`resolve_pool`.
        mismatch: config ``truth.mismatch`` (named device -> factors).

    Returns:
        generated device name -> factors (only devices with a configured record).
    """
    by_record = {d.record_key: mismatch[d.name] for d in named_pool if d.name in mismatch}
    return {d.name: dict(by_record[d.record_key]) for d in pool if d.record_key in by_record}
