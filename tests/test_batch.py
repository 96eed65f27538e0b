"""Batched simulation jobs (issue 11): one process running several seeds of a cell writes the same
bytes as one process per seed, and the Snakemake batch rules cover every run of the sweep once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from e3.config import load_config
from e3.errors import E3Error
from e3.experiment.run import simulate, simulate_batch

FILES = ("tasks.parquet", "summary.json", "audit.jsonl")


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


@pytest.mark.parametrize("scenario,policy,overrides", [
    ("semantic", "e3", {"controller": "rules"}),
    ("churn", "oracle", None),
    ("drift", "sed_ewma", None),
])
def test_batched_runs_are_byte_identical_to_single_runs(cfg, tmp_path, scenario, policy, overrides):
    seeds = [3, 1, 2]
    simulate_batch(cfg, scenario, policy, seeds, str(tmp_path / "batch" / "seed{seed}"), n_tasks=90,
                   policy_overrides=overrides)
    for seed in seeds:
        simulate(cfg, scenario, policy, seed, tmp_path / "single" / f"seed{seed}", n_tasks=90,
                 policy_overrides=overrides)
        for f in FILES:
            a, b = tmp_path / "batch" / f"seed{seed}" / f, tmp_path / "single" / f"seed{seed}" / f
            assert a.exists() == b.exists(), f
            if a.exists():
                assert a.read_bytes() == b.read_bytes(), f"seed {seed}: {f} differs"


def test_scenario_batch_of_cells_is_byte_identical_to_single_runs(tmp_path):
    # `e3 simulate --cells`: one process runs several cells one after another (the default
    # Snakemake batch); nothing a cell leaves behind in the process may change the next cell's bytes
    from e3.cli import main

    cells = [("e3", "rules"), ("oracle", "none"), ("sed_ewma", "none"), ("e3", "none")]
    assert main(["simulate", "--scenario", "churn", "--cells", *(f"{p}:{c}" for p, c in cells), "--seeds", "2", "1",
                 "--tasks", "90", "--quiet", "--out", str(tmp_path / "batch/{policy}/{controller}/seed{seed}")]) == 0
    for policy, controller in cells:
        for seed in (1, 2):
            single = tmp_path / "single" / policy / controller / f"seed{seed}"
            assert main(["simulate", "--scenario", "churn", "--policy", policy, "--controller", controller,
                         "--seed", str(seed), "--tasks", "90", "--quiet", "--out", str(single)]) == 0
            for f in FILES:
                a, b = tmp_path / "batch" / policy / controller / f"seed{seed}" / f, single / f
                assert a.exists() == b.exists(), f
                if a.exists():
                    assert a.read_bytes() == b.read_bytes(), f"{policy}/{controller} seed {seed}: {f} differs"


@pytest.mark.parametrize("argv,match", [
    (["--cells", "oracle", "--seed", "1"], "give --seeds"),
    (["--cells", "oracle", "--controller", "none"], "drop --controller"),
    (["--cells", "oracle", "oracle:none"], "listed twice"),
    # a good cell first: nothing may run before the bad one is refused
    (["--cells", "oracle", "oracle:a:b"], "POLICY:CONTROLLER"),
    (["--cells", "oracle", "round_robin:rules"], "no meta-controller"),
    (["--cells", "oracle", "no_such_policy"], "no_such_policy"),
    (["--cells", "oracle", "e3:bogus"], "unknown controller 'bogus'"),
])
def test_cells_batch_refuses_bad_arguments_before_running(tmp_path, capsys, argv, match):
    from e3.cli import main

    seeds = [] if "--seed" in argv else ["--seeds", "1"]
    out = str(tmp_path / "{policy}/{controller}/seed{seed}")
    assert main(["simulate", "--scenario", "drift", *argv, *seeds, "--tasks", "5", "--out", out]) == 2
    assert match in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_cells_batch_needs_policy_and_controller_placeholders(tmp_path, capsys):
    from e3.cli import main

    assert main(["simulate", "--scenario", "drift", "--cells", "oracle", "--seeds", "1",
                 "--out", str(tmp_path / "seed{seed}")]) == 2
    assert "{policy}, {controller}" in capsys.readouterr().err


def test_batch_needs_seed_placeholder_and_distinct_seeds(cfg, tmp_path):
    with pytest.raises(E3Error, match="placeholder"):
        simulate_batch(cfg, "drift", "oracle", [1, 2], str(tmp_path / "x"))
    with pytest.raises(E3Error, match="twice"):
        simulate_batch(cfg, "drift", "oracle", [1, 1], str(tmp_path / "s{seed}"))


def test_cli_takes_exactly_one_of_seed_and_seeds(tmp_path):
    from e3.cli import main

    with pytest.raises(SystemExit):
        main(["simulate", "--scenario", "drift", "--policy", "oracle", "--seed", "1", "--seeds", "1", "2",
              "--out", str(tmp_path / "s{seed}")])
    assert main(["simulate", "--scenario", "drift", "--policy", "oracle", "--seeds", "1", "2", "--tasks", "20",
                 "--quiet", "--out", str(tmp_path / "s{seed}")]) == 0
    assert (tmp_path / "s1/summary.json").exists() and (tmp_path / "s2/summary.json").exists()


def _simulation_job_counts(repo, over_text, tmp_path):
    over = tmp_path / "over.yaml"
    over.write_text(over_text)
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run([str(exe), "aggregate", "-n", "--forceall", "--configfile", str(over)], cwd=repo,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = (r.stdout + r.stderr).splitlines()
    table = out[out.index("Job stats:"):]
    table = table[:next(i for i, line in enumerate(table) if line.startswith("total"))]
    return {line.split()[0]: int(line.split()[1]) for line in table if line.startswith("simulate_")}


def test_scenario_batches_stay_under_snakemakes_metadata_cache(repo, tmp_path):
    # 5 cells (the cell cap) x 13 seeds x 2 files = 130 outputs: the 120-output cap alone splits
    # each scenario's cells into 2 jobs (4 cells, 104 outputs, at most)
    cells = ["oracle", "round_robin", "fixed_heuristic", "jsq", "sed_ewma"]
    seeds = list(range(1, 14))
    counts = _simulation_job_counts(
        repo, f"sweep:\n  seeds: {seeds}\n  llm_seeds: [1]\n  scenarios: [drift, semantic]\n"
        f"  cells: [{', '.join('{policy: ' + c + '}' for c in cells)}]\n", tmp_path)
    assert counts == {f"simulate_{sc}_part{k}_batch0": 1 for sc in ("drift", "semantic") for k in (0, 1)}, counts


@pytest.mark.parametrize("batch_by,batch_size,expected", [
    # 2 scenarios; per seed shard one job per scenario (or per non-llm cell: 2 per scenario), plus
    # one llm-cell job per scenario (llm_seeds [1] is one shard)
    (None, None, 2 + 2), (None, 3, 2 * 2 + 2), (None, 1, 5 * 2 + 2),
    ("cell", None, 4 + 2), ("cell", 3, 2 * 4 + 2),
])
def test_batch_rules_cover_every_run_once(repo, tmp_path, batch_by, batch_size, expected):
    # dry run of the simulation stage: the job count, and which rule makes each run's files
    # (Snakemake prefers a rule without wildcards to one with them without a word, so an overlap
    # would not fail the dry run: `--summary` names the producer of every file)
    over = ("sweep:\n  seeds: [1, 2, 3, 4, 5]\n  llm_seeds: [1]\n  scenarios: [drift, semantic]\n"
            "  cells: [{policy: oracle}, {policy: e3, controller: rules}, {policy: e3, controller: llm}]\n"
            + (f"  batch_size: {batch_size}\n" if batch_size else "")
            + (f"  batch_by: {batch_by}\n" if batch_by else ""))
    counts = _simulation_job_counts(repo, over, tmp_path)
    assert sum(counts.values()) == expected, counts
    made_by = _producers(repo, tmp_path / "over.yaml", "aggregate")
    for sc in ("drift", "semantic"):
        for policy, controller in (("oracle", "none"), ("e3", "rules"), ("e3", "llm")):
            for seed in ([1] if controller == "llm" else [1, 2, 3, 4, 5]):
                for f in ("summary.json", "tasks.parquet"):
                    path = f"resources/runs/{sc}/{policy}/{controller}/seed{seed}/{f}"
                    want = ("simulate_llm_batch" if controller == "llm" else
                            "simulate_other_batch" if batch_by == "cell" else f"simulate_{sc}_part")
                    assert made_by.get(path, "").startswith(want), (path, made_by.get(path))


def _producers(repo, configfile, *targets):
    """{output file: rule that makes it} from ``snakemake --summary`` (a dry look at the DAG)."""
    exe = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    args = [str(exe), "--summary", *targets] + (["--configfile", str(configfile)] if configfile else [])
    r = subprocess.run(args, cwd=repo, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split("\t") for line in r.stdout.splitlines()[1:] if "\t" in line]
    return {row[0]: row[2] for row in rows}


def test_fairness_and_placement_batches_cover_every_run_once(repo):
    # every run of the two systems' sweeps is made by a part job of its own scenario, and no
    # other run is
    import yaml

    made_by = _producers(repo, None, "fairness_results", "migration_results")
    cfg = yaml.safe_load((repo / "config/config.yaml").read_text())
    for system, root, rule in (("fairness", "resources/fairness", "simulate_fairness_"),
                               ("placement", "resources/placement", "simulate_migration_")):
        sw = cfg[system]["sweep"]
        want = {f"{root}/{sc}/{c['policy']}/{c.get('controller', 'none')}/seed{s}/summary.json"
                for sc in sw["scenarios"] for c in sw["cells"] if sc in c.get("scenarios", sw["scenarios"])
                for s in sw["seeds"]}
        got = {f for f, by in made_by.items() if f.startswith(root + "/")}
        assert got == want, (system, sorted(want - got)[:3], sorted(got - want)[:3])
        for f in got:
            sc = f.split("/")[2]
            assert made_by[f].startswith(f"{rule}{sc}_part"), (f, made_by[f])


@pytest.mark.parametrize("scenario,cells", [
    ("mec_city", [("jsq", "none"), ("lyapunov_dpp", "v10")]),          # fairness system
    ("agents_global_churn", [("greedy_nearest", "none"), ("aco", "none")]),  # placement system
])
def test_cells_batch_of_the_other_systems_is_byte_identical_to_single_runs(tmp_path, scenario, cells):
    """The batch's later cells reuse the process's remembered programs, request streams and worlds;
    each single run here starts from empty memos, so it computes them afresh."""
    from e3.cli import main
    from e3.fairness import run as fairness_run
    from e3.placement import run as placement_run

    memos = (fairness_run._PLANS, fairness_run._STREAMS, placement_run._WORLDS)
    for memo in memos:
        memo.clear()
    assert main(["simulate", "--scenario", scenario, "--cells", *(f"{p}:{c}" for p, c in cells), "--seeds", "1",
                 "--quiet", "--out", str(tmp_path / "batch/{policy}/{controller}/seed{seed}")]) == 0
    # the second cell reused the first cell's request stream or world (one seed, one entry)
    assert len(fairness_run._STREAMS) + len(placement_run._WORLDS) == 1
    for policy, controller in cells:
        for memo in memos:
            memo.clear()
        single = tmp_path / "single" / policy / controller / "seed1"
        assert main(["simulate", "--scenario", scenario, "--policy", policy, "--controller", controller,
                     "--seed", "1", "--quiet", "--out", str(single)]) == 0
        names = sorted(p.name for p in single.iterdir() if p.name != "timing.json")
        assert names, single
        for f in names:
            a = tmp_path / "batch" / policy / controller / "seed1" / f
            assert a.read_bytes() == (single / f).read_bytes(), f"{policy}/{controller}: {f} differs"


def test_a_remembered_placement_world_is_fresh_for_every_run():
    """A run (or a policy) that changes its world's lists or demands leaves the next run's alone."""
    from e3.config import load_config
    from e3.placement.run import _WORLDS, _world
    from e3.placement.system import build_system, section

    cfg = load_config(None)
    system, p = build_system(cfg), section(cfg)
    _WORLDS.clear()
    first = _world(system, p, 3)
    want = (repr(first.agents), repr(first.chains), len(first.tasks), len(first.moves))
    first.chains[0].append(999)
    first.agents[0].demand["compute"] = -1.0
    first.tasks.clear()
    second = _world(system, p, 3)
    assert len(_WORLDS) == 1
    assert (repr(second.agents), repr(second.chains), len(second.tasks), len(second.moves)) == want
