"""Read an MLPerf round summary file into normalized rows.

Two schemas exist (``shared/mlperf/SOURCES.md``): v4.1-v6.0 ``summary_results.json`` is a JSON
list with keys ``Submitter, Category, Suite, System, Platform, Model, UsedModel, Scenario,
Accelerator, a#, Location, weight_data_types, Performance_Result, Performance_Units``; v6.1
``summary.json`` is an object keyed "0".."N" with ``Organization, Division, SystemType,
SystemName, MlperfModel, Result, Units, accelerator_model_name, total_accelerators`` instead.
The summary carries no TTFT/TPOT/p99: those come from the per-result LoadGen logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e3.errors import InputError
from e3.mlperf.rounds import BENCHMARKS, ExplicitResult, Round

_SCENARIOS = {"singlestream": "SingleStream", "offline": "Offline", "multistream": "MultiStream",
              "server": "Server"}


@dataclass(frozen=True)
class SummaryRow:
    """One (round, division, submitter, system, benchmark, scenario) entry of a round summary.

    ``location`` is the result folder relative to the round's repository root, ending in
    ``/performance/run_1`` (v6.0+ already give it so; older rounds are completed here).
    ``summary_result``/``summary_units`` are the summary's own headline value (for SingleStream a
    90th-percentile latency estimate in ms; for Offline samples/s or tokens/s).
    """

    round: str
    division: str
    submitter: str
    system: str
    platform: str
    benchmark: str
    scenario: str
    suite: str
    accelerator: str | None
    accelerator_count: int | None
    precision: str | None
    location: str
    summary_id: str | None
    summary_result: float | None
    summary_units: str | None


def normalize_scenario(value: str, path: str | Path, field: str = "Scenario") -> str:
    """Map scenario spellings ("singlestream", "SingleStream") to the canonical casing.

    Raises:
        InputError: unknown scenario name.
    """
    key = str(value).replace(" ", "").lower()
    if key not in _SCENARIOS:
        raise InputError(path, field, "unknown MLPerf scenario", value)
    return _SCENARIOS[key]


def _location(loc: str) -> str:
    loc = loc.strip().removeprefix("./").rstrip("/")
    if not loc.endswith("performance/run_1"):
        loc = f"{loc}/performance/run_1"
    return loc


def _count(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(float(value))


def _float(value: Any, path: Path, field: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(path, field, "not a number", value) from None


def read_summary(path: str | Path, rnd: Round, benchmarks: list[str] | None = None,
                 suite: str = "edge") -> list[SummaryRow]:
    """Read the rows of ``path`` for the given benchmarks in the ``suite`` (default edge).

    Args:
        path: the round's summary file (or the mirror's excerpt of it).
        rnd: the round it belongs to (gives the schema and the round label).
        benchmarks: MLPerf benchmark names to keep; default all of :data:`BENCHMARKS`.
        suite: keep rows whose Suite/SystemType contains this word.

    Returns:
        Rows sorted by (division, submitter, platform, benchmark, scenario).

    Raises:
        InputError: the file is not JSON of the expected shape, or a kept row lacks a field.
    """
    path = Path(path)
    wanted = set(benchmarks or BENCHMARKS)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, "(file)", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if rnd.summary_format == "list":
        if not isinstance(data, list):
            raise InputError(path, "(file)", "expected a JSON list of result rows", type(data).__name__)
        entries = [(str(i), e) for i, e in enumerate(data)]
        keys = dict(division="Category", submitter="Submitter", system="System", model="Model",
                    suite="Suite", accelerator="Accelerator", count="a#", result="Performance_Result",
                    units="Performance_Units", id="ID")
    else:
        if not isinstance(data, dict):
            raise InputError(path, "(file)", "expected a JSON object keyed by row index", type(data).__name__)
        entries = [(k, v) for k, v in data.items() if not k.startswith("_")]
        keys = dict(division="Division", submitter="Organization", system="SystemName",
                    model="MlperfModel", suite="SystemType", accelerator="accelerator_model_name",
                    count="total_accelerators", result="Result", units="Units", id="PrivateID")
    rows = []
    for idx, e in entries:
        if not isinstance(e, dict):
            raise InputError(path, f"row {idx}", "expected an object", type(e).__name__)
        model = e.get(keys["model"]) or e.get("Model")
        if model not in wanted or suite not in str(e.get(keys["suite"], "")):
            continue
        for k in ("division", "submitter", "system"):
            if not e.get(keys[k]):
                raise InputError(path, f"row {idx}.{keys[k]}", "missing")
        for k in ("Platform", "Scenario", "Location"):
            if not e.get(k):
                raise InputError(path, f"row {idx}.{k}", "missing")
        rows.append(SummaryRow(
            round=rnd.name,
            division=str(e[keys["division"]]).lower(),
            submitter=str(e[keys["submitter"]]),
            system=str(e[keys["system"]]),
            platform=str(e["Platform"]),
            benchmark=str(model),
            scenario=normalize_scenario(e["Scenario"], path, f"row {idx}.Scenario"),
            suite=suite,
            accelerator=e.get(keys["accelerator"]) or None,
            accelerator_count=_count(e.get(keys["count"])),
            precision=e.get("weight_data_types") or None,
            location=_location(str(e["Location"])),
            summary_id=str(e.get(keys["id"])) if e.get(keys["id"]) else None,
            summary_result=_float(e.get(keys["result"]), path, f"row {idx}.{keys['result']}"),
            summary_units=e.get(keys["units"]) or None,
        ))
    rows.sort(key=lambda r: (r.division, r.submitter, r.platform, r.benchmark, r.scenario))
    return rows


def explicit_row(rnd: Round, res: ExplicitResult, system_json: Path) -> SummaryRow:
    """Build a row for a round without a summary file from its ``systems/{platform}.json``.

    Raises:
        InputError: the system description is missing or lacks ``system_name``.
    """
    if not system_json.is_file():
        raise InputError(system_json, "(file)", "system description not found")
    try:
        sysd = json.loads(system_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(system_json, "(file)", f"not valid JSON: {exc.msg}") from exc
    if not sysd.get("system_name"):
        raise InputError(system_json, "system_name", "missing")
    return SummaryRow(
        round=rnd.name, division=res.division, submitter=res.submitter,
        system=sysd["system_name"], platform=res.platform, benchmark=res.benchmark,
        scenario=res.scenario, suite=str(sysd.get("system_type", "edge")),
        accelerator=sysd.get("accelerator_model_name") or None,
        accelerator_count=_count(sysd.get("accelerators_per_node")),
        precision=None,
        location=f"{res.division}/{res.submitter}/results/{res.platform}/{res.used_model}/{res.scenario}/performance/run_1",
        summary_id=None, summary_result=None, summary_units=None,
    )
