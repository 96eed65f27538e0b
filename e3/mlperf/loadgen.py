"""Parse MLPerf LoadGen ``mlperf_log_summary.txt`` and cross-check ``mlperf_log_detail.txt``.

All LoadGen latencies are in nanoseconds; e3 reports milliseconds (``_ms``). Label drift handled
here (``shared/mlperf/SOURCES.md``): v4.x "90th percentile" vs v5.1+ "90.0th percentile";
v5.1 "Min Time to Output Token (ns)" vs v6.0+ "Min Time per Output Token (ns)". The per-token
percentile lines keep the label "time to output token" in every round.
"""

from __future__ import annotations

import json
import math
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


# LoadGen writes plain decimals (ns as integers, rates with a fraction). Python's float() would
# also take "nan", "inf", "-7e9" and "1_000"; none of them is a LoadGen value.
_DECIMAL = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")
_HEADLINE = re.compile(r"^(?P<pct>\d+(?:\.\d+)?)th (?P<what>first token )?percentile latency \(ns\)$")
_END = re.compile(r"errors? encountered", re.IGNORECASE)


def finite_number(path: str | Path, label: str, value: Any) -> float:
    """``value`` (text or number) as a finite, non-negative float.

    Raises:
        InputError: naming ``path`` and ``label``: NaN, an infinity, a negative value, or not a
            plain decimal number.
    """
    text = str(value).strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
    elif _DECIMAL.match(text):
        x = float(text)
    else:
        try:
            x = float(text)
        except ValueError:
            raise InputError(path, label, "not a number", text) from None
        if math.isfinite(x) and x >= 0:  # e.g. "1_000" or "+5": not how LoadGen writes numbers
            raise InputError(path, label, "not a number as LoadGen writes it", text)
    if math.isnan(x):
        raise InputError(path, label, "NaN is not a measurement", text)
    if math.isinf(x):
        raise InputError(path, label, "infinity is not a measurement", text)
    if x < 0:
        raise InputError(path, label, "negative value; LoadGen times and rates are >= 0", text)
    return x


def _number(path: Path, label: str, text: str) -> float:
    return finite_number(path, label, text)


def _check_consistency(path: Path, m: dict[str, Any], pcts: dict[str, dict[float, float]],
                       headline: dict[tuple[str, float], float]) -> None:
    # A value cut short or mistyped in a file without a detail log must not pass as a number:
    # percentiles rise with the percentile, lie within [min, max], the early-stopping estimate
    # of a percentile is at least it, and the headline lines repeat the block's values.
    for what, by_pct in pcts.items():
        ordered = sorted(by_pct.items())
        for (p1, v1), (p2, v2) in zip(ordered, ordered[1:], strict=False):
            if v2 < v1:
                raise InputError(path, f"{what}_ms_{_pct_name(str(p2))}",
                                 f"below the {p1:g} percentile ({v1} ms): value cut short or corrupt?", v2)
        lo, hi, mean = m.get(f"{what}_ms_min"), m.get(f"{what}_ms_max"), m.get(f"{what}_ms_mean")
        if lo is not None and ordered and ordered[0][1] < lo:
            raise InputError(path, f"{what}_ms_min", f"above the {ordered[0][0]:g} percentile "
                             f"({ordered[0][1]} ms): value corrupt?", lo)
        if hi is not None and ordered and ordered[-1][1] > hi:
            raise InputError(path, f"{what}_ms_max", f"below the {ordered[-1][0]:g} percentile "
                             f"({ordered[-1][1]} ms): value cut short or corrupt?", hi)
        if mean is not None and ((lo is not None and mean < lo) or (hi is not None and mean > hi)):
            raise InputError(path, f"{what}_ms_mean", f"outside [min, max] = [{lo}, {hi}] ms", mean)
        for pct, v in by_pct.items():
            es = m.get(f"{what}_ms_{_pct_name(str(pct))}_early_stopping")
            if es is not None and (es < v or (hi is not None and es > hi)):
                raise InputError(path, f"{what}_ms_{_pct_name(str(pct))}_early_stopping",
                                 f"outside [{v}, {hi}] ms (the percentile and the max): value corrupt?", es)
    for (what, pct), v in headline.items():
        block = pcts.get(what, {}).get(pct)
        if block is not None and block != v:
            raise InputError(path, f"{what}_ms_{_pct_name(str(pct))}",
                             f"the summary's headline line says {v} ms, its statistics block {block} ms", block)


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
            header), a truncated file (no closing lines), scenario mismatch, a value that is not
            a finite non-negative decimal (NaN, infinities and negatives are named), a value
            given twice differently, inconsistent statistics (a percentile below a lower one,
            outside [min, max], or disagreeing with the headline line: a number cut short), or a
            required metric missing (see :data:`REQUIRED`).
    """
    path = Path(path)
    if benchmark not in BENCHMARKS:
        raise InputError(path, "benchmark", f"unknown MLPerf benchmark; known: {sorted(BENCHMARKS)}", benchmark)
    if not path.is_file():
        raise InputError(path, "(file)", "LoadGen summary log not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    if "MLPerf Results Summary" not in text:
        raise InputError(path, "(header)", "not an MLPerf LoadGen summary (header 'MLPerf Results Summary' missing)")
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if "Test Parameters Used" not in text or not _END.search(lines[-1]):
        raise InputError(path, "(end of file)", "file truncated: the 'Test Parameters Used' section "
                         "or the closing 'errors encountered' line is missing")
    m: dict[str, Any] = {}
    pcts: dict[str, dict[float, float]] = {}
    headline: dict[tuple[str, float], float] = {}
    seen_scenario = False
    block = ""

    def put(key: str, label: str, value: float) -> None:
        if key in m and m[key] != value:
            raise InputError(path, label, f"given twice with different values ({m[key]} and {value} ms)", value)
        m[key] = value

    for line in lines:
        if line.endswith("Early Stopping Result:"):
            block = {"TTFT": "ttft", "TPOT": "tpot"}.get(line.split()[0], "latency")
            continue
        es = _ES.match(line)
        if es:
            if not block:
                raise InputError(path, line, "early-stopping estimate outside an 'Early Stopping Result:' block")
            put(f"{block}_ms_{_pct_name(es['pct'])}_early_stopping", line, _number(path, line, es["val"]) / NS_PER_MS)
            continue
        lm = _LINE.match(line)
        if not lm:
            continue
        label, value = lm["label"].strip(), lm["value"].strip()
        if (pm := _PCT.match(label)):
            what, ms = _WHAT[pm["what"]], _number(path, label, value) / NS_PER_MS
            put(f"{what}_ms_{_pct_name(pm['pct'])}", label, ms)
            pcts.setdefault(what, {})[float(pm["pct"])] = ms
        elif (hm := _HEADLINE.match(label)):
            headline[("ttft" if hm["what"] else "latency", float(hm["pct"]))] = _number(path, label, value) / NS_PER_MS
        elif (sm := _STAT.match(label)):
            put(f"{_WHAT[sm['what']]}_ms_{sm['stat'].lower()}", label, _number(path, label, value) / NS_PER_MS)
        elif label == "Scenario":
            seen_scenario = True
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
    if not seen_scenario:
        raise InputError(path, "Scenario", "scenario line missing")
    _check_consistency(path, m, pcts, headline)
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
        InputError: a value in the detail log disagrees with the summary log, or is not a
            finite, non-negative number (NaN would pass every comparison).
    """
    detail = read_detail_log(detail_path)
    checked = []
    for name, key in DETAIL_KEYS.items():
        if name not in metrics or key not in detail:
            continue
        ms = finite_number(detail_path, key, detail[key]) / NS_PER_MS
        if abs(ms - metrics[name]) > rel_tol * max(abs(ms), 1.0):
            raise InputError(detail_path, key, f"disagrees with the summary log's {name}={metrics[name]!r} ms", ms)
        checked.append(name)
    # The summary log rounds throughputs (e.g. "QPS w/o loadgen overhead : 0.24"); take the
    # detail log's full-precision value when it agrees with the rounded one.
    for name, keys in PRECISE_KEYS.items():
        key = next((k for k in keys if k in detail), None)
        if name not in metrics or key is None:
            continue
        precise = finite_number(detail_path, key, detail[key])
        if abs(precise - metrics[name]) > 0.01 + 1e-6 * abs(precise):
            raise InputError(detail_path, key, f"disagrees with the summary log's {name}={metrics[name]!r}", precise)
        metrics[name] = precise
        checked.append(name)
    return checked
