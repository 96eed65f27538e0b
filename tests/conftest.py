"""Shared fixtures. Tests never touch the network; MLPerf data come from a local mirror."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _mirror() -> Path | None:
    cand = os.environ.get("E3_MLPERF_MIRROR") or str(REPO.parent / "shared" / "mlperf")
    p = Path(cand)
    return p if (p / "inference_results_v5.1").is_dir() else None


@pytest.fixture(scope="session")
def mlperf_mirror() -> Path:
    """The local MLPerf mirror (``../shared/mlperf`` or ``$E3_MLPERF_MIRROR``); skips if absent."""
    m = _mirror()
    if m is None:
        pytest.skip("MLPerf mirror not found: set E3_MLPERF_MIRROR or place it at ../shared/mlperf "
                    "(a lone clone of e3 has no raw MLPerf files)")
    return m


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


# Hypothesis (tests/test_properties.py): few examples and no deadline keep the suite fast on two
# cores; derandomized so CI is repeatable. HYPOTHESIS_PROFILE=explore searches harder, locally.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("e3", max_examples=30, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("explore", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "e3"))
def _traces_mirror() -> Path | None:
    cand = os.environ.get("E3_TRACES_MIRROR") or str(REPO.parent / "shared" / "traces")
    p = Path(cand)
    return p if (p / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv").is_file() else None


@pytest.fixture(scope="session")
def traces_mirror() -> Path:
    """The local request-trace mirror (``../shared/traces`` or ``$E3_TRACES_MIRROR``); skips if absent."""
    m = _traces_mirror()
    if m is None:
        pytest.skip("request-trace mirror not found: set E3_TRACES_MIRROR or place it at ../shared/traces "
                    "(the Azure LLM trace files are not committed; `snakemake fetch_traces` downloads them)")
    return m


def pytest_addoption(parser):
    parser.addoption("--plugin", action="append", default=[], metavar="FILE",
                     help="an E3 policy plugin (.py file or module) to run through the policy contract test "
                          "(tests/test_baselines.py), e.g. pytest tests/test_baselines.py --plugin my_baselines/x.py")


@pytest.fixture(scope="session")
def user_plugins(request) -> tuple[str, ...]:
    """The ``--plugin`` files given on the pytest command line."""
    return tuple(request.config.getoption("--plugin"))
