"""Issue 33, defect 12: two runs aimed at one folder at once, and SIGTERM of `e3 simulate`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from e3.errors import E3Error
from e3.io import staged_run_dir


def test_a_second_run_into_the_same_folder_at_once_fails_clearly(tmp_path):
    out = tmp_path / "runs" / "seed1"
    with staged_run_dir(out) as staging:
        (staging / "summary.json").write_text("{}")
        with pytest.raises(E3Error, match="another e3 run is writing this folder now"):
            with staged_run_dir(out):
                pass
    assert (out / "summary.json").is_file()
    assert not list(out.parent.glob(".seed1.*"))  # no lock file or staging folder left behind
    with staged_run_dir(out) as staging:  # the lock was released
        (staging / "summary.json").write_text("{}")


@pytest.mark.slow
def test_sigterm_of_e3_simulate_leaves_no_partial_folder(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "e3.cli", "simulate", "--scenario", "warmup_0", "--policy",
                             "e3", "--seed", "1", "--tasks", "400000", "--quiet", "--out", str(out)],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".run.*.partial")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert not list(tmp_path.glob(".run*")) and not out.exists()


def test_the_clone_you_run_in_is_the_clone_you_read(tmp_path, repo):
    """Issue 33, defect 2: with several clones sharing one environment, `e3 simulate` run in a
    clone reads that clone's config and scenario files, not those of the clone e3 is installed from."""
    import json
    import shutil

    from e3.config import config_hash, load_config, project_root

    clone = tmp_path / "clone"
    shutil.copytree(repo / "config", clone / "config")
    (clone / "results" / "priors").mkdir(parents=True)
    shutil.copy(repo / "results/priors/edge_mobile_generative.jsonl", clone / "results/priors/")
    shutil.copy(repo / "Snakefile", clone / "Snakefile")
    text = (clone / "config/config.yaml").read_text()
    rate = load_config(repo / "config/config.yaml")["workload"]["arrival_rate_per_s"]
    (clone / "config/config.yaml").write_text(text.replace(f"arrival_rate_per_s: {rate}", "arrival_rate_per_s: 0.05"))
    sc = (clone / "config/scenarios/drift.yaml")
    sc.write_text(sc.read_text().replace("factor: 2.0}", "factor: 7.0}"))
    assert project_root(clone / "config") == clone and project_root(tmp_path, install=repo) == repo
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("E3_ROOT", None)
    subprocess.run([sys.executable, "-m", "e3.cli", "simulate", "--scenario", "drift", "--policy", "round_robin",
                    "--seed", "1", "--tasks", "20", "--quiet", "--out", str(tmp_path / "r")],
                   cwd=clone, env=env, check=True, capture_output=True)
    s = json.loads((tmp_path / "r/summary.json").read_text())
    assert s["config_hash"] == config_hash(load_config(clone / "config/config.yaml"))
    from e3.sim.scenario import load_scenario

    kinds = {"LLM#0": "llm", "LLM#1": "llm", "SD#0": "sdxl", "SD#1": "sdxl"}
    assert s["scenario_hash"] == load_scenario(sc, kinds, 20).content_hash()


@pytest.mark.parametrize("mix, field", [("{gpt2: 0.5, gpt2_large: 0.5, blip: 0.0, stable_diffusion: 0.1}", "mix.blip"),
                                        ("{gpt2: 0.5, gpt2_large: 0.5}", "mix")])
def test_a_fairness_mix_that_leaves_a_model_without_requests_is_refused_before_the_run(tmp_path, repo, mix, field):
    """Issue 33, defect 10: a model at share 0, or a partial mix, failed only after the whole run
    ("refusing to write NaN to summary.json")."""
    from e3.config import load_config
    from e3.errors import ConfigError
    from e3.fairness.run import simulate as fairness_simulate

    text = (repo / "config/fairness/mec_city.yaml").read_text()
    p = tmp_path / "mixed.yaml"
    p.write_text(text.replace("mix: {gpt2: 0.25, gpt2_large: 0.25, blip: 0.25, stable_diffusion: 0.25}", f"mix: {mix}"))
    cfg = load_config(repo / "config/config.yaml")
    with pytest.raises(ConfigError, match=rf"mixed.yaml: field '{field}'"):
        fairness_simulate(cfg, str(p), "round_robin", None, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_fairness_system_without_nodes_is_a_config_error(repo):
    """Issue 33, defect 11: zero nodes ended in a traceback (min() of an empty sequence)."""
    import copy

    from e3.config import load_config
    from e3.errors import ConfigError
    from e3.fairness.system import build_system

    cfg = copy.deepcopy(load_config(repo / "config/config.yaml"))
    cfg["fairness"]["nodes"]["gpu"]["count"] = cfg["fairness"]["nodes"]["cpu"]["count"] = 0
    with pytest.raises(ConfigError, match=r"fairness.nodes: gpu.count \+ cpu.count is 0"):
        build_system(cfg)


@pytest.mark.parametrize("events, match", [
    ("[{server: fra1, leave_s: 600, return_s: 1200}, {server: fra1, leave_s: 900, return_s: 1500}]", "overlap"),
    (None, "every server is out at 100 s"),
])
def test_an_impossible_placement_outage_is_refused(tmp_path, repo, events, match):
    """Issue 33, defect 5: overlapping leave windows on one server, and an outage of every server,
    were simulated with rc 0."""
    import yaml

    from e3.config import load_config
    from e3.errors import ConfigError
    from e3.placement.run import load_scenario
    from e3.placement.system import build_system

    cfg = load_config(repo / "config/config.yaml")
    system = build_system(cfg)
    raw = yaml.safe_load((repo / "config/agents/agents_global_churn.yaml").read_text())
    raw["server_events"] = (yaml.safe_load(events) if events else
                            [{"server": s, "leave_s": 100, "return_s": 200} for s in system.servers])
    p = tmp_path / "outage.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=match):
        load_scenario(p, system)


def test_manifest_refuses_an_aggregate_of_another_configuration(tmp_path, repo):
    """Issue 33, defect 1: after a test-configuration run, outputs restored with `git checkout` look
    up to date; the MANIFEST step now checks runs.csv against this configuration's runs."""
    import pandas as pd

    from e3.analysis.paper import check_aggregate_matches
    from e3.errors import E3Error

    df = pd.DataFrame({"scenario": ["drift", "drift"], "policy": ["oracle", "e3"], "controller": ["none", "rules"],
                       "seed": [1, 1], "config_hash": ["h", "h"]})
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    runs = [("drift", "oracle", "none", 1), ("drift", "e3", "rules", 1)]
    check_aggregate_matches(p, "h", runs)
    with pytest.raises(E3Error, match="not this configuration's other.*--forcerun aggregate"):
        check_aggregate_matches(p, "other", runs)
    with pytest.raises(E3Error, match="0 runs not in this sweep .* and 1 missing"):
        check_aggregate_matches(p, "h", [*runs, ("drift", "e3", "rules", 2)])


def test_an_infeasible_deployment_names_the_model_that_fits_nowhere(repo):
    """Issue 33 (UX): the error did not say which model does not fit."""
    import copy

    from e3.config import load_config
    from e3.errors import E3Error
    from e3.fairness.run import load_inputs

    cfg = copy.deepcopy(load_config(repo / "config/config.yaml"))
    cfg["fairness"]["models"]["stable_diffusion"]["memory_gb"] = 500.0
    with pytest.raises(E3Error, match=r"model\(s\) \['stable_diffusion'\] fit on no node"):
        load_inputs(cfg, "mec_city", "static_sect", None)


def test_a_full_disk_or_a_read_only_folder_is_an_e3_error_not_a_traceback(tmp_path, monkeypatch, capsys):
    """Issue 33, defect 11 (root ignores permissions here, so the OS errors are injected)."""
    import errno

    import e3.io
    from e3.cli import main

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "run"))

    monkeypatch.setattr(e3.io, "prepare_run_dir", full)
    rc = main(["simulate", "--scenario", "warmup_0", "--policy", "oracle", "--seed", "1", "--tasks", "5",
               "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and "e3: error:" in err and "No space left on device" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_manifest_refuses_a_system_table_of_another_configuration(tmp_path):
    import pandas as pd

    from e3.analysis.paper import check_table_cells
    from e3.errors import E3Error

    p = tmp_path / "fairness.csv"
    pd.DataFrame({"scenario": ["mec_city"], "policy": ["jsq"], "controller": ["none"], "n_seeds": [10]}).to_csv(p, index=False)
    check_table_cells(p, [("mec_city", "jsq", "none")], 10)
    with pytest.raises(E3Error, match="--forcerun fairness_results"):
        check_table_cells(p, [("mec_city", "jsq", "none")], 2)
    with pytest.raises(E3Error, match="differ from this configuration"):
        check_table_cells(p, [("mec_city", "jsq", "none"), ("mec_city", "random", "none")], 10)
