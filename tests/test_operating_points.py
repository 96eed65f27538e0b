"""Issue 10, deliverable 4: ``e3 simulate --set`` (validated overrides), the soft-penalty and
mismatch-severity knobs, and the operating-point aggregation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from e3.analysis.op_grid import point_sets, study_points
from e3.analysis.operating_points import OP_COLUMNS, operating_points_table
from e3.cli import main
from e3.config import load_config
from e3.errors import ConfigError
from e3.experiment.run import build_simulation, simulate


@pytest.fixture(scope="module")
def cfg(repo):
    return load_config(repo / "config/config.yaml")


def test_set_overrides_are_validated(repo):
    c = load_config(repo / "config/config.yaml", sets=["workload.arrival_rate_per_s=0.15",
                                                       "policies.e3.risk_penalty_ms=30000",
                                                       "truth.mismatch_scale=0.5"])
    assert c["workload"]["arrival_rate_per_s"] == 0.15
    assert c["policies"]["e3"] == {"controller": "rules", "risk_penalty_ms": 30000}
    assert c["truth"]["mismatch_scale"] == 0.5
    for bad, match in (("workload.arrival_rat_per_s=0.1", "unknown key"), ("workload.arrival_rate_per_s=-1", "arrival_rate"),
                       ("workload.arrival_rate_per_s=.nan", "NaN"), ("truth.mismatch_scale=-0.5", "mismatch_scale"),
                       ("workload", "KEY=VALUE"), ("nonsense.x=1", "unknown key")):
        with pytest.raises(ConfigError, match=match):
            load_config(repo / "config/config.yaml", sets=[bad])


def test_cli_set_reaches_the_run(tmp_path):
    assert main(["simulate", "--scenario", "warmup_0", "--policy", "round_robin", "--seed", "1", "--tasks", "20",
                 "--quiet", "--set", "workload.arrival_rate_per_s=0.05", "--out", str(tmp_path / "r")]) == 0
    t = pd.read_parquet(tmp_path / "r/tasks.parquet")
    assert t["arrival_ms"].diff().dropna().eq(20000.0).all()


def test_mismatch_scale_zero_makes_the_truth_the_priors(cfg, tmp_path):
    c = {**cfg, "truth": {**cfg["truth"], "mismatch_scale": 0.0, "mismatch_sigma": 0.0}}
    s = build_simulation(c, "warmup_0", "oracle", 1, 5, tmp_path / "t.parquet")
    for d in s.pool:
        want = {"c": d.c_prior_ms} if d.kind == "sdxl" else {"alpha": d.alpha_prior_ms_per_token,
                                                               "beta": d.beta_prior_ms_per_token}
        assert s._truth.base[d.name] == pytest.approx(want)


def test_soft_penalty_zero_lifts_the_bar(cfg, tmp_path):
    # semantic_overload: in `semantic` (0.2.0) the Oracle never serves a degraded device (a 3x
    # slowdown of one LLM device of a pair 1.22x apart at most), so it has no stutter to lift
    o = simulate(cfg, "semantic_overload", "oracle", 1, tmp_path / "o")
    soft0 = simulate(cfg, "semantic_overload", "oracle_avoid", 1, tmp_path / "s0", policy_overrides={"soft_penalty_ms": 0.0})
    assert soft0["latency_ms"] == o["latency_ms"] and soft0["stutter_rate"] == o["stutter_rate"] > 0
    e_soft = simulate(cfg, "semantic_overload", "e3", 1, tmp_path / "e0",
                      policy_overrides={"hard_avoidance": False, "risk_penalty_ms": 0.0})
    e_hard = simulate(cfg, "semantic_overload", "e3", 1, tmp_path / "eh")
    assert e_hard["stutter_rate"] == 0.0 < e_soft["stutter_rate"]


def test_study_points_and_table(cfg, tmp_path):
    op = {"seeds": [1], "scenarios": ["warmup_0", "semantic"], "rates_per_s": [0.1, 0.2],
          "penalty_scenarios": ["semantic"], "risk_penalties_ms": [0.0, 60000.0], "mismatch_scales": [0.5]}
    cells = [{"policy": "oracle"}, {"policy": "oracle_avoid"}, {"policy": "round_robin"},
             {"policy": "e3", "controller": "rules"}, {"policy": "e3", "controller": "llm"}]
    pts = study_points(op, cells)
    assert not [p for p in pts if p["controller"] == "llm"]  # llm cells are left out (no recording)
    assert {p["study"] for p in pts} == {"rate", "penalty", "mismatch"}
    sets = point_sets("penalty", "pen60000", "e3")
    assert "policies.e3.hard_avoidance=false" in sets and "policies.e3.risk_penalty_ms=60000" in sets
    assert point_sets("penalty", "pen60000", "oracle_avoid") == ["policies.oracle_avoid.soft_penalty_ms=60000"]
    summaries = []
    for p in [p for p in pts if p["study"] == "rate" and p["scenario"] == "semantic"]:
        out = tmp_path / p["path"]
        c = load_config(sets=point_sets(p["study"], p["point"], p["policy"]))
        over = {"controller": p["controller"]} if p["policy"] == "e3" else None
        simulate(c, p["scenario"], p["policy"], p["seed"], out, n_tasks=60, policy_overrides=over)
        summaries.append(str(out / "summary.json"))
    t = operating_points_table(summaries)
    assert list(t.columns) == OP_COLUMNS
    assert len(t) == 2 * 4  # 2 rates x 4 cells
    assert (t.loc[t["policy"] == "oracle", "gap_vs_oracle_pct"].abs() < 1e-9).all()
    assert (t.loc[t["policy"] == "oracle_avoid", "gap_vs_oracle_avoid_pct"].abs() < 1e-9).all()
    lo = t[t["arrival_rate_per_s"] == 0.1]["rho_safe"].iloc[0]
    hi = t[t["arrival_rate_per_s"] == 0.2]["rho_safe"].iloc[0]
    assert hi == pytest.approx(2 * lo)
    assert json.loads((tmp_path / summaries[0]).read_text())["load"]["semantic_windows"]


def test_shards_cover_every_run_once(cfg):
    from e3.analysis.op_grid import study_shards

    op = {"seeds": [1, 2], "scenarios": ["warmup_0", "semantic"], "rates_per_s": [0.1, 0.2],
          "penalty_scenarios": ["semantic"], "risk_penalties_ms": [0.0, 60000.0], "mismatch_scales": [0.5]}
    cells = [{"policy": "oracle"}, {"policy": "oracle_avoid"}, {"policy": "e3", "controller": "rules"}]
    runs = {(p["study"], p["point"], p["scenario"], p["policy"], p["controller"]) for p in study_points(op, cells)}
    from_shards = [(sh["study"], sh["point"], sh["scenario"], pol, ctl) for sh in study_shards(op, cells)
                   for pol, ctl in sh["cells"]]
    assert len(from_shards) == len(set(from_shards)) and set(from_shards) == runs


def test_shard_cli_rows_equal_single_runs(tmp_path):
    from e3.analysis.op_grid import summary_row
    from e3.analysis.operating_points import read_shards

    out = tmp_path / "shard.jsonl"
    assert main(["operating-points", "--study", "rate", "--point", "rate0.1", "--scenario", "semantic",
                 "--cells", "oracle", "e3:rules", "--seeds", "1", "2", "--out", str(out)]) == 0
    rows = read_shards([out])
    assert len(rows) == 4
    c = load_config(sets=["workload.arrival_rate_per_s=0.1"])
    s = simulate(c, "semantic", "e3", 2, tmp_path / "single", policy_overrides={"controller": "rules"})
    want = summary_row("rate", "rate0.1", "semantic", "e3", "rules", 2, s)
    got = rows[(rows["policy"] == "e3") & (rows["seed"] == 2)].iloc[0].to_dict()
    assert got == want


def test_shard_cli_runs_each_cell_as_simulate_cells_does(tmp_path):
    """A cell's controller means the same in `e3 operating-points` as in `e3 simulate --cells`:
    e3:none is e3 without a meta-controller (until stop 18 the study ran it with the default,
    rules, so its "none" rows repeated the rules rows)."""
    from e3.analysis.op_grid import summary_row
    from e3.analysis.operating_points import read_shards

    cells = ["e3:none", "e3:rules", "oracle"]
    out = tmp_path / "shard.jsonl"
    assert main(["operating-points", "--study", "rate", "--point", "rate0.1", "--scenario", "semantic",
                 "--cells", *cells, "--seeds", "1", "--out", str(out)]) == 0
    assert main(["simulate", "--scenario", "semantic", "--cells", *cells, "--seeds", "1", "--quiet",
                 "--set", "workload.arrival_rate_per_s=0.1",
                 "--out", str(tmp_path / "runs/{policy}/{controller}/seed{seed}")]) == 0
    rows = read_shards([out])
    for cell in cells:
        policy, controller = (cell.split(":") + ["none"])[:2]
        s = json.loads((tmp_path / f"runs/{policy}/{controller}/seed1/summary.json").read_text())
        want = summary_row("rate", "rate0.1", "semantic", policy, controller, 1, s)
        got = rows[(rows["policy"] == policy) & (rows["controller"] == controller)].iloc[0].to_dict()
        assert got == want, cell
    none, rules = (rows[rows["controller"] == c]["latency_ms"].iloc[0] for c in ("none", "rules"))
    assert none != rules  # the two controllers act differently on this run


def test_reuse_runs_reads_only_runs_of_the_same_config(tmp_path, capsys):
    """--reuse-runs reads a run's summary.json only when it is the same run (config hash, policy,
    controller, seed): the rows equal simulated ones byte for byte, and a point with another
    config simulates."""
    runs = str(tmp_path / "runs/{scenario}/{policy}/{controller}/seed{seed}")
    cells = ["oracle", "e3:none"]
    assert main(["simulate", "--scenario", "semantic", "--cells", *cells, "--seeds", "1", "2", "--quiet",
                 "--out", runs.replace("{scenario}", "semantic")]) == 0
    capsys.readouterr()
    for point, reused in (("rate0.26", 4), ("rate0.1", 0)):  # 0.26: the config's rate
        args = ["operating-points", "--study", "rate", "--point", point, "--scenario", "semantic", "--cells", *cells,
                "--seeds", "1", "2"]
        assert main([*args, "--out", str(tmp_path / f"{point}.jsonl")]) == 0
        assert main([*args, "--reuse-runs", runs, "--out", str(tmp_path / f"{point}_reused.jsonl")]) == 0
        assert (tmp_path / f"{point}.jsonl").read_bytes() == (tmp_path / f"{point}_reused.jsonl").read_bytes()
        err = capsys.readouterr().err
        assert sum(int(x.split("(")[-1].split()[0]) for x in err.splitlines() if "read from --reuse-runs" in x) == reused
    assert main(["operating-points", "--study", "rate", "--point", "rate0.26", "--scenario", "semantic", "--cells",
                 "oracle", "--seeds", "1", "--reuse-runs", "runs/{seed}", "--out", str(tmp_path / "x.jsonl")]) == 2


def test_sets_leave_config_unchanged(cfg):
    from e3.analysis.op_grid import sets_leave_config_unchanged

    rate = cfg["workload"]["arrival_rate_per_s"]
    assert sets_leave_config_unchanged(cfg, []) and sets_leave_config_unchanged(cfg, [f"workload.arrival_rate_per_s={rate}"])
    assert not sets_leave_config_unchanged(cfg, [f"workload.arrival_rate_per_s={rate / 2}"])
    assert not sets_leave_config_unchanged(cfg, ["truth.mismatch_scale=1"])  # absent key: another config hash
    assert not sets_leave_config_unchanged(cfg, ["policies.e3.hard_avoidance=false"])


@pytest.mark.parametrize("scenario,policy,controller", [("churn", "e3", "rules"), ("semantic", "e3", "page_hinkley"),
                                                     ("drift", "sed_ewma", None), ("semantic", "oracle_avoid", None)])
def test_summaries_without_files_equal_the_written_runs(cfg, tmp_path, scenario, policy, controller):
    """simulate_summaries keeps the latency column in memory and drops audit records: every
    summary field but wall_s must equal what `e3 simulate` writes to summary.json."""
    from e3.experiment.run import simulate_summaries

    over = {"controller": controller} if controller else None
    got = simulate_summaries(cfg, scenario, policy, [1, 2], over)
    for seed, s in zip([1, 2], got, strict=True):
        simulate(cfg, scenario, policy, seed, tmp_path / f"seed{seed}", policy_overrides=over)
        written = json.loads((tmp_path / f"seed{seed}" / "summary.json").read_text())
        assert json.dumps({k: v for k, v in s.items() if k != "wall_s"}, sort_keys=True) == \
            json.dumps(written, sort_keys=True)


def test_shard_cli_with_several_scenarios_writes_each_scenario_as_alone(tmp_path):
    # one job per (study, point) runs the study's scenarios in turn: each file equals its own run
    together = str(tmp_path / "together" / "{scenario}.jsonl")
    assert main(["operating-points", "--study", "mismatch", "--point", "mis0.5", "--scenario", "drift", "semantic",
                 "--cells", "oracle", "e3:rules", "--seeds", "2", "1", "--out", together]) == 0
    for sc in ("drift", "semantic"):
        alone = tmp_path / f"{sc}.jsonl"
        assert main(["operating-points", "--study", "mismatch", "--point", "mis0.5", "--scenario", sc,
                     "--cells", "oracle", "e3:rules", "--seeds", "2", "1", "--out", str(alone)]) == 0
        assert (tmp_path / "together" / f"{sc}.jsonl").read_bytes() == alone.read_bytes(), sc


def test_shard_cli_with_several_scenarios_needs_the_placeholder(tmp_path, capsys):
    assert main(["operating-points", "--study", "rate", "--point", "rate0.1", "--scenario", "drift", "semantic",
                 "--cells", "oracle", "--seeds", "1", "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "{scenario}" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
