"""The whole DAG on the test config (config/test/config.yaml), in a scratch copy of the project:
tables have the promised columns and one row per cell, figures exist, and re-running a deleted
simulation reproduces the aggregates byte for byte."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from e3.analysis.tables import TABLE5_COLUMNS, TABLE6_COLUMNS

COPY = ["Snakefile", "workflow", "config", "e3", "results/priors", "results/llm", "paper/main.tex",
        "paper/paper_values.yaml"]


def _snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), "--cores", "2", "--configfile", "config/test/config.yaml", "--quiet", *args]
    # the shell rules call the `e3` console script: put this interpreter's bin dir first on PATH
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return r


@pytest.fixture(scope="module")
def project(repo, tmp_path_factory):
    if not (repo / "results/llm/responses.jsonl").exists():
        pytest.skip("results/llm/responses.jsonl is missing (the committed LLM responses)")
    dst = tmp_path_factory.mktemp("e3proj")
    for rel in COPY:
        src = repo / rel
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst / rel)
    _snakemake(dst)
    return dst


@pytest.fixture(scope="module")
def test_cfg(repo):
    base = yaml.safe_load((repo / "config/config.yaml").read_text())
    over = yaml.safe_load((repo / "config/test/config.yaml").read_text())
    return {**base["sweep"], **over["sweep"]}


def test_table5_has_one_row_per_cell(project, test_cfg):
    t5 = pd.read_csv(project / "results/tables/table5.csv", dtype={"setting": str})
    assert list(t5.columns) == ["scenario", *TABLE5_COLUMNS]
    main = [c for c in test_cfg["cells"] if c.get("table", "main") == "main"]
    assert len(t5) == len(test_cfg["scenarios"]) * len(main)
    assert not t5.duplicated(["scenario", "policy", "controller"]).any()
    oracle = t5[t5["policy"] == "oracle"]
    assert (oracle["vs_oracle_pct"].abs() < 1e-9).all()
    two = t5[t5["n_seeds"] == 2]
    assert ((two["ci95_low_ms"] <= two["avg_latency_ms"]) & (two["avg_latency_ms"] <= two["ci95_high_ms"])).all()
    assert set(t5["block"]) == {"warmup", "dynamic"}


def test_table6_and_figures_and_paper_inputs(project):
    t6 = pd.read_csv(project / "results/tables/table6.csv", dtype={"setting": str})
    assert list(t6.columns) == ["scenario", *TABLE6_COLUMNS]
    assert set(t6["setting"]) == {"semantic", "churn", "drift"}
    for f in ("fig3_warmup.png", "fig3_warmup.pdf", "fig4_dynamic.png", "fig4_dynamic.pdf"):
        assert (project / "results/figures" / f).stat().st_size > 10_000, f
    numbers = (project / "paper/generated/numbers.tex").read_text()
    assert "\\newcommand{\\ESemanticOracleNoneLat}" in numbers
    comparison = (project / "results/paper_comparison.md").read_text()
    assert "| claim | reading | evidence |" in comparison
    manifest = (project / "results/MANIFEST.json").read_text()
    assert "results/tables/table5.csv" in manifest


def test_an_external_baseline_rule_joins_the_fairness_table(project):
    # issue 32, item 4: config/test's external baseline (a shell script that does not import e3)
    # ran through workflow/rules/external.smk and is a row of the fairness table like the built-ins
    t = pd.read_csv(project / "results/tables/fairness.csv")
    ext = t[t["policy"] == "testbed_replay"]
    assert set(ext["scenario"]) == {"mec_city", "mec_city_burst"} and (ext["n_seeds"] == 2).all()
    assert (ext["mean_latency_s"] > 0).all() and "static_sect" in set(t["policy"])


def test_the_example_plugins_are_rows_of_the_fairness_and_placement_tables(project):
    # issue 32: docs/policies.md's example plugins, given by sweep.plugins and one cell each
    fairness = pd.read_csv(project / "results/tables/fairness.csv")
    placement = pd.read_csv(project / "results/tables/migration.csv")
    assert (fairness[fairness["policy"] == "jsq2_serving"]["n_seeds"] == 2).all()
    assert len(fairness[fairness["policy"] == "jsq2_serving"]) == 2
    assert (placement[placement["policy"] == "worst_fit"]["n_seeds"] == 2).all()


def test_rerun_reproduces_aggregates_exactly(project):
    before = {f: (project / "results/aggregate" / f).read_bytes() for f in ("runs.csv", "trajectories.csv")}
    shutil.rmtree(project / "resources/runs/semantic/e3/llm/seed1")
    _snakemake(project)
    for f, b in before.items():
        assert (project / "results/aggregate" / f).read_bytes() == b, f


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_manifest_commit_ignores_its_own_deleted_file_but_not_other_changes(tmp_path):
    # Snakemake deletes a job's outputs before it runs, so the manifest job always sees its own
    # committed file as deleted; that alone must not stamp the commit "-dirty", anything else must.
    from e3.analysis.paper import git_commit

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path,
                       check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results/MANIFEST.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    head = git_commit(tmp_path)
    assert head is not None and len(head) == 40
    (tmp_path / "results/MANIFEST.json").unlink()
    assert git_commit(tmp_path) == head + "-dirty"
    assert git_commit(tmp_path, ignore=("results/MANIFEST.json",)) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path, ignore=("results/MANIFEST.json",)) == head + "-dirty"
