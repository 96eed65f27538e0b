"""Issue 33: random mutations of the fairness and placement scenarios and config sections are
either valid or refused with an E3Error naming the field; never another exception (Hypothesis).
A valid fairness mutation also runs a short simulation, which must write finite numbers."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from e3.config import REPO_ROOT, load_config
from e3.errors import E3Error
from tests.helpers import leaves, set_path

BAD = [math.nan, math.inf, -math.inf, -1, 0, -1e9, 1e300, "x", None, [], {}, True]


@st.composite
def mutated_scenario(draw, file):
    doc = yaml.safe_load((REPO_ROOT / file).read_text())
    doc.pop("description", None)
    paths = [p for p, _ in leaves(doc) if p[:1] not in (("name",), ("system",))]
    kind = draw(st.sampled_from(["value", "drop", "unknown_key"] if paths else ["unknown_key"]))
    if kind == "value":
        path = draw(st.sampled_from(paths))
        set_path(doc, path, draw(st.sampled_from(BAD) | st.text(max_size=5)))
    elif kind == "drop":
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        del parent[path[-1]]
    else:
        doc[draw(st.sampled_from(["mixx", "bursts_", "extra"]))] = 1
    return doc


def _load(system, doc):
    cfg = load_config(REPO_ROOT / "config/config.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "mutated.yaml"
        p.write_text(yaml.safe_dump(doc))
        if system == "fairness":
            from e3.fairness.scenario import load_scenario
            from e3.fairness.system import build_system

            return load_scenario(str(p), build_system(cfg))
        from e3.placement.run import load_scenario
        from e3.placement.system import build_system

        return load_scenario(p, build_system(cfg))


@pytest.mark.parametrize("system, file", [("fairness", "config/fairness/mec_city_burst.yaml"),
                                          ("placement", "config/agents/agents_global_churn.yaml")])
@given(data=st.data())
def test_mutated_system_scenarios_load_or_are_refused(system, file, data):
    doc = data.draw(mutated_scenario(file))
    try:
        _load(system, doc)
    except E3Error as exc:
        assert "mutated.yaml" in str(exc) or "field" in str(exc)


@st.composite
def mutated_section(draw):
    cfg = copy.deepcopy(yaml.safe_load((REPO_ROOT / "config/config.yaml").read_text()))
    section = draw(st.sampled_from(["fairness", "placement"]))
    paths = [p for p, _ in leaves(cfg[section]) if p[:1] != ("sweep",)]
    path = draw(st.sampled_from(paths))
    set_path(cfg[section], path, draw(st.sampled_from(BAD)))
    return section, path, cfg


@given(case=mutated_section())
def test_mutated_fairness_and_placement_sections_fail_naming_the_field_or_build(case):
    section, path, cfg = case
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "c.yaml"
        p.write_text(yaml.safe_dump(cfg))
        try:
            c = load_config(p)
            if section == "fairness":
                from e3.fairness.system import build_system
            else:
                from e3.placement.system import build_system
            build_system(c)
        except E3Error as exc:
            assert str(path[0]) in str(exc) or section in str(exc), (path, str(exc))


@pytest.mark.slow
@given(share=st.floats(0.01, 10.0), factor=st.floats(0.1, 3.0))
def test_valid_fairness_scenarios_write_finite_numbers(share, factor):
    from e3.fairness.run import simulate

    cfg = load_config(REPO_ROOT / "config/config.yaml")
    cfg = {**cfg, "fairness": {**cfg["fairness"], "horizon_s": 300}}
    doc = yaml.safe_load((REPO_ROOT / "config/fairness/mec_city.yaml").read_text())
    doc["mix"]["blip"] = share
    doc["epoch_rate_factors"] = [factor] * 2
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "s.yaml"
        p.write_text(yaml.safe_dump(doc))
        simulate(cfg, str(p), "static_sect", None, 1, Path(tmp) / "out")
        json.loads((Path(tmp) / "out/summary.json").read_text(), parse_constant=pytest.fail)
