"""Scenario files: every shipped plan loads; bad plans fail with the file, the field and the value."""

from __future__ import annotations

import pytest

from e3.errors import ConfigError
from e3.sim.scenario import available_scenarios, load_scenario

KINDS = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}
HEAD = "name: bad\ndescription: a broken plan\n"


def _load(tmp_path, body: str):
    p = tmp_path / "bad.yaml"
    p.write_text(HEAD + body)
    return p, lambda: load_scenario(p, KINDS)


def test_every_shipped_scenario_loads():
    names = available_scenarios()
    assert {"warmup_0", "warmup_30", "warmup_100", "semantic", "churn", "drift"} <= set(names)
    rank = {d: float(i) for i, d in enumerate(KINDS)}  # selectors with `order: fastest` need ranks
    for n in names:
        assert load_scenario(n, KINDS, None, rank).name == n


def test_semantic_plan_has_three_windows_and_exposes_labels_only():
    sc = load_scenario("semantic", KINDS)
    assert len(sc.semantic) == 3  # the rule of config/scenarios/semantic.yaml at 0.2.0's rate


@pytest.mark.parametrize("body, field, needle", [
    ("semantic:\n  - {device: 'GPU#9', start_task: 10, end_task: 20, label: game, slowdown: 2}\n",
     "semantic.0.device", "GPU#9"),
    ("churn:\n  - {device: 'SD#0', leave_task: 10, return_task: 50}\n"
     "  - {device: 'SD#0', leave_task: 40, return_task: 60}\n", "churn.1", "overlaps"),
    ("drift:\n  - {device: 'LLM#0', start_task: -5, end_task: 20, factor: 2}\n",
     "drift.0.start_task", "-5"),
    ("drift:\n  - {device: 'LLM#0', start_task: 30, end_task: 20, factor: 2}\n", "drift.0", "end (20)"),
    ("drift:\n  - {device: 'SD#0', start_task: 10, end_task: 20, factor: 2}\n", "drift.0.device", "LLM"),
    ("semantic:\n  - {device: 'SD#0', start_task: 10, end_task: 20, label: game, slowdown: 0.5}\n",
     "semantic.0.slowdown", "0.5"),
    ("churn:\n  - {device: 'SD#0', leave_task: 10, return_task: 50}\n"
     "  - {device: 'SD#1', leave_task: 40, return_task: 60}\n", "churn", "every sdxl device is away"),
    ("warmup_budget_tasks: ten\n", "warmup_budget_tasks", "ten"),
    ("surprise: 1\n", "(top level)", "surprise"),
])
def test_bad_scenario_is_a_clear_error(tmp_path, body, field, needle):
    p, load = _load(tmp_path, body)
    with pytest.raises(ConfigError) as ei:
        load()
    msg = str(ei.value)
    assert str(p) in msg and f"'{field}" in msg and needle in msg, msg


def test_unknown_scenario_lists_the_available_ones():
    with pytest.raises(ConfigError, match="available: .*warmup_30"):
        load_scenario("no_such_plan", KINDS)


def test_a_new_scenario_is_one_yaml_file(tmp_path):
    p = tmp_path / "double_drift.yaml"
    p.write_text("name: double_drift\ndescription: both LLM devices slow down in turn\n"
                 "drift:\n  - {device: 'LLM#0', start_task: 10, end_task: 50, factor: 2}\n"
                 "  - {device: 'LLM#1', start_task: 60, end_task: 90, factor: 3}\n")
    sc = load_scenario(p, KINDS)
    assert [d.device for d in sc.drift] == ["LLM#0", "LLM#1"]
