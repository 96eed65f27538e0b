"""The LoadGen parser on the real MLPerf files, one test per round format."""

from __future__ import annotations

import pytest

from e3.mlperf.loadgen import parse_summary_log
from e3.mlperf.priors import build_records
from e3.mlperf.rounds import ROUNDS

ALL_ROUNDS = list(ROUNDS)


def _rec(records, rnd, platform, scenario="SingleStream"):
    hits = [r for r in records if r["round"] == rnd and r["platform"] == platform and r["scenario"] == scenario]
    assert len(hits) == 1, hits
    return hits[0]


@pytest.fixture(scope="module")
def records(mlperf_mirror):
    return build_records(mlperf_mirror, ALL_ROUNDS)


def test_paper_devices_have_the_raw_file_values(records):
    # Values as printed in each result's mlperf_log_summary.txt (ns), converted to ms.
    thor = _rec(records, "v5.1", "Jetson-Thor_TRT")
    assert thor["metrics"]["ttft_ms_p99"] == pytest.approx(1416.993311)
    assert thor["metrics"]["tpot_ms_p99"] == pytest.approx(21.964708)
    assert thor["precision"] == "fp4" and thor["division"] == "open"
    b60 = _rec(records, "v5.1", "1-node-1x-BMG-Pro-B60-Dual")
    assert b60["metrics"]["ttft_ms_p99"] == pytest.approx(330.726636)
    assert b60["metrics"]["tpot_ms_p99"] == pytest.approx(26.962395)
    assert b60["precision"] == "UINT4"
    se100 = _rec(records, "v5.1", "SE100_RTX2000E_Ada_16GBx1_TRT")
    assert se100["metrics"]["latency_ms_p99"] == pytest.approx(7480.829418)
    assert se100["metrics"]["latency_ms_p90"] == pytest.approx(7472.844284)
    assert se100["precision"] == "fp8"
    orin = _rec(records, "v4.1", "Orin_TRT")
    assert orin["metrics"]["latency_ms_p99"] == pytest.approx(9967.749205)
    assert orin["precision"] == "int8"  # not fp8 as the paper's Table 3 says


def test_every_record_has_provenance(records):
    for r in records:
        p = r["provenance"]
        assert p["repository"].startswith("mlcommons/inference_results_")
        assert len(p["commit"]) == 40 and len(p["log_sha256"]) == 64
        assert p["log_file"].endswith("performance/run_1/mlperf_log_summary.txt")


def test_v40_has_no_summary_and_old_labels(records, mlperf_mirror):
    # v4.0: no round summary (explicit result list), "90th percentile" labels.
    orin = _rec(records, "v4.0", "Orin_TRT")
    assert orin["provenance"]["summary_file"] is None
    assert orin["metrics"]["latency_ms_p99"] == pytest.approx(12945.15849)
    assert orin["metrics"]["latency_ms_p90_early_stopping"] == pytest.approx(12941.921115)


def test_v51_and_v60_token_label_drift(records):
    # v5.1 "Mean Time to Output Token", v6.0 "Mean Time per Output Token": both parsed as tpot_ms_mean.
    assert _rec(records, "v5.1", "Jetson-Thor_TRT")["metrics"]["tpot_ms_mean"] == pytest.approx(21.29163)
    v60 = _rec(records, "v6.0", "Jetson-Thor")
    assert v60["metrics"]["tpot_ms_mean"] == pytest.approx(8.095825)
    assert v60["metrics"]["ttft_ms_p99"] == pytest.approx(182.32359)
    assert v60["metrics"]["tpot_ms_p99"] == pytest.approx(12.0876)


def test_v61_keyed_summary_excerpt(records):
    hpe = _rec(records, "v6.1", "HPE_PROLIANT_DL345_GEN12_RTX_PRO_4500_PCIE_32GBx4_TRT_open")
    assert hpe["provenance"]["summary_is_excerpt"] is True
    assert hpe["accelerator_count"] == 4
    assert hpe["metrics"]["ttft_ms_p99"] == pytest.approx(536.562946)


def test_detail_log_cross_check_and_output_length(records):
    thor = _rec(records, "v5.1", "Jetson-Thor_TRT")
    assert {"ttft_ms_p99", "tpot_ms_p99", "latency_ms_p99"} <= set(thor["provenance"]["detail_checked"])
    # tokens/s over queries/s from the detail log: the 128-token output of llama3.1-8b-edge.
    assert thor["metrics"]["output_tokens_mean"] == pytest.approx(128.0, abs=0.01)


def test_offline_records_carry_throughput(records):
    off = _rec(records, "v5.1", "1-node-1x-BMG-Pro-B60-Dual", "Offline")
    assert off["metrics"]["tokens_per_s"] == pytest.approx(1652.47)


def test_record_count_per_benchmark(records):
    counts = {}
    for r in records:
        counts[r["benchmark"]] = counts.get(r["benchmark"], 0) + 1
    assert counts == {"llama3.1-8b-edge": 8, "stable-diffusion-xl": 6}


def test_frozen_priors_equal_a_fresh_parse(records, repo):
    from e3.mlperf.priors import diff_priors, load_priors

    assert diff_priors(load_priors(repo / "results/priors/edge_mobile_generative.jsonl"), records) == []


def test_parse_single_log_scenario_mismatch(mlperf_mirror):
    from e3.errors import InputError

    log = next(mlperf_mirror.glob("inference_results_v5.1/open/NVIDIA/results/*/llama3.1-8b-edge/SingleStream/performance/run_1/mlperf_log_summary.txt"))
    with pytest.raises(InputError, match="Scenario"):
        parse_summary_log(log, "llama3.1-8b-edge", "Offline")
