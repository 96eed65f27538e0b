"""Resolve a configured device pool against the priors records, and derive Eq. 1/Eq. 2 priors.

A pool entry names a system loosely (``"Jetson Thor"``); every whitespace-separated word must
appear, case-insensitively, in the record's system name, platform or accelerator. Exactly one
record must match (after the optional ``round``/``division``/``submitter`` filters); zero or
several is an error that lists the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from e3.errors import ConfigError
from e3.mlperf.rounds import BENCHMARKS
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
            alpha (a documented choice, see README "Choices the paper leaves open").

    Raises:
        ConfigError: a duplicate device name, or an entry that does not match exactly one record.
    """
    names = [e["name"] for e in pool_cfg]
    if len(set(names)) != len(names):
        raise ConfigError(f"pool: duplicate device names in {names}")
    out = []
    for e in pool_cfg:
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
