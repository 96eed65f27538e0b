"""Property-based tests (Hypothesis) over e3's input surfaces (issue 13).

* Config documents: random valid documents load, pass the sweep check and simulate; a random
  mutation (NaN/infinity, a negative where a positive is required, a wrong type, an unknown key,
  device or parameter) fails with an :class:`E3Error` naming the field, never a traceback.
* Scenario documents: the same for event plans.
* The LoadGen parser: random corruptions of the real summary logs (truncation, a deleted line, a
  number replaced by NaN/infinity/a negative/garbage, digits lost, a line repeated with another
  value) give an :class:`InputError` or exactly the values of the intact file for every metric
  e3 uses (the REQUIRED ones), and never a new metric. Digit-loss corruptions are drawn for
  SingleStream logs, whose statistics repeat each other; an Offline log states each throughput
  once, and only its detail log (cross-checked by :func:`cross_check_detail`) can catch that.
* The ``e3 simulate`` command line: any arguments end with exit 0 (a complete run folder) or 2
  (a message), never a traceback, and never touch a folder that is not a previous run.

Example counts scale with the profile in ``tests/conftest.py``: ``e3`` (default, derandomized,
about 170 examples in all) or ``explore`` (HYPOTHESIS_PROFILE=explore, 10x).
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

from e3.checks import check_sweep
from e3.cli import main
from e3.config import REPO_ROOT, load_config
from e3.errors import ConfigError, E3Error, InputError
from e3.mlperf.loadgen import REQUIRED, parse_summary_log
from e3.mlperf.rounds import BENCHMARKS, get_round
from e3.sim.scenario import load_scenario
from tests.helpers import leaves, set_path

BASE = yaml.safe_load((REPO_ROOT / "config/config.yaml").read_text())
DEVICES = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}
FACTORS = {"llm": ("alpha", "beta"), "sdxl": ("c",)}
CHEAP_POLICIES = ["round_robin", "fixed_heuristic", "oracle", "jsq", "sed_ewma", "e3"]

def examples(n: int):
    """``settings`` with ``n`` examples under the default profile, scaled with the loaded one."""
    return settings(max_examples=max(1, n * settings.default.max_examples // 30))


finite_pos = st.floats(min_value=0.05, max_value=5.0, allow_nan=False, allow_infinity=False)
bad_number = st.sampled_from([math.nan, math.inf, -math.inf])


# --- config documents ----------------------------------------------------------------------------
@st.composite
def valid_configs(draw) -> dict:
    """The shipped config with random valid workload, truth, horizon and sweep choices."""
    doc = copy.deepcopy(BASE)
    doc["workload"]["arrival_rate_per_s"] = draw(st.floats(0.02, 2.0))
    doc["workload"]["arrivals"] = draw(st.sampled_from(["fixed", "poisson"]))
    doc["workload"]["mix"] = draw(st.sampled_from(["alternate", "llm", "sdxl"]))
    doc["workload"]["input_token_bins"] = draw(st.lists(st.integers(1, 4096), min_size=1, max_size=4))
    doc["workload"]["output_token_bins"] = draw(st.lists(st.integers(1, 512), min_size=1, max_size=4))
    devs = draw(st.lists(st.sampled_from(sorted(DEVICES)), unique=True))
    doc["truth"]["mismatch"] = {d: {k: draw(finite_pos) for k in draw(st.lists(
        st.sampled_from(FACTORS[DEVICES[d]]), unique=True))} for d in devs}
    doc["truth"]["mismatch_sigma"] = draw(st.floats(0, 0.5))
    doc["truth"]["noise_sigma"] = draw(st.floats(0, 0.5))
    doc["simulation"]["horizon_tasks"] = draw(st.integers(1, 40))
    doc["sweep"]["seeds"] = draw(st.lists(st.integers(0, 10**6), min_size=1, max_size=3, unique=True))
    doc["sweep"]["scenarios"] = draw(st.lists(st.sampled_from(["warmup_0", "semantic", "churn", "drift"]),
                                              min_size=1, max_size=3, unique=True))
    doc["sweep"]["cells"] = [{"policy": p} | ({"controller": "rules"} if p == "e3" else {})
                             for p in draw(st.lists(st.sampled_from(CHEAP_POLICIES), min_size=1, max_size=3, unique=True))]
    return doc


def _leaves(doc):
    """(path, value) of every scalar leaf, skipping free-form sections (policy parameters are
    checked by the policy, model_info and the rules controller's options are free text)."""
    return leaves(doc, (("policies",), ("controllers", "rules"), ("controllers", "llm", "model_info")))


def _mappings(doc, prefix=()):
    """Paths of the mappings that must not take an unknown key."""
    if prefix in (("controllers", "rules"), ("controllers", "llm", "model_info")):
        return
    if isinstance(doc, dict):
        yield prefix
        for k, v in doc.items():
            yield from _mappings(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _mappings(v, (*prefix, i))


#: Fields whose schema demands a positive (or non-negative) number: a negative always fails.
POSITIVE = [("workload", "arrival_rate_per_s"), ("priors", "reference_input_tokens"),
            ("simulation", "horizon_tasks"), ("truth", "mismatch_sigma"), ("truth", "noise_sigma"),
            ("workload", "input_token_bins", 0), ("sweep", "seeds", 0), ("controllers", "llm", "timeout_s"),
            ("controllers", "llm", "max_tokens"), ("truth", "mismatch", "LLM#1", "alpha")]


@st.composite
def config_mutations(draw):
    """(valid document, mutated document, words the error must contain)."""
    doc = draw(valid_configs())
    doc["truth"]["mismatch"].setdefault("LLM#1", {})["alpha"] = 1.5  # a target for 'negative'
    bad = copy.deepcopy(doc)
    kind = draw(st.sampled_from(["non_finite", "negative", "wrong_type", "unknown_key", "unknown_device",
                                 "wrong_factor", "unknown_policy", "unknown_param", "unknown_controller"]))
    numeric = [(p, v) for p, v in _leaves(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if kind == "non_finite":
        path, _ = draw(st.sampled_from(numeric))
        set_path(bad, path, draw(bad_number))
        need = [".".join(map(str, path))]
    elif kind == "negative":
        path = draw(st.sampled_from(POSITIVE))
        set_path(bad, path, -draw(finite_pos))
        need = [".".join(map(str, path))]
    elif kind == "wrong_type":
        path, _ = draw(st.sampled_from(list(_leaves(doc))))
        set_path(bad, path, {"surprise": 1})
        need = [".".join(map(str, path))]
    elif kind == "unknown_key":
        path = draw(st.sampled_from([p for p in _mappings(doc) if p[:1] not in (("policies",),)
                                     and p != ("truth", "mismatch") and p != ("controllers",)]))
        target = bad
        for k in path:
            target = target[k]
        target["zz_unknown"] = 1
        need = ["zz_unknown"]
    elif kind == "unknown_device":
        bad["truth"]["mismatch"]["GPU#9"] = {"alpha": 2.0}
        need = ["truth.mismatch.GPU#9"]
    elif kind == "wrong_factor":
        dev = draw(st.sampled_from(sorted(DEVICES)))
        k = "c" if DEVICES[dev] == "llm" else draw(st.sampled_from(["alpha", "beta"]))
        bad["truth"]["mismatch"][dev] = {k: 2.0}
        need = [f"truth.mismatch.{dev}.{k}"]
    elif kind == "unknown_policy":
        bad["policies"]["e33"] = {}
        need = ["policies.e33"]
    elif kind == "unknown_param":
        bad["policies"]["e3"]["zz_param"] = 1
        need = ["policies.e3.zz_param"]
    else:
        bad["controllers"]["rulez"] = {}
        need = ["controllers.rulez"]
    note(f"mutation {kind}: {need}")
    return doc, bad, need


def _check(doc: dict, folder: Path) -> dict:
    p = folder / "config.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    cfg = load_config(p)
    check_sweep(cfg, REPO_ROOT)
    return cfg


@given(doc=valid_configs(), policy=st.sampled_from(CHEAP_POLICIES), seed=st.integers(0, 10**6))
@examples(12)
def test_random_valid_configs_run(doc, policy, seed):
    from e3.experiment.run import simulate

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _check(doc, Path(tmp))
        s = simulate(cfg, "semantic", policy, seed, Path(tmp) / "run", n_tasks=cfg["simulation"]["horizon_tasks"])
        assert s["n_tasks"] == cfg["simulation"]["horizon_tasks"]
        assert all(math.isfinite(v) for v in s["latency_ms"].values())
        json.loads((Path(tmp) / "run/summary.json").read_text(), parse_constant=pytest.fail)


@given(case=config_mutations())
@examples(30)
def test_mutated_configs_fail_naming_the_field(case):
    doc, bad, need = case
    with tempfile.TemporaryDirectory() as tmp:
        _check(doc, Path(tmp))  # the unmutated document is valid
        with pytest.raises(E3Error) as ei:
            _check(bad, Path(tmp))
    msg = str(ei.value)
    assert isinstance(ei.value, ConfigError) and all(n in msg for n in need), msg


# --- scenario documents ----------------------------------------------------------------------------
def _windows(draw, devices, horizon, max_per_device=2):
    out = []
    for d in devices:
        cuts = sorted(draw(st.lists(st.integers(0, horizon), min_size=0, max_size=2 * max_per_device, unique=True)))
        out += [(d, a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False)]
    return out


@st.composite
def valid_scenarios(draw, horizon=60) -> dict:
    """Non-overlapping windows per device; drift on LLM devices; churn on at most one device of
    each kind, so every kind always keeps a device."""
    sem = _windows(draw, draw(st.lists(st.sampled_from(sorted(DEVICES)), unique=True)), horizon)
    drift = _windows(draw, draw(st.lists(st.sampled_from(["LLM#0", "LLM#1"]), unique=True, max_size=2)), horizon)
    churners = [draw(st.sampled_from(ds)) for ds in (["LLM#0", "LLM#1"], ["SD#0", "SD#1"]) if draw(st.booleans())]
    churn = _windows(draw, churners, horizon)
    return {
        "name": "gen", "description": "generated", "block": draw(st.sampled_from(["warmup", "dynamic", "other"])),
        "warmup_budget_tasks": draw(st.integers(0, horizon)),
        "semantic": [{"device": d, "start_task": a, "end_task": b, "label": "l", "slowdown": draw(st.floats(1, 5))}
                     for d, a, b in sem],
        "churn": [{"device": d, "leave_task": a, "return_task": b} for d, a, b in churn],
        "drift": [{"device": d, "start_task": a, "end_task": b, "factor": draw(finite_pos)} for d, a, b in drift],
    }


@st.composite
def scenario_mutations(draw):
    doc = draw(valid_scenarios())
    bad = copy.deepcopy(doc)
    kinds = ["name", "unknown_key", "unknown_device", "drift_on_sdxl", "all_away", "non_finite", "wrong_type"]
    if doc["semantic"]:
        kinds += ["end_before_start", "negative", "overlap"]
    kind = draw(st.sampled_from(kinds))
    if kind == "name":
        bad["name"] = "other"
        need = ["'name'", "other"]
    elif kind == "unknown_key":
        bad["zz_unknown"] = 1
        need = ["zz_unknown"]
    elif kind == "unknown_device":
        bad["churn"].append({"device": "GPU#9", "leave_task": 1, "return_task": 2})
        need = [f"churn.{len(doc['churn'])}.device", "GPU#9"]
    elif kind == "drift_on_sdxl":
        bad["drift"].append({"device": "SD#0", "start_task": 1, "end_task": 2, "factor": 2.0})
        need = [f"drift.{len(doc['drift'])}.device"]
    elif kind == "all_away":
        bad["churn"] = [{"device": "SD#0", "leave_task": 5, "return_task": 9},
                        {"device": "SD#1", "leave_task": 5, "return_task": 9}]
        need = ["'churn'", "every sdxl device is away"]
    elif kind == "non_finite":
        bad["warmup_budget_tasks"] = draw(bad_number)
        need = ["warmup_budget_tasks"]
    elif kind == "wrong_type":
        bad["description"] = ["a", "list"]
        need = ["description"]
    elif kind == "end_before_start":
        w = bad["semantic"][0]
        w["end_task"] = w["start_task"]
        need = ["semantic.0"]
    elif kind == "negative":
        bad["semantic"][0]["slowdown"] = -draw(finite_pos)
        need = ["semantic.0.slowdown"]
    else:
        bad["semantic"].append(dict(bad["semantic"][0]))
        need = [f"semantic.{len(doc['semantic'])}", "overlaps"]
    note(f"mutation {kind}")
    return doc, bad, need


def _scenario_file(doc: dict, folder: Path) -> Path:
    p = folder / "gen.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@given(doc=valid_scenarios(), policy=st.sampled_from(["round_robin", "e3", "oracle"]))
@examples(10)
def test_random_valid_scenarios_run(doc, policy):
    from e3.experiment.run import simulate

    cfg = load_config()
    with tempfile.TemporaryDirectory() as tmp:
        p = _scenario_file(doc, Path(tmp))
        assert load_scenario(p, DEVICES).name == "gen"
        s = simulate(cfg, str(p), policy, 1, Path(tmp) / "run", n_tasks=60)
        assert s["n_tasks"] == 60 and math.isfinite(s["latency_ms"]["max"])


@given(case=scenario_mutations())
@examples(40)
def test_mutated_scenarios_fail_naming_the_field(case):
    doc, bad, need = case
    with tempfile.TemporaryDirectory() as tmp:
        load_scenario(_scenario_file(doc, Path(tmp)), DEVICES)
        with pytest.raises(ConfigError) as ei:
            load_scenario(_scenario_file(bad, Path(tmp)), DEVICES)
    assert all(n in str(ei.value) for n in need), str(ei.value)


# --- the LoadGen parser ------------------------------------------------------------------------
def _real_logs() -> list[tuple[str, str, str]]:
    """(path relative to the mirror, benchmark, scenario) of every summary log in the priors."""
    out = []
    for line in (REPO_ROOT / "results/priors/edge_mobile_generative.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((f"{get_round(r['round']).folder}/{r['provenance']['log_file']}", r["benchmark"], r["scenario"]))
    return sorted(out)


LOGS = _real_logs()
_NUMLINE = re.compile(r"^(?P<head>[^:\n]+:[ \t]*|[ \t]*\* Early stopping [^:]+: )(?P<num>[0-9]+(?:\.[0-9]+)?)[ \t]*$", re.M)


@st.composite
def corruptions(draw, text: str, scenario: str):
    lines = text.split("\n")
    numeric = [m for m in _NUMLINE.finditer(text)]
    kinds = ["truncate", "delete_line", "replace_number"] + (["cut_digits", "repeat_line"] if scenario == "SingleStream" else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "truncate":
        return kind, text[: draw(st.integers(0, len(text) - 1))]
    if kind == "delete_line":
        i = draw(st.integers(0, len(lines) - 1))
        return kind, "\n".join(lines[:i] + lines[i + 1:])
    m = draw(st.sampled_from(numeric))
    num = m["num"]
    if kind == "replace_number":
        new = draw(st.sampled_from(["nan", "NaN", "inf", "-inf", f"-{num}", "", "n/a", f"{num}x", "1_0", "+1"]))
    else:
        digits = [i for i, c in enumerate(num) if c.isdigit()]
        assume(len(digits) > 1)
        k = draw(st.integers(1, len(digits) - 1))
        drop = set(draw(st.lists(st.sampled_from(digits), min_size=k, max_size=k, unique=True)))
        new = "".join(c for i, c in enumerate(num) if i not in drop).lstrip(".") or "0"
        assume(new != num and not new.startswith("."))
    if kind == "repeat_line":
        return kind, text[: m.end()] + "\n" + m["head"] + new + text[m.end():]
    return kind, text[: m.start("num")] + new + text[m.end("num"):]


@given(data=st.data(), which=st.sampled_from(LOGS))
@examples(50)
def test_corrupted_loadgen_logs_give_an_error_or_the_right_values(mlperf_mirror, data, which):
    rel, bench, scenario = which
    src = mlperf_mirror / rel
    text = src.read_text()
    good = parse_summary_log(src, bench, scenario)
    kind, bad = data.draw(corruptions(text, scenario))
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "mlperf_log_summary.txt"
        p.write_text(bad)
        try:
            got = parse_summary_log(p, bench, scenario)
        except InputError as exc:
            assert str(p) in str(exc)
            return
    note(f"{kind} accepted")
    used = REQUIRED[(BENCHMARKS[bench], scenario)]
    assert {k: got[k] for k in used} == {k: good[k] for k in used}
    assert set(got) <= set(good)
    assert all(isinstance(v, bool) or (math.isfinite(v) and v >= 0) for v in got.values())


# --- the command line ---------------------------------------------------------------------------
OUT_KINDS = ["new", "nested_new", "empty_dir", "previous_run", "foreign_dir", "file", "dot"]


@given(seed=st.one_of(st.integers(-10, 10**9).map(str), st.sampled_from(["x", "1.5", "", "-0", "1e3"])),
       tasks=st.one_of(st.none(), st.integers(-3, 15).map(str), st.sampled_from(["ten", "2.0"])),
       scenario=st.sampled_from(["warmup_0", "semantic", "semantik", "config/scenarios/drift.yaml",
                                 "no/such.yaml", "../x"]),
       policy=st.sampled_from(["round_robin", "e3", "jsq", "nope"]),
       controller=st.sampled_from([None, "rules", "none", "llm_typo"]),
       fmt=st.sampled_from([None, "csv", "parquet", "xlsx"]),
       out_kind=st.sampled_from(OUT_KINDS))
@examples(40)
def test_cli_arguments_exit_0_or_2_and_never_delete(monkeypatch, seed, tasks, scenario, policy, controller, fmt,
                                                   out_kind):
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        monkeypatch.chdir(t)
        (t / "config").symlink_to(REPO_ROOT / "config")
        out = {"new": "run", "nested_new": "a/b/run", "empty_dir": "empty", "previous_run": "prev",
               "foreign_dir": "mine", "file": "afile", "dot": "."}[out_kind]
        (t / "empty").mkdir()
        (t / "prev").mkdir()
        (t / "prev" / "summary.json").write_text("{}")
        (t / "mine").mkdir()
        (t / "mine" / "notes.txt").write_text("keep")
        (t / "afile").write_text("keep")
        argv = ["simulate", "--scenario", scenario, "--policy", policy, f"--seed={seed}", "--quiet", "--out", out]
        argv += [] if tasks is None else [f"--tasks={tasks}"]
        argv += [] if controller is None else ["--controller", controller]
        argv += [] if fmt is None else ["--format", fmt]
        if tasks is None:
            argv += ["--tasks", "5"]  # keep the run short; the default horizon is exercised elsewhere
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: usage error
            rc = exc.code
        assert rc in (0, 2)
        assert (t / "mine" / "notes.txt").read_text() == "keep" and (t / "afile").read_text() == "keep"
        assert sorted(p.name for p in (t / "mine").iterdir()) == ["notes.txt"]
        if rc == 0:
            assert json.loads((t / out / "summary.json").read_text())["n_tasks"] >= 1
        leftovers = [p.name for p in t.rglob("*") if p.name.endswith((".partial", ".old"))]
        assert not leftovers
