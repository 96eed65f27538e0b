"""Release 0.3.0's setting stays a named variant (config/variants/v0.3.yaml): it loads, passes the
sweep checks, and differs from 0.4.0's only where 0.4.0 added something (the fairness llm cells
and the llm back-end's options, the external baselines, the placement queueing option)."""

from __future__ import annotations

from e3.checks import check_sweep
from e3.config import load_config


def test_the_v03_variant_loads_and_checks(repo):
    v03 = load_config(repo / "config/variants/v0.3.yaml")
    check_sweep(v03, repo, "config/variants/v0.3.yaml")
    now = load_config(repo / "config/config.yaml")
    assert {"policy": "multi_agent", "controller": "llm"} not in v03["fairness"]["sweep"]["cells"]
    assert {"policy": "multi_agent", "controller": "llm"} in now["fairness"]["sweep"]["cells"]
    assert "llm_tiers" not in v03["fairness"]["agents"] and "external" not in v03
    # every E3 section is the same: 0.4.0 changed no E3 number
    for key in ("pool", "truth", "workload", "policies", "controllers", "sweep", "simulation"):
        assert v03.get(key) == now.get(key), key
