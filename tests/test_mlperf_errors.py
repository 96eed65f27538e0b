"""Malformed MLPerf inputs: each gives an error naming the file and field, and writes nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from e3.cli import main
from e3.errors import InputError
from e3.mlperf.loadgen import parse_summary_log

THOR = "inference_results_v5.1/open/NVIDIA/results/Jetson-Thor_TRT/llama3.1-8b-edge/SingleStream/performance/run_1"


@pytest.fixture()
def tree(tmp_path, mlperf_mirror) -> Path:
    """A private copy of the mirror's v5.1 tree that a test may corrupt."""
    dst = tmp_path / "mlperf"
    shutil.copytree(mlperf_mirror / "inference_results_v5.1", dst / "inference_results_v5.1")
    return dst


def _corrupt_and_filter(tree: Path, tmp_path: Path, edit, capsys) -> tuple[int, str, Path]:
    log = tree / THOR / "mlperf_log_summary.txt"
    log.write_text(edit(log.read_text()))
    out = tmp_path / "out" / "priors.jsonl"
    rc = main(["filter-mlperf", "--root", str(tree), "--out", str(out), "--rounds", "v5.1"])
    return rc, capsys.readouterr().err, out


def _assert_no_output(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob("*")) if out.parent.exists() else True


def test_truncated_file(tree, tmp_path, capsys):
    rc, err, out = _corrupt_and_filter(tree, tmp_path, lambda t: t[: len(t) // 3], capsys)
    assert rc == 2
    assert "mlperf_log_summary.txt" in err and "file truncated" in err
    _assert_no_output(out)


def test_missing_metric(tree, tmp_path, capsys):
    def drop(t):
        return "\n".join(x for x in t.splitlines() if "99.00 percentile first token" not in x)
    rc, err, out = _corrupt_and_filter(tree, tmp_path, drop, capsys)
    assert rc == 2 and "ttft_ms_p99" in err and "Jetson-Thor_TRT" in err
    _assert_no_output(out)


def test_non_numeric_value(tree, tmp_path, capsys):
    rc, err, out = _corrupt_and_filter(
        tree, tmp_path, lambda t: t.replace("99.00 percentile time to output token (ns)   : 21964708",
                                            "99.00 percentile time to output token (ns)   : 21.9ms"), capsys)
    assert rc == 2 and "not a number" in err and "time to output token" in err and "21.9ms" in err
    _assert_no_output(out)


def test_detail_disagreeing_with_summary(tree, tmp_path, capsys):
    rc, err, out = _corrupt_and_filter(
        tree, tmp_path, lambda t: t.replace(": 1416993311", ": 1416993999"), capsys)
    assert rc == 2 and "mlperf_log_detail.txt" in err and "disagrees" in err
    _assert_no_output(out)


def test_unknown_benchmark_name(mlperf_mirror):
    log = mlperf_mirror / THOR / "mlperf_log_summary.txt"
    with pytest.raises(InputError) as ei:
        parse_summary_log(log, "llama3-8b-edge", "SingleStream")
    assert ei.value.field == "benchmark" and ei.value.value == "llama3-8b-edge"
    assert str(log) in str(ei.value)


def test_not_a_loadgen_file(tmp_path):
    f = tmp_path / "mlperf_log_summary.txt"
    f.write_text("<html>rate limited</html>")
    with pytest.raises(InputError, match="header"):
        parse_summary_log(f, "stable-diffusion-xl", "SingleStream")


def test_summary_json_corrupt(tree, tmp_path, capsys):
    (tree / "inference_results_v5.1" / "summary_results.json").write_text("[{\"ID\": ")
    out = tmp_path / "o.jsonl"
    rc = main(["filter-mlperf", "--root", str(tree), "--out", str(out), "--rounds", "v5.1"])
    err = capsys.readouterr().err
    assert rc == 2 and "summary_results.json" in err and "not valid JSON" in err
    assert not out.exists()


def test_existing_output_untouched_on_failure(tree, tmp_path, capsys):
    out = tmp_path / "keep.jsonl"
    out.write_text("previous content\n")
    log = tree / THOR / "mlperf_log_summary.txt"
    log.write_text(log.read_text()[:200])
    assert main(["filter-mlperf", "--root", str(tree), "--out", str(out), "--rounds", "v5.1"]) == 2
    assert out.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep")] == []


def test_fetch_offline_without_mirror_says_how(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from e3.mlperf.fetch import FetchError, fetch

    def refuse(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.delenv("E3_MLPERF_MIRROR", raising=False)
    with pytest.raises(FetchError, match="mirror"):
        fetch(tmp_path / "dest", ["v5.1"], ["stable-diffusion-xl"], mirror=None, progress=lambda m: None)
    assert not (tmp_path / "dest").exists() and not (tmp_path / "dest.partial").exists()


def test_fetch_from_mirror_roundtrip(tmp_path, mlperf_mirror):
    from e3.mlperf.fetch import fetch
    from e3.mlperf.priors import build_records

    manifest = fetch(tmp_path / "m", ["v4.0", "v6.1"], ["llama3.1-8b-edge", "stable-diffusion-xl"],
                     mirror=mlperf_mirror, progress=lambda m: None)
    assert (tmp_path / "m" / "FETCH_MANIFEST.json").is_file()
    assert all(len(e["sha256"]) == 64 for e in manifest)
    recs = build_records(tmp_path / "m", ["v4.0", "v6.1"])
    assert {r["round"] for r in recs} == {"v4.0", "v6.1"}
