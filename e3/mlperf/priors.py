"""Build, validate, write and compare the MLPerf priors file ``edge_mobile_generative.jsonl``.

One record per (round, division, submitter, system, benchmark, scenario) for the Edge
benchmarks ``llama3.1-8b-edge`` and ``stable-diffusion-xl`` (paper section 4.1, "Dataset
construction from MLPerf"), with metrics parsed from each result's LoadGen logs and provenance
(repository, pinned commit, file paths and sha256) on every record.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from e3.errors import InputError
from e3.io import read_jsonl, sha256_file, write_jsonl_atomic
from e3.mlperf.loadgen import cross_check_detail, parse_summary_log
from e3.mlperf.rounds import BENCHMARKS, Round, get_round
from e3.mlperf.summary import SummaryRow, explicit_row, read_summary

RECORD_KEY = ("round", "division", "submitter", "system", "benchmark", "scenario")


def priors_schema() -> dict[str, Any]:
    """The JSON schema of one priors record (``e3/schemas/priors.schema.json``)."""
    return json.loads(resources.files("e3.schemas").joinpath("priors.schema.json").read_text())


def summary_path(root: Path, rnd: Round) -> tuple[Path | None, bool]:
    """Locate a round's summary file under ``root``; return (path or None, is_excerpt).

    Raises:
        InputError: the round has a summary file but neither it nor the mirror excerpt exists.
    """
    if rnd.summary_file is None:
        return None, False
    p = root / rnd.folder / rnd.summary_file
    if p.is_file():
        return p, False
    if rnd.mirror_summary_fallback and (root / rnd.folder / rnd.mirror_summary_fallback).is_file():
        return root / rnd.folder / rnd.mirror_summary_fallback, True
    raise InputError(p, "(file)", f"summary file of round {rnd.name} not found")


def round_rows(root: Path, rnd: Round, benchmarks: list[str]) -> tuple[list[SummaryRow], Path | None, bool]:
    """The result rows of one round under ``root`` (from its summary, or its explicit list)."""
    spath, excerpt = summary_path(root, rnd)
    if spath is not None:
        return read_summary(spath, rnd, benchmarks), spath, excerpt
    rows = [explicit_row(rnd, r, root / rnd.folder / r.division / r.submitter / "systems" / f"{r.platform}.json")
            for r in rnd.explicit_results if r.benchmark in benchmarks]
    return rows, None, False


def build_records(root: str | Path, rounds: list[str], benchmarks: list[str] | None = None,
                  progress=None) -> list[dict[str, Any]]:
    """Parse every wanted result under ``root`` (a folder holding ``inference_results_v*``).

    Args:
        root: MLPerf data root, laid out like the upstream repositories.
        rounds: round names, e.g. ``["v4.1", "v5.1"]``.
        benchmarks: MLPerf benchmark names; default both Edge generative benchmarks.
        progress: optional ``callable(str)`` for progress lines.

    Returns:
        Records sorted by :data:`RECORD_KEY`, each valid against :func:`priors_schema`.

    Raises:
        InputError: a missing or malformed file, naming the file and the field.
    """
    root = Path(root)
    benchmarks = list(benchmarks or BENCHMARKS)
    for b in benchmarks:
        if b not in BENCHMARKS:
            raise InputError("config", "mlperf.benchmarks", f"unknown benchmark; known: {sorted(BENCHMARKS)}", b)
    records = []
    for name in rounds:
        rnd = get_round(name)
        rows, spath, excerpt = round_rows(root, rnd, benchmarks)
        if progress:
            progress(f"{rnd.name}: {len(rows)} edge result(s) for {', '.join(benchmarks)}")
        for row in rows:
            run_dir = root / rnd.folder / row.location
            log = run_dir / "mlperf_log_summary.txt"
            metrics = parse_summary_log(log, row.benchmark, row.scenario)
            detail = run_dir / "mlperf_log_detail.txt"
            checked = cross_check_detail(metrics, detail) if detail.is_file() else []
            if metrics.get("tokens_per_s") and metrics.get("samples_per_s") and row.scenario == "SingleStream":
                # LoadGen reports tokens/s and queries/s; their ratio is the mean output length
                # (exact with the detail log's precision, approximate from the rounded summary).
                metrics["output_tokens_mean"] = round(metrics["tokens_per_s"] / metrics["samples_per_s"], 3)
            rec = {
                "round": row.round, "division": row.division, "submitter": row.submitter,
                "system": row.system, "platform": row.platform, "benchmark": row.benchmark,
                "task_kind": BENCHMARKS[row.benchmark], "scenario": row.scenario,
                "accelerator": row.accelerator, "accelerator_count": row.accelerator_count,
                "precision": row.precision, "summary_result": row.summary_result,
                "summary_units": row.summary_units,
                "metrics": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in sorted(metrics.items())},
                "provenance": {
                    "repository": rnd.repo, "commit": rnd.ref, "round": rnd.name,
                    "summary_file": spath.name if spath else None,
                    "summary_sha256": sha256_file(spath) if spath else None,
                    "summary_is_excerpt": excerpt, "summary_id": row.summary_id,
                    "log_file": f"{row.location}/mlperf_log_summary.txt",
                    "log_sha256": sha256_file(log),
                    "detail_file": f"{row.location}/mlperf_log_detail.txt" if detail.is_file() else None,
                    "detail_checked": checked,
                },
            }
            records.append(rec)
    records.sort(key=lambda r: tuple(r[k] for k in RECORD_KEY))
    keys = [tuple(r[k] for k in RECORD_KEY) for r in records]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise InputError(root, "record key", "duplicate (round, division, submitter, system, benchmark, scenario)", sorted(dupes))
    validate_records(records, source=root)
    return records


def validate_records(records: list[dict[str, Any]], source: str | Path) -> None:
    """Validate records against :func:`priors_schema`.

    Raises:
        InputError: naming the source, the record index and the JSON path of the first error
            (a NaN or infinite value, a negative metric, a missing or unknown field).
    """
    from e3.config import non_finite_fields

    validator = jsonschema.Draft202012Validator(priors_schema())
    for i, rec in enumerate(records):
        bad = non_finite_fields(rec)
        if bad:  # NaN passes every schema comparison
            raise InputError(source, f"record {i}: {bad[0][0]}", "NaN and infinities are not measurements", bad[0][1])
        err = next(iter(sorted(validator.iter_errors(rec), key=lambda e: list(e.absolute_path))), None)
        if err is not None:
            path = ".".join(str(p) for p in err.absolute_path) or "(record)"
            raise InputError(source, f"record {i}: {path}", err.message)


def write_priors(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Validate and write records as JSON lines, atomically (no partial file on error)."""
    validate_records(records, source=path)
    write_jsonl_atomic(path, records)


_VALIDATED_PRIORS: set[str] = set()  # sha256 of priors files already validated in this process


def load_priors(path: str | Path) -> list[dict[str, Any]]:
    """Read and validate a priors JSONL file (a fresh list of fresh dicts on every call).

    A file whose exact bytes were validated earlier in this process is not validated again:
    schema validation (~60 ms) was most of the cost of an operating-point job's 14 cells.

    Raises:
        InputError: file missing, a line not JSON, or a record not valid against the schema.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "(file)", "priors file not found (run `snakemake refresh_priors` or restore it from git)")
    digest = sha256_file(path)
    records = read_jsonl(path)
    if digest not in _VALIDATED_PRIORS:
        validate_records(records, source=path)
        _VALIDATED_PRIORS.add(digest)
    return records


def diff_priors(frozen: list[dict[str, Any]], fresh: list[dict[str, Any]]) -> list[str]:
    """Describe differences between two record lists, keyed by :data:`RECORD_KEY`.

    Returns:
        One human-readable line per added, removed or changed record (empty when identical).
    """
    def index(recs):
        return {"/".join(str(r[k]) for k in RECORD_KEY): r for r in recs}

    a, b = index(frozen), index(fresh)
    lines = [f"removed: {k}" for k in sorted(a.keys() - b.keys())]
    lines += [f"added: {k}" for k in sorted(b.keys() - a.keys())]
    for k in sorted(a.keys() & b.keys()):
        if a[k] != b[k]:
            fields = sorted(f for f in set(a[k]) | set(b[k]) if a[k].get(f) != b[k].get(f))
            for f in fields:
                if isinstance(a[k].get(f), dict) and isinstance(b[k].get(f), dict):
                    sub = sorted(s for s in set(a[k][f]) | set(b[k][f]) if a[k][f].get(s) != b[k][f].get(s))
                    lines += [f"changed: {k}: {f}.{s}: {a[k][f].get(s)!r} -> {b[k][f].get(s)!r}" for s in sub]
                else:
                    lines.append(f"changed: {k}: {f}: {a[k].get(f)!r} -> {b[k].get(f)!r}")
    return lines
