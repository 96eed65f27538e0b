"""Issue 13, workflow side, in a scratch copy: a sweep typo stops Snakemake before the DAG (and
changes nothing), and ``refresh_priors`` follows the mirror's content and never leaves a stale
report after a failed refresh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COPY = ["Snakefile", "workflow", "config", "e3", "results/priors", "results/llm", "paper/main.tex",
        "paper/paper_values.yaml"]
V40_SDXL = ("inference_results_v4.0/closed/NVIDIA/results/Orin_TRT/stable-diffusion-xl/SingleStream/"
            "performance/run_1/mlperf_log_summary.txt")


def _snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([str(exe), "--cores", "1", *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.fixture()
def project(repo, tmp_path) -> Path:
    dst = tmp_path / "proj"
    for rel in COPY:
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (repo / rel).is_dir() else shutil.copyfile)(repo / rel, dst / rel)
    return dst


def test_sweep_typo_stops_snakemake_before_the_dag(project):
    (project / "typo.yaml").write_text("sweep:\n  scenarios: [semantic, semantik]\n")
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    r = _snakemake(project, "--configfile", "typo.yaml")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-3000:]
    assert "'sweep.scenarios.1': unknown scenario 'semantik'" in out and "nothing was run" in out
    after = sorted(p.relative_to(project) for p in project.rglob("*") if ".snakemake" not in p.parts)
    assert after == [p for p in before if ".snakemake" not in p.parts]


def test_schema_violation_stops_snakemake_naming_the_field(project):
    """The workflow validates with the CLI's validator: a NaN or an out-of-range value given through
    --configfile stops Snakemake before the DAG, naming the field."""
    (project / "bad.yaml").write_text("simulation:\n  horizon_tasks: -5\ntruth:\n  noise_sigma: .nan\n")
    r = _snakemake(project, "--configfile", "bad.yaml")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "nothing was run" in out, out[-3000:]
    assert "field 'truth.noise_sigma': NaN is not allowed" in out
    (project / "bad.yaml").write_text("simulation:\n  horizon_tasks: -5\n")
    r = _snakemake(project, "--configfile", "bad.yaml")
    assert r.returncode != 0 and "field 'simulation.horizon_tasks'" in r.stdout + r.stderr


@pytest.mark.slow
def test_refresh_follows_the_mirror_and_removes_a_stale_report(project, mlperf_mirror, tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(mlperf_mirror / "inference_results_v4.0", mirror / "inference_results_v4.0")
    (project / "refresh.yaml").write_text(f"mlperf:\n  mirror: {mirror}\n  rounds: [v4.0]\n")
    report = project / "resources/priors/refresh_report.txt"
    r = _snakemake(project, "refresh_priors", "--configfile", "refresh.yaml")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert "no differences" not in report.read_text()  # v4.0 alone: the other rounds' records are "removed"
    # Edit the mirror: the refresh must re-read it (it used to say "Nothing to be done"); the edit
    # makes it fail, and the previous report must not survive looking current.
    log = mirror / V40_SDXL
    log.write_text(log.read_text().replace("Max latency (ns)                : 12945158490",
                                           "Max latency (ns)                : nan"))
    r = _snakemake(project, "refresh_priors", "--configfile", "refresh.yaml")
    assert r.returncode != 0
    assert "fetch_mlperf" in r.stdout + r.stderr
    assert "NaN is not a measurement" in (project / "logs/mlperf/filter_mlperf.log").read_text()
    assert not report.exists()


def test_another_workflow_imports_e3_as_a_snakemake_module(project):
    # issue 32, item 4: workflow/examples/module/Snakefile imports every e3 rule (`module` /
    # `use rule * from e3 as e3_*`) and adds one of its own downstream of e3's fairness table
    r = _snakemake(project, "-n", "-s", "workflow/examples/module/Snakefile", "--configfile", "config/test/config.yaml")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "my_study" in out and "e3_fairness_results" in out and "e3_external_fairness_testbed_replay" in out


def test_an_external_baseline_may_not_take_a_registered_name(project):
    (project / "clash.yaml").write_text(
        "external:\n  baselines:\n    - {name: static_sect, system: fairness, command: 'true {out}'}\n")
    r = _snakemake(project, "-n", "--configfile", "clash.yaml")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "nothing was run" in out, out[-3000:]
    assert "field 'external.baselines.0.name': 'static_sect' is a registered fairness policy" in out
