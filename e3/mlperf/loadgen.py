"""Parse MLPerf LoadGen ``mlperf_log_summary.txt`` and cross-check ``mlperf_log_detail.txt``.

All LoadGen latencies are in nanoseconds; e3 reports milliseconds (``_ms``). Label drift handled
here (``shared/mlperf/SOURCES.md``): v4.x "90th percentile" vs v5.1+ "90.0th percentile";
v5.1 "Min Time to Output Token (ns)" vs v6.0+ "Min Time per Output Token (ns)". The per-token
percentile lines keep the label "time to output token" in every round.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from e3.errors import InputError
from e3.mlperf.rounds import BENCHMARKS

NS_PER_MS = 1e6

# "99.00 percentile latency (ns)"; "99.00 percentile first token latency (ns)";
# "99.00 percentile time to output token (ns)". The top-of-file "90.0th ..." lines have a "th".
_PCT = re.compile(r"^(?P<pct>\d+(?:\.\d+)?) percentile (?P<what>latency|first token latency|time to output token) \(ns\)$")
_STAT = re.compile(r"^(?P<stat>Min|Max|Mean) (?P<what>latency|First Token latency|Time (?:to|per) Output Token) \(ns\)$")
_ES = re.compile(r"^\* Early stopping (?P<pct>\d+(?:\.\d+)?)th percentile estimate: (?P<val>.+)$")
_LINE = re.compile(r"^(?P<label>[^:]+?)\s*:\s*(?P<value>.*)$")

_WHAT = {"latency": "latency", "first token latency": "ttft", "time to output token": "tpot",
         "First Token latency": "ttft", "Time to Output Token": "tpot", "Time per Output Token": "tpot"}

#: Metrics each (task kind, scenario) must have; a missing one is an error naming the file.
REQUIRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("llm", "SingleStream"): ("ttft_ms_p99", "tpot_ms_p99", "latency_ms_p99", "latency_ms_p90"),
    ("sdxl", "SingleStream"): ("latency_ms_p99", "latency_ms_p90"),
    ("llm", "Offline"): ("tokens_per_s", "samples_per_s"),
    ("sdxl", "Offline"): ("samples_per_s",),
}

#: metric name -> mlperf_log_detail.txt key holding the same value in ns.
DETAIL_KEYS = {
    "latency_ms_p99": "result_99.00_percentile_latency_ns",
    "latency_ms_p90": "result_90.00_percentile_latency_ns",
    "ttft_ms_p99": "result_first_token_99.00_percentile_latency_ns",
    "tpot_ms_p99": "result_time_per_output_token_99.00_percentile_ns",
}


#: throughput metric -> detail keys with the unrounded value (first present wins).
PRECISE_KEYS = {
    "samples_per_s": ("result_qps_without_loadgen_overhead", "result_samples_per_second"),
    "tokens_per_s": ("result_completed_tokens_per_second", "result_tokens_per_second"),
}


def _pct_name(pct: str) -> str:
    v = float(pct)
    return f"p{int(v)}" if v == int(v) else "p" + f"{v:g}".replace(".", "_")


def _number(path: Path, label: str, text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InputError(path, label, "not a number", text.strip()) from None


def parse_summary_log(path: str | Path, benchmark: str, scenario: str) -> dict[str, Any]:
    """Parse one ``mlperf_log_summary.txt``.

    Args:
        path: the LoadGen summary log.
        benchmark: MLPerf benchmark name, one of :data:`e3.mlperf.rounds.BENCHMARKS`.
        scenario: expected LoadGen scenario (``SingleStream`` or ``Offline``).

    Returns:
        Flat dict of metrics in ms (``latency_ms_p99``, ``ttft_ms_p99``, ``tpot_ms_p99``,
        ``*_ms_p50..p99_9``, ``*_ms_min/max/mean``, ``ttft_ms_p99_early_stopping``, ...),
        throughputs (``tokens_per_s``, ``samples_per_s``), ``result_valid`` (bool) and
        ``query_count`` where the log states it.

    Raises:
        InputError: unknown benchmark, missing file, not a LoadGen summary (e.g. truncated
            header), scenario mismatch, a non-numeric value, or a required metric missing
            (see :data:`REQUIRED`).
    """
    path = Path(path)
    if benchmark not in BENCHMARKS:
        raise InputError(path, "benchmark", f"unknown MLPerf benchmark; known: {sorted(BENCHMARKS)}", benchmark)
    if not path.is_file():
        raise InputError(path, "(file)", "LoadGen summary log not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    if "MLPerf Results Summary" not in text:
        raise InputError(path, "(header)", "not an MLPerf LoadGen summary (header 'MLPerf Results Summary' missing)")
    m: dict[str, Any] = {}
    block = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.endswith("Early Stopping Result:"):
            block = {"TTFT": "ttft", "TPOT": "tpot"}.get(line.split()[0], "latency")
            continue
        es = _ES.match(line)
        if es:
            m[f"{block}_ms_{_pct_name(es['pct'])}_early_stopping"] = _number(path, line, es["val"]) / NS_PER_MS
            continue
        lm = _LINE.match(line)
        if not lm:
            continue
        label, value = lm["label"].strip(), lm["value"].strip()
        if (pm := _PCT.match(label)):
            m[f"{_WHAT[pm['what']]}_ms_{_pct_name(pm['pct'])}"] = _number(path, label, value) / NS_PER_MS
        elif (sm := _STAT.match(label)):
            m[f"{_WHAT[sm['what']]}_ms_{sm['stat'].lower()}"] = _number(path, label, value) / NS_PER_MS
        elif label == "Scenario":
            got = value.replace(" ", "")
            if got.lower() != scenario.lower():
                raise InputError(path, "Scenario", f"expected {scenario}", value)
        elif label == "Result is":
            m["result_valid"] = value.upper() == "VALID"
        elif label in ("Samples per second", "QPS w/o loadgen overhead"):
            m["samples_per_s"] = _number(path, label, value)
        elif label in ("Tokens per second", "TPS w/o loadgen overhead"):
            m["tokens_per_s"] = _number(path, label, value)
    kind = BENCHMARKS[benchmark]
    for name in REQUIRED.get((kind, scenario), ()):
        if name not in m:
            raise InputError(path, name, f"required metric missing for {benchmark} {scenario} (file truncated or label changed?)")
    if "result_valid" not in m:
        raise InputError(path, "Result is", "validity line missing (file truncated?)")
    return m


def read_detail_log(path: str | Path) -> dict[str, Any]:
    """Read the ``:::MLLOG {json}`` lines of ``mlperf_log_detail.txt`` into ``{key: value}``.

    Raises:
        InputError: a ``:::MLLOG`` line that is not valid JSON.
    """
    path = Path(path)
    out: dict[str, Any] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.startswith(":::MLLOG "):
            continue
        try:
            rec = json.loads(line[len(":::MLLOG "):])
        except json.JSONDecodeError as exc:
            raise InputError(path, f"line {i}", f"MLLOG record is not valid JSON: {exc.msg}") from exc
        out[rec.get("key")] = rec.get("value")
    return out


def cross_check_detail(metrics: dict[str, Any], detail_path: str | Path,
                       rel_tol: float = 1e-9) -> list[str]:
    """Check summary-log metrics against the detail log; return the metric names checked.

    Latency percentiles must agree exactly; rounded throughputs are replaced in ``metrics`` by
    the detail log's unrounded values when they agree to the summary's rounding.

    Raises:
        InputError: a value in the detail log disagrees with the summary log, or is not numeric.
    """
    detail = read_detail_log(detail_path)
    checked = []
    for name, key in DETAIL_KEYS.items():
        if name not in metrics or key not in detail:
            continue
        try:
            ns = float(detail[key])
        except (TypeError, ValueError):
            raise InputError(detail_path, key, "not a number", detail[key]) from None
        ms = ns / NS_PER_MS
        if abs(ms - metrics[name]) > rel_tol * max(abs(ms), 1.0):
            raise InputError(detail_path, key, f"disagrees with the summary log's {name}={metrics[name]!r} ms", ms)
        checked.append(name)
    # The summary log rounds throughputs (e.g. "QPS w/o loadgen overhead : 0.24"); take the
    # detail log's full-precision value when it agrees with the rounded one.
    for name, keys in PRECISE_KEYS.items():
        key = next((k for k in keys if k in detail), None)
        if name not in metrics or key is None:
            continue
        try:
            precise = float(detail[key])
        except (TypeError, ValueError):
            raise InputError(detail_path, key, "not a number", detail[key]) from None
        if abs(precise - metrics[name]) > 0.01 + 1e-6 * abs(precise):
            raise InputError(detail_path, key, f"disagrees with the summary log's {name}={metrics[name]!r}", precise)
        metrics[name] = precise
        checked.append(name)
    return checked
