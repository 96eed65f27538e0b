"""Issue 13: each defect found by trying to break e3, pinned by a test that fails on the old code.

Sections follow the issue: 1 sweep typos, 2 ``--out``, 3 NaN/infinity/negative values, 4 silent
no-ops, 5 weak edges. Subprocess Snakemake runs are in ``test_workflow_checks`` (dry runs only).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from e3.checks import check_sweep
from e3.cli import main
from e3.config import load_config
from e3.errors import ConfigError, E3Error, InputError
from e3.io import (
    SIM_RUN_FILES,
    check_run_dir,
    prepare_run_dir,
    public_mode,
    publish_run_dir,
    read_jsonl,
    write_json_atomic,
    write_text_atomic,
)
from e3.mlperf.loadgen import cross_check_detail, parse_summary_log
from e3.mlperf.pool import resolve_pool
from e3.mlperf.priors import load_priors

V40_SDXL = ("inference_results_v4.0/closed/NVIDIA/results/Orin_TRT/stable-diffusion-xl/SingleStream/"
            "performance/run_1/mlperf_log_summary.txt")
THOR = ("inference_results_v5.1/open/NVIDIA/results/Jetson-Thor_TRT/llama3.1-8b-edge/SingleStream/"
        "performance/run_1")


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


def _write_cfg(tmp_path: Path, repo: Path, edit) -> Path:
    import yaml

    doc = yaml.safe_load((repo / "config/config.yaml").read_text())
    edit(doc)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _simulate(tmp_path, *extra, out=None, scenario="warmup_0"):
    return main(["simulate", "--scenario", scenario, "--policy", "round_robin", "--seed", "1",
                 "--tasks", "12", "--quiet", "--out", str(out or tmp_path / "run"), *extra])


# --- 1. sweep names are checked before the DAG ---------------------------------------------------
@pytest.mark.parametrize("edit, field, needle", [
    (lambda s: s.update(scenarios=["semantic", "semantik"]), "sweep.scenarios.1", "semantik"),
    (lambda s: s.update(cells=[{"policy": "round_robbin"}]), "sweep.cells.0.policy", "round_robbin"),
    (lambda s: s.update(cells=[{"policy": "e3", "controller": "rulez"}]), "sweep.cells.0.controller", "rulez"),
    (lambda s: s.update(cells=[{"policy": "jsq", "controller": "rules"}]), "sweep.cells.0.controller",
     "no meta-controller"),
    (lambda s: s.update(plugins=["my_baselines/nothere.py"]), "sweep.plugins.0", "nothere.py"),
])
def test_sweep_typos_fail_before_the_dag(cfg, repo, edit, field, needle):
    c = copy.deepcopy(cfg)
    edit(c["sweep"])
    with pytest.raises(ConfigError) as ei:
        check_sweep(c, repo)
    assert f"'{field}'" in str(ei.value) and needle in str(ei.value)


@pytest.mark.parametrize("section, edit, field, needle", [
    ("fairness", lambda s: s.update(scenarios=["mec_city", "mec_citty"]), "fairness.sweep.scenarios.1", "mec_citty"),
    ("fairness", lambda s: s.update(cells=[{"policy": "lyapunov"}]), "fairness.sweep.cells.0.policy", "lyapunov"),
    ("fairness", lambda s: s.update(cells=[{"policy": "lyapunov_dpp", "controller": "v2"}]),
     "fairness.sweep.cells.0.controller", "v2"),
    ("placement", lambda s: s.update(scenarios=["agents_globl"]), "placement.sweep.scenarios.0", "agents_globl"),
    ("placement", lambda s: s.update(cells=[{"policy": "antllm", "controller": "rules"}]),
     "placement.sweep.cells.0.controller", "rules"),
    ("placement", lambda s: s.update(cells=[{"policy": "aco", "scenarios": ["agents_global_chrn"]}]),
     "placement.sweep.cells.0.scenarios", "agents_global_chrn"),
])
def test_system_sweep_typos_fail_before_the_dag(cfg, repo, section, edit, field, needle):
    # the fairness and placement sweeps are checked like E3's (issue 13's rule, extended)
    c = copy.deepcopy(cfg)
    edit(c[section]["sweep"])
    with pytest.raises(ConfigError) as ei:
        check_sweep(c, repo)
    assert f"'{field}'" in str(ei.value) and needle in str(ei.value)


def test_shipped_sweeps_pass_the_check(cfg, repo):
    check_sweep(cfg, repo)
    test = load_config(repo / "config/config.yaml", overlays=[repo / "config/test/config.yaml"])
    check_sweep(test, repo)


# --- 2. --out never deletes what a run did not create --------------------------------------------
def test_out_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    keep = tmp_path / "results"
    (keep / "tables").mkdir(parents=True)
    (keep / "tables" / "table5.csv").write_text("frozen\n")
    (keep / "MANIFEST.json").write_text("{}\n")
    assert _simulate(tmp_path, out=keep) == 2
    err = capsys.readouterr().err
    assert "not a previous run" in err and "MANIFEST.json" in err
    assert (keep / "tables" / "table5.csv").read_text() == "frozen\n" and (keep / "MANIFEST.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["results"]  # no staging folder left behind


def test_out_replaces_a_previous_run_only(tmp_path):
    out = tmp_path / "run"
    assert _simulate(tmp_path, out=out) == 0
    first = json.loads((out / "summary.json").read_text())
    assert _simulate(tmp_path, out=out) == 0
    assert json.loads((out / "summary.json").read_text()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("make, needle", [
    (lambda d: (d / "afile").write_text("x") and d / "afile", "is a file"),
    (lambda d: Path("."), "not the working folder"),
    (lambda d: d, "not the working folder"),
])
def test_out_file_or_dot_is_a_clear_error(tmp_path, monkeypatch, capsys, make, needle):
    monkeypatch.chdir(tmp_path)
    out = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _simulate(tmp_path, out=out) == 2
    assert needle in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_concurrent_runs_get_private_staging_folders(tmp_path):
    out = tmp_path / "run"
    a, b = prepare_run_dir(out), prepare_run_dir(out)
    assert a != b and a.parent == b.parent == tmp_path
    for s, text in ((a, "a"), (b, "b")):
        (s / "summary.json").write_text(text)
    publish_run_dir(a, out)
    publish_run_dir(b, out)
    assert (out / "summary.json").read_text() == "b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_previous_run_with_snakemake_deleted_outputs_is_still_a_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "timing.json").write_text("{}")  # Snakemake removed summary.json and tasks.parquet
    assert check_run_dir(out) == out
    assert SIM_RUN_FILES >= {"summary.json", "tasks.parquet", "timing.json", "audit.jsonl"}


# --- 3. NaN, infinities and negative values ------------------------------------------------------
@pytest.mark.parametrize("value, name", [(".nan", "NaN"), (".inf", "infinity"), ("-.inf", "-infinity")])
def test_config_nan_and_infinity_rejected_by_name(tmp_path, repo, value, name):
    p = tmp_path / "c.yaml"
    text = (repo / "config/config.yaml").read_text().replace("arrival_rate_per_s: 0.26", f"arrival_rate_per_s: {value}")
    p.write_text(text)
    with pytest.raises(ConfigError, match=rf"'workload.arrival_rate_per_s': {name} is not allowed"):
        load_config(p)


def test_scenario_nan_rejected_by_name(tmp_path):
    from e3.sim.scenario import load_scenario

    p = tmp_path / "s.yaml"
    p.write_text("name: s\ndescription: d\ndrift:\n  - {device: 'LLM#0', start_task: 1, end_task: 9, factor: .nan}\n")
    with pytest.raises(ConfigError, match=r"'drift.0.factor': NaN is not allowed"):
        load_scenario(p, {"LLM#0": "llm"})


@pytest.mark.parametrize("value, needle", [
    ("nan", "NaN is not a measurement"), ("inf", "infinity is not a measurement"),
    ("-7480829000", "negative value"), ("1_294_515_849", "not a number as LoadGen writes it"),
])
def test_loadgen_non_finite_or_negative_rejected(mlperf_mirror, tmp_path, value, needle):
    src = (mlperf_mirror / V40_SDXL).read_text()
    p = tmp_path / "mlperf_log_summary.txt"
    p.write_text(src.replace("99.00 percentile latency (ns)   : 12945158490",
                             f"99.00 percentile latency (ns)   : {value}"))
    with pytest.raises(InputError, match=needle):
        parse_summary_log(p, "stable-diffusion-xl", "SingleStream")


@pytest.mark.parametrize("cut", [
    lambda t: t.replace(": 12945158490\n99.90", ": 129451\n99.90"),           # digits lost mid-file
    lambda t: t[: t.index("99.90 percentile latency") - 9],                   # file cut in a number
    lambda t: t.replace("90th percentile latency (ns) : 12938283618", "90th percentile latency (ns) : 1293828361"),
])
def test_loadgen_number_cut_short_without_detail_log_is_an_error(mlperf_mirror, tmp_path, cut):
    p = tmp_path / "mlperf_log_summary.txt"
    p.write_text(cut((mlperf_mirror / V40_SDXL).read_text()))
    with pytest.raises(InputError) as ei:
        parse_summary_log(p, "stable-diffusion-xl", "SingleStream")
    assert "cut short" in str(ei.value) or "truncated" in str(ei.value) or "headline" in str(ei.value)


def test_detail_log_nan_is_rejected(mlperf_mirror, tmp_path):
    m = parse_summary_log(mlperf_mirror / THOR / "mlperf_log_summary.txt", "llama3.1-8b-edge", "SingleStream")
    text = (mlperf_mirror / THOR / "mlperf_log_detail.txt").read_text()
    lines = [ln for ln in text.splitlines() if '"result_99.00_percentile_latency_ns"' in ln]
    assert lines
    rec = json.loads(lines[0][len(":::MLLOG "):])
    bad = ":::MLLOG " + json.dumps({**rec, "value": "nan"})
    p = tmp_path / "mlperf_log_detail.txt"
    p.write_text(text.replace(lines[0], bad))
    with pytest.raises(InputError, match="NaN"):
        cross_check_detail(m, p)


def test_priors_and_json_outputs_refuse_nan(tmp_path, repo):
    rec = (repo / "results/priors/edge_mobile_generative.jsonl").read_text().splitlines()[0]
    p = tmp_path / "p.jsonl"
    p.write_text(rec.replace('"latency_ms_p99": ', '"latency_ms_p99": NaN, "x_ms_p1": ', 1) + "\n")
    with pytest.raises(InputError, match="non-finite"):
        read_jsonl(p)
    neg = json.loads(rec)
    neg["metrics"]["latency_ms_p99"] = -7480.829
    p.write_text(json.dumps(neg) + "\n")
    with pytest.raises(InputError, match="latency_ms_p99"):
        load_priors(p)
    with pytest.raises(E3Error, match="non-finite"):
        write_json_atomic(tmp_path / "s.json", {"latency_ms": float("nan")})
    assert not (tmp_path / "s.json").exists()


# --- 4. silent no-ops ----------------------------------------------------------------------------
@pytest.mark.parametrize("edit, needle", [
    (lambda d: d["truth"]["mismatch"].update({"GPU#9": {"alpha": 2.0}}), "'truth.mismatch.GPU#9': unknown device"),
    (lambda d: d["truth"]["mismatch"].update({"SD#0": {"alpha": 2.0}}), "'truth.mismatch.SD#0.alpha'"),
    (lambda d: d["truth"]["mismatch"].update({"LLM#1": {"c": 2.0}}), "'truth.mismatch.LLM#1.c'"),
    (lambda d: d["pool"][2].update(scenario="Offline"), "'pool.2.scenario': 'Offline'"),
])
def test_config_entries_must_match_a_device_or_parameter(tmp_path, repo, edit, needle):
    with pytest.raises(ConfigError) as ei:
        load_config(_write_cfg(tmp_path, repo, edit))
    assert needle in str(ei.value)


def test_offline_pool_entry_is_a_config_error_not_a_keyerror(cfg):
    pool = copy.deepcopy(cfg["pool"])
    pool[2]["scenario"] = "Offline"
    with pytest.raises(ConfigError, match="SingleStream"):
        resolve_pool(load_priors(cfg["priors"]["frozen"]), pool, 1024)


@pytest.mark.parametrize("args, needle", [
    (["--tasks", "0"], "--tasks: must be >= 1"), (["--seed", "-3"], "--seed: must be >= 0"),
])
def test_tasks_zero_and_negative_seed_are_refused(tmp_path, capsys, args, needle):
    argv = ["simulate", "--scenario", "warmup_0", "--policy", "round_robin", "--seed", "1",
            "--out", str(tmp_path / "run"), *args]
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2 and needle in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_build_simulation_refuses_zero_tasks(cfg, tmp_path):
    from e3.experiment.run import build_simulation

    with pytest.raises(ConfigError, match="horizon"):
        build_simulation(cfg, "warmup_0", "round_robin", 1, 0, tmp_path / "t.parquet")


def test_scenario_name_must_match_its_file(tmp_path):
    from e3.sim.scenario import load_scenario

    p = tmp_path / "mine.yaml"
    p.write_text("name: semantic\ndescription: copied and not renamed\n")
    with pytest.raises(ConfigError, match=r"'name': 'semantic' differs from the file name 'mine'"):
        load_scenario(p, {})


def test_event_past_the_horizon_is_a_visible_warning(tmp_path, capsys):
    assert _simulate(tmp_path, scenario="semantic") == 0  # 12 tasks: every window starts later
    err = capsys.readouterr().err
    assert "e3: warning:" in err and "'semantic.0.start_task'" in err and "no effect" in err


# --- 5. weak edges ------------------------------------------------------------------------------
def test_missing_plugin_file_is_a_clear_error(tmp_path, capsys):
    assert _simulate(tmp_path, "--plugin", str(tmp_path / "nothere.py")) == 2
    err = capsys.readouterr().err
    assert "nothere.py" in err and "file not found" in err
    assert _simulate(tmp_path, "--plugin", "no_such_module_e3") == 2
    assert "module not found" in capsys.readouterr().err


def test_fallbacks_above_threshold_warn_on_stderr(cfg, tmp_path, capsys):

    from e3.experiment.run import simulate
    from tests.llm_fakes import FlakyLLM, install

    install(FlakyLLM(good=1))  # answers once, then the provider is down
    c = copy.deepcopy(cfg)
    c["controllers"]["llm"].update({"model": "e3test/flaky", "api_base": None,
                                    "mode": "live", "cache_dir": str(tmp_path / "cache"), "frozen": None,
                                    "timeout_s": 2})
    c["policies"]["e3"] = {"controller": "llm"}
    s = simulate(c, "semantic", "e3", 1, tmp_path / "run", n_tasks=60)
    assert s["policy_summary"]["llm_fallbacks"] == s["policy_summary"]["controller_calls"] - 1 > 0
    err = capsys.readouterr().err
    assert "e3: warning:" in err and "fell back to the rules controller" in err and "provider_error" in err


def test_fallback_warning_threshold():
    from e3.agent.controllers import fallback_warning

    assert fallback_warning({"policy_summary": {"controller_calls": 20, "llm_fallbacks": 2}}) is None
    assert fallback_warning({"policy_summary": {"controller_calls": 20, "llm_fallbacks": 3}})
    assert fallback_warning({"policy_summary": {}}) is None


def test_scenario_hash_is_independent_of_the_clone_location(tmp_path, repo):
    from e3.sim.scenario import load_scenario

    kinds = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}
    other = tmp_path / "elsewhere" / "semantic.yaml"
    other.parent.mkdir()
    shutil.copyfile(repo / "config/scenarios/semantic.yaml", other)
    a, b = load_scenario("semantic", kinds), load_scenario(other, kinds)
    assert a.source != b.source and a.content_hash() == b.content_hash()


def test_outputs_are_world_readable_under_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
        assert _simulate(tmp_path) == 0
        assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
        assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").iterdir()} == {0o644}
        os.umask(0o077)
        assert public_mode() == 0o600 and public_mode(directory=True) == 0o700
    finally:
        os.umask(old)


def _fake_tool(folder: Path, name: str, script: str) -> None:
    p = folder / name
    p.write_text("#!/bin/sh\n" + script + "\n")
    p.chmod(0o755)


@pytest.mark.parametrize("tools, needle", [
    ({}, "skipped: no latexmk on PATH"),
    # TeX Live base: latexmk and kpsewhich, no booktabs.sty
    ({"latexmk": "exit 12", "kpsewhich": 'case "$1" in booktabs.sty) exit 1;; *) echo /tex/$1;; esac'},
     "skipped: TeX files missing: booktabs.sty"),
    # no kpsewhich: the engine's own "not found" line names the file
    ({"latexmk": "echo \"! LaTeX Error: File \\`booktabs.sty' not found.\"; exit 12"},
     "skipped: TeX files missing: booktabs.sty"),
    ({"latexmk": "/bin/mkdir -p build && : > build/main.pdf", "kpsewhich": "echo /tex/$1"}, "built "),
])
def test_paper_pdf_builds_or_skips_with_a_reason(tmp_path, repo, monkeypatch, tools, needle):
    from e3.analysis.pdf import build_pdf

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, script in tools.items():
        _fake_tool(bindir, name, script)
    _fake_tool(bindir, "sh", 'exec /bin/sh "$@"')
    monkeypatch.setenv("PATH", str(bindir))
    paper = tmp_path / "paper"
    paper.mkdir()
    shutil.copyfile(repo / "paper/main.tex", paper / "main.tex")
    line = build_pdf(paper / "main.tex", tmp_path / "main.status", tmp_path / "pdf.log")
    assert line.startswith(needle), line
    assert (tmp_path / "main.status").read_text().startswith(needle)


def test_paper_pdf_other_failures_still_fail(tmp_path, repo, monkeypatch):
    from e3.analysis.pdf import build_pdf

    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_tool(bindir, "latexmk", "echo 'Undefined control sequence'; exit 12")
    monkeypatch.setenv("PATH", str(bindir))
    shutil.copyfile(repo / "paper/main.tex", tmp_path / "main.tex")
    with pytest.raises(E3Error, match="latexmk failed"):
        build_pdf(tmp_path / "main.tex", tmp_path / "main.status", tmp_path / "pdf.log")
    assert not (tmp_path / "main.status").exists()


def test_readme_explains_interrupted_runs(repo):
    text = (repo / "README.md").read_text()
    assert "--rerun-incomplete" in text and "IncompleteFilesException" in text


def test_mirror_digest_follows_content(tmp_path):
    from e3.mlperf.fetch import mirror_digest

    f = tmp_path / "inference_results_v4.0" / "a.txt"
    f.parent.mkdir()
    f.write_text("1")
    d1 = mirror_digest(tmp_path, ["v4.0"])
    f.write_text("2")
    assert mirror_digest(tmp_path, ["v4.0"]) != d1 and mirror_digest(None, ["v4.0"]) == ""


@pytest.mark.parametrize("scenario,policy,controller", [("mec_city", "round_robin", "none"),
                                                         ("agents_global", "greedy_nearest", "none")])
def test_other_systems_never_delete_a_folder_that_is_not_a_run(tmp_path, scenario, policy, controller):
    # the fairness and placement runs publish through e3.io.staged_run_dir like E3's
    from e3.cli import main

    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "notes.txt").write_text("not a run")
    rc = main(["simulate", "--scenario", scenario, "--policy", policy, "--controller", controller, "--seed", "1",
               "--quiet", "--out", str(keep)])
    assert rc == 2
    assert (keep / "notes.txt").read_text() == "not a run"
