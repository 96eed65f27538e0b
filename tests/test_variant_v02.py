"""Release 0.2.0's setting stays reproducible (config/variants/v0.2.yaml): the fairness planner,
the placement refinement's prompt and the outage semantics that 0.3.0 changed."""

from __future__ import annotations

import pytest

from e3.config import load_config

#: (system, scenario, policy, controller, seed) -> 0.2.0's frozen value (summary.json)
V02 = {
    ("fairness", "mec_city", "multi_agent", "rules", 1): ("mean_latency_s", 4.421381833969753),
    ("fairness", "mec_city_skewed", "multi_agent", "rules", 2): ("mean_latency_s", 16.871370904249595),
    ("placement", "agents_global_churn", "antllm", "local_search", 1): ("task_latency_mean_ms", 9269.226138496348),
    ("placement", "agents_global", "antllm", "llm", 3): ("task_latency_mean_ms", 7866.1622025732195),
}


@pytest.mark.parametrize("row", sorted(V02))
def test_v02_variant_reproduces_the_020_numbers(repo, tmp_path, row):
    cfg = load_config(repo / "config/variants/v0.2.yaml")
    system, scenario, policy, controller, seed = row
    if system == "fairness":
        from e3.fairness.run import simulate
    else:
        from e3.placement.run import simulate
    s = simulate(cfg, scenario, policy, controller, seed, tmp_path / "run")
    field, value = V02[row]
    assert s[field] == pytest.approx(value, rel=0, abs=1e-9)
