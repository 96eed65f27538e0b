"""Issue 32, item 2: one registry type for every system, so the fairness and placement systems
take plugins as E3 does, refuse a taken name, and run every policy (built-in, the examples of
docs/policies.md, and ``pytest --plugin FILE``) through their system's contract."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from e3.config import load_config
from e3.errors import ConfigError
from e3.fairness import policies as fairness
from e3.placement import policies as placement
from e3.registry import load_plugins


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config" / "config.yaml")


EXAMPLES = "workflow/examples/plugins"


def _doc_block(repo, marker: str) -> str:
    """The code block of docs/policies.md that starts with ``# my_baselines/<marker>``."""
    text = (repo / "docs" / "policies.md").read_text()
    return next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if b.startswith(f"# my_baselines/{marker}"))


@pytest.fixture(scope="module")
def fairness_example(repo):
    # the file the CI configuration also loads (sweep.plugins): one origin, so no name clash
    return str(repo / EXAMPLES / "jsq2_serving.py")


@pytest.fixture(scope="module")
def placement_example(repo):
    return str(repo / EXAMPLES / "worst_fit.py")


def test_the_example_files_are_the_docs_examples(repo):
    # workflow/examples/plugins/ holds docs/policies.md's two examples (the CI config runs them)
    for name in ("jsq2_serving.py", "worst_fit.py"):
        body = (repo / EXAMPLES / name).read_text().split("\n", 1)[1]
        assert body == _doc_block(repo, name).split("\n", 1)[1], name


def test_the_examples_register_into_their_own_systems(fairness_example, placement_example):
    load_plugins([fairness_example, placement_example])
    assert "jsq2_serving" in fairness.policy_names() and "jsq2_serving" not in placement.policy_names()
    assert "worst_fit" in placement.policy_names() and "worst_fit" not in fairness.policy_names()


def test_a_plugin_cannot_shadow_a_builtin_of_either_system(tmp_path):
    for module, base, name in (("e3.fairness.policies", "FairnessPolicy", "static_sect"),
                               ("e3.placement.policies", "PlacementPolicy", "antllm")):
        f = tmp_path / f"shadow_{name}.py"
        f.write_text(f"from {module} import {base}, register\n\n@register\nclass Mine({base}):\n"
                     f"    name = {name!r}\n")
        with pytest.raises(ConfigError, match=f"'{name}' is already taken by a built-in"):
            load_plugins([str(f)])


def test_an_unknown_fairness_or_placement_policy_names_the_registered_ones():
    with pytest.raises(ConfigError, match=r"unknown fairness policy 'jsq3'.*registered: \["):
        fairness.get_policy("jsq3")
    with pytest.raises(ConfigError, match=r"unknown placement policy 'wost_fit'.*registered: \["):
        placement.get_policy("wost_fit")


def _controller(cls) -> str | None:
    ctl = [c for c in cls.controllers if c != "llm"]
    return ctl[0] if ctl else None


def test_every_fairness_policy_obeys_the_contract(cfg, tmp_path, fairness_example, user_plugins):
    from e3.fairness.run import simulate

    plugins = (fairness_example, *user_plugins)
    for name in fairness.policy_names(plugins):
        cls = fairness.get_policy(name, plugins)
        assert cls.__doc__, f"{name} needs a docstring with its reference"
        out = tmp_path / name
        s = simulate(cfg, "mec_city_burst", name, _controller(cls), 1, out)
        t = pq.read_table(out / "requests.parquet").to_pandas()
        assert list(t["request_id"]) == list(range(len(t))), name  # every request resolved once
        assert s["policy"] == name and json.loads((out / "summary.json").read_text())["policy"] == name
        assert 0.0 <= s["success_ratio"] <= 1.0 and s["mean_latency_s"] > 0, name


def test_every_placement_policy_obeys_the_contract(cfg, tmp_path, placement_example, user_plugins):
    from e3.placement.run import simulate

    plugins = (placement_example, *user_plugins)
    for name in placement.policy_names(plugins):
        cls = placement.get_policy(name, plugins)
        assert cls.__doc__, f"{name} needs a docstring with its reference"
        s = simulate(cfg, "agents_global", name, _controller(cls), 1, tmp_path / name)
        assert s["policy"] == name and s["completed"] > 0 and 0.0 <= s["qos_ratio"] <= 1.0, name


def test_simulate_takes_a_plugin_for_the_fairness_and_placement_systems(repo, tmp_path, fairness_example,
                                                                       placement_example):
    from e3.cli import main

    assert main(["simulate", "--plugin", fairness_example, "--scenario", "mec_city", "--policy", "jsq2_serving",
                 "--seed", "1", "--quiet", "--out", str(tmp_path / "f")]) == 0
    assert json.loads((tmp_path / "f" / "summary.json").read_text())["policy"] == "jsq2_serving"
    assert main(["simulate", "--plugin", placement_example, "--scenario", "agents_global", "--policy", "worst_fit",
                 "--seed", "1", "--quiet", "--out", str(tmp_path / "p")]) == 0
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["policy"] == "worst_fit"
