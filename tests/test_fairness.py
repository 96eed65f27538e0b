"""The fairness system (issue 14): kernel primitives, serving engine and policies.

Behaviour checked: request conservation, capacity never exceeded, no request enqueued at an
inactive pod, activation delays respected, Jain index properties, the Lyapunov fairness-queue
update on a hand-worked example, processor sharing and network delay by hand, the deployment
program on a tiny instance, determinism by seed, the information boundary, and that E3's
effective config (hence its frozen results) does not see the new section.
"""

from __future__ import annotations

import copy
import math
import random

import pyarrow.parquet as pq
import pytest
import salabim as sim
import yaml

from e3.config import config_hash, load_config
from e3.errors import E3Error
from e3.fairness.agents import MultiAgent, cosine
from e3.fairness.engine import (
    FAILED,
    SERVED,
    TIMED_OUT,
    ServingPolicyError,
    ServingSimulation,
    ServingTruth,
    SlotDecision,
    _Req,
)
from e3.fairness.policies import FairnessPolicy, lyapunov_fairness_update, naive_deployment
from e3.fairness.run import build_simulation, load_inputs, simulate
from e3.fairness.static import best_deployment
from e3.sim.jain import jain_index as jain
from e3.sim.jain import jain_normalized
from e3.sim.network import Network
from e3.sim.nodes import ACTIVE, CapacityError, Node, Pod, SharedProcessor
from tests.test_information_boundary import reachable_forbidden

SHORT_S = 600  # two epochs: a planner turn, the first burst, churn; about a second a run
_INPUTS: dict = {}


@pytest.fixture(scope="module")
def cfg(repo):
    c = load_config(repo / "config/config.yaml")
    c["fairness"]["horizon_s"] = SHORT_S
    return c


def _inputs(cfg, scenario, policy, controller=None, **over):
    """load_inputs, cached per test module (the rate rule solves a few MILPs)."""
    key = (scenario, policy, controller, tuple(sorted(over.items())))
    if key not in _INPUTS:
        c = copy.deepcopy(cfg)
        c["fairness"].update(over)
        _INPUTS[key] = load_inputs(c, scenario, policy, controller)
    return _INPUTS[key]


def _run(cfg, scenario, policy, controller=None, seed=1, tmp_path=None, **over):
    ri = _inputs(cfg, scenario, policy, controller, **over)
    s = build_simulation(ri, seed, tmp_path / f"{scenario}-{policy}-{controller}-{seed}.parquet")
    s.run()
    return s


# --- kernel primitives, by hand ----------------------------------------------------------------------
def test_processor_sharing_by_hand():
    p = SharedProcessor()
    p.add("a", 10.0, 0.0)
    p.add("b", 20.0, 0.0)
    assert p.next_completion_ms() == pytest.approx(20.0)  # two jobs at rate 1/2: a needs 20 ms
    assert p.advance(20.0) == ["a"]
    assert p.remaining["b"] == pytest.approx(10.0)
    assert p.next_completion_ms() == pytest.approx(10.0)  # alone now, full rate
    assert p.advance(30.0) == ["b"] and p.next_completion_ms() is None
    assert p.busy_ms == pytest.approx(30.0)


def test_node_capacity_is_enforced():
    n = Node("gpu0", "gpu", {"gpu_mem_gb": 8.0, "ram_gb": 32.0})
    n.reserve({"gpu_mem_gb": 4.0})
    n.reserve({"gpu_mem_gb": 2.5})
    assert not n.fits({"gpu_mem_gb": 2.0})
    with pytest.raises(CapacityError):
        n.reserve({"gpu_mem_gb": 2.0})
    with pytest.raises(E3Error, match="no capacity dimension"):
        n.fits({"storage_gb": 1.0})
    with pytest.raises(E3Error):
        Node("x", "cpu", {"ram_gb": float("nan")})
    n.release({"gpu_mem_gb": 4.0})
    assert n.fits({"gpu_mem_gb": 2.0})


def test_network_delay_by_hand():
    net = Network(["a", "b"], {("a", "b"): 4.0}, 1e9)
    # RTT/2 + bytes/bandwidth: 2 ms + 500 kB * 8 / 1 Gb/s = 2 + 4 ms
    assert net.transfer_ms("a", "b", 500_000) == pytest.approx(6.0)
    assert net.transfer_ms("b", "b", 500_000) == 0.0
    with pytest.raises(E3Error, match="missing"):
        Network(["a", "b", "c"], {("a", "b"): 1.0}, 1e9)


# --- fairness and Lyapunov, by hand ----------------------------------------------------------------------
def test_jain_equal_shares_and_one_user():
    assert jain([3.0, 3.0, 3.0, 3.0]) == pytest.approx(1.0)
    assert jain([5.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)
    assert jain_normalized(1.0, 4) == pytest.approx(1.0)
    assert jain_normalized(0.25, 4) == pytest.approx(0.0)


def test_jain_bounds_and_scale_invariance():
    rng = random.Random(7)
    for _ in range(200):
        x = [rng.uniform(1e-3, 1e3) for _ in range(rng.randint(1, 8))]
        k = rng.uniform(1e-2, 1e2)
        j = jain(x)
        assert 1.0 / len(x) - 1e-9 <= j <= 1.0 + 1e-9
        assert jain([k * v for v in x]) == pytest.approx(j, rel=1e-9)


def test_lyapunov_fairness_queue_hand_worked():
    z = {"a": 0.0, "b": 1.0, "c": 0.5}
    # mean x = (0.2 + 0.8 + 0.5) / 3 = 0.5: a lags (grows by 0.3), b leads (shrinks by 0.3), c stays
    assert lyapunov_fairness_update(z, {"a": 0.2, "b": 0.8, "c": 0.5}) == pytest.approx({"a": 0.3, "b": 0.7, "c": 0.5})
    # floor at zero; a model with no score keeps its queue and is left out of the mean (0.5 here)
    assert lyapunov_fairness_update({"a": 0.0, "b": 0.1, "c": 2.0}, {"a": 0.0, "b": 1.0, "c": None}) == \
        pytest.approx({"a": 0.5, "b": 0.0, "c": 2.0})


def test_cosine():
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0)


def test_deployment_program_tiny_instance():
    # Two nodes of memory 1, two models of memory 1 each; model "slow" takes 2 s on n1 and 1 s on
    # n2, "fast" 1 s everywhere. Rates 0.4 each. One pod per node: the optimum puts "slow" on n2
    # and "fast" on n1 (max utilisation 0.4); the swap would give 0.8.
    nodes, models = ["n1", "n2"], ["slow", "fast"]
    cap = {n: {"mem": 1.0} for n in nodes}
    dem = {(n, m): {"mem": 1.0} for n in nodes for m in models}
    svc = {("n1", "slow"): 2.0, ("n2", "slow"): 1.0, ("n1", "fast"): 1.0, ("n2", "fast"): 1.0}
    p = best_deployment(nodes, models, cap, dem, svc, {"slow": 0.4, "fast": 0.4})
    assert p.pods == frozenset({("n2", "slow"), ("n1", "fast")})
    assert p.max_utilisation == pytest.approx(0.4)
    with pytest.raises(E3Error, match="no feasible"):
        best_deployment(nodes, models, {n: {"mem": 0.5} for n in nodes}, dem, svc, {"slow": 0.4, "fast": 0.4})


# --- whole runs ------------------------------------------------------------------------------------------
CELLS = [("multi_agent", "rules"), ("lyapunov_dpp", "v1"), ("static_sect", None), ("round_robin", None),
         ("jsq", None), ("random", None)]


@pytest.mark.parametrize("policy,controller", CELLS)
def test_conservation_and_capacity(cfg, tmp_path, policy, controller):
    s = _run(cfg, "mec_city_burst", policy, controller, tmp_path=tmp_path)
    st_ = s.stats
    assert st_.issued > 0 and st_.served + st_.timed_out + st_.failed == st_.issued
    t = pq.read_table(s.trace_path).to_pandas()
    assert list(t["request_id"]) == list(range(st_.issued))
    assert t["outcome"].isin([SERVED, TIMED_OUT, FAILED]).all()
    assert (t["outcome"] == SERVED).sum() == st_.served
    for n in s._nodes.values():
        for d, cap in n.capacity.items():
            assert s.stats.max_used[n.name][d] <= cap + 1e-9, (n.name, d)


def test_churn_with_requeue_conserves_and_fails_nothing(cfg, tmp_path):
    s = _run(cfg, "mec_city_burst", "lyapunov_dpp", "v1", tmp_path=tmp_path, deactivation="requeue")
    assert s.stats.deactivations > 0 and s.stats.failed == 0 and s.stats.reroutes > 0
    assert s.stats.served + s.stats.timed_out == s.stats.issued


def test_fifo_sharing_runs_one_job_per_node(cfg, tmp_path):
    s = build_simulation(_inputs(cfg, "mec_city", "static_sect", None, sharing="fifo"), 1, tmp_path / "t.parquet")
    seen = []
    orig = s._node_step

    def step(node):
        dt = orig(node)
        seen.append(len(s._proc[node]))
        return dt

    s._node_step = step
    s.run()
    assert max(seen) == 1 and s.stats.served + s.stats.timed_out + s.stats.failed == s.stats.issued


class _Enqueue(ServingSimulation):
    """Records the pod state at every enqueue."""

    def _deliver(self, r, pod, tr):
        super()._deliver(r, pod, tr)
        if r in pod.queue:
            self.enqueued_states.append(pod.state)


def test_no_request_reaches_an_inactive_pod(cfg, tmp_path):
    s = build_simulation(_inputs(cfg, "mec_city_burst", "lyapunov_dpp", "v1"), 1, tmp_path / "t.parquet")
    s.__class__ = _Enqueue
    s.enqueued_states = []
    s.run()
    assert s.stats.deactivations > 0  # churn happened, with requests in flight
    assert s.enqueued_states and set(s.enqueued_states) == {ACTIVE}


class _ScriptedPolicy(FairnessPolicy):
    """Starts with no blip pod; activates blip on gpu0 at slot 1; routes to any active pod."""

    name = "scripted"

    def initial_deployment(self, obs):
        return [k for k in naive_deployment(self.ctx) if k[1] != "blip"]

    def on_slot(self, obs):
        return SlotDecision((), (("gpu0", "blip"),) if obs.slot == 1 else ())


def test_activation_delay_is_respected(cfg, tmp_path):
    ri = _inputs(cfg, "mec_city", "round_robin", None)
    ri = type(ri)(**{**ri.__dict__, "policy_cls": _ScriptedPolicy})
    s = build_simulation(ri, 1, tmp_path / "t.parquet")
    s.run()
    nominal = cfg["fairness"]["models"]["blip"]["activation_s"] * 1000.0
    j = cfg["fairness"]["activation_jitter"]
    (node, model, delay), = [a for a in s.obs.activation_ms_observed if a[1] == "blip"]
    assert node == "gpu0" and nominal * (1 - j) <= delay <= nominal * (1 + j)
    t = pq.read_table(s.trace_path).to_pandas()
    started = t[(t["model"] == "blip") & t["start_ms"].notna()]
    assert len(started) > 0
    assert started["start_ms"].min() >= cfg["fairness"]["slot_s"] * 1000.0 + delay - 1e-6


def test_routing_to_an_inactive_pod_is_an_error(cfg, tmp_path):
    class Bad(_ScriptedPolicy):
        def route(self, request, obs):
            return "gpu0"  # even while blip has no pod there

    ri = _inputs(cfg, "mec_city", "round_robin", None)
    ri = type(ri)(**{**ri.__dict__, "policy_cls": Bad})
    with pytest.raises(ServingPolicyError, match="no active pod"):
        build_simulation(ri, 1, tmp_path / "t.parquet").run()


def test_same_seed_same_files_other_seed_differs(cfg, tmp_path):
    ri = _inputs(cfg, "mec_city_burst", "multi_agent", "rules")
    a = simulate(cfg, "mec_city_burst", "multi_agent", "rules", 3, tmp_path / "a", inputs=ri)
    b = simulate(cfg, "mec_city_burst", "multi_agent", "rules", 3, tmp_path / "b", inputs=ri)
    c = simulate(cfg, "mec_city_burst", "multi_agent", "rules", 4, tmp_path / "c", inputs=ri)
    for f in ("summary.json", "requests.parquet", "audit.jsonl"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert a["mean_latency_s"] == b["mean_latency_s"] != c["mean_latency_s"]


def test_policies_see_the_same_requests(cfg, tmp_path):
    x = pq.read_table(_run(cfg, "mec_city", "jsq", tmp_path=tmp_path).trace_path).to_pandas()
    y = pq.read_table(_run(cfg, "mec_city", "random", tmp_path=tmp_path).trace_path).to_pandas()
    cols = ["request_id", "model", "ingress", "arrival_ms"]
    assert x[cols].equals(y[cols])


FORBIDDEN = (ServingTruth, ServingSimulation, _Req, Pod, Node, SharedProcessor, sim.Environment, sim.Component)


@pytest.mark.parametrize("policy,controller", [("multi_agent", "rules"), ("lyapunov_dpp", "v10"), ("static_sect", None)])
def test_information_boundary(cfg, tmp_path, policy, controller, monkeypatch):
    import tests.test_information_boundary as tib

    monkeypatch.setattr(tib, "FORBIDDEN", FORBIDDEN)
    s = _run(cfg, "mec_city_burst", policy, controller, tmp_path=tmp_path)
    assert reachable_forbidden(s.policy) == []
    assert reachable_forbidden(s.obs) == []
    # positive control: the walk finds the truth when a policy holds it
    assert "ServingTruth" in reachable_forbidden({"leak": (lambda t: (lambda: t))(s._truth)})


def test_multi_agent_memory_and_surge_replanning(cfg, tmp_path):
    s = _run(cfg, "mec_city_burst", "multi_agent", "rules", tmp_path=tmp_path, horizon_s=900)
    pol = s.policy
    assert isinstance(pol, MultiAgent)
    assert pol.plans >= 3 and len(pol.memory.cases) >= 2  # an epoch plan per epoch, cases stored
    assert pol.summary()["fallbacks_total"] == 0


def test_unknown_controller_and_scenario_are_clear_errors(cfg):
    with pytest.raises(E3Error, match="controller 'v5'"):
        load_inputs(cfg, "mec_city", "lyapunov_dpp", "v5")
    with pytest.raises(E3Error, match="not found"):
        load_inputs(cfg, "nowhere", "jsq", None)
    with pytest.raises(E3Error, match="unknown fairness policy"):
        load_inputs(cfg, "mec_city", "e3", None)


def test_e3_effective_config_hash_unchanged_by_the_fairness_section(repo, tmp_path):
    # The E3 sweep's effective config leaves `fairness` out (workflow/rules/simulate.smk), so every
    # frozen E3 run keeps its config_hash: the one in results/aggregate/runs.csv.
    import pandas as pd

    c = load_config(repo / "config/config.yaml")
    assert "fairness" in c
    eff = {k: v for k, v in c.items()
           if k not in ("sweep", "scale", "traces", "traces_mirror", "fairness", "placement", "attribution", "agents",
                        "external")}
    p = tmp_path / "effective.yaml"
    p.write_text(yaml.safe_dump(eff, sort_keys=True))
    frozen = set(pd.read_csv(repo / "results/aggregate/runs.csv")["config_hash"])
    assert frozen == {config_hash(load_config(p))}


def test_rate_rule_hits_the_target_utilisation(cfg):
    ri = load_inputs(cfg, "mec_city", "static_sect", None)
    assert ri.best_static.max_utilisation == pytest.approx(cfg["fairness"]["workload"]["target_static_utilisation"], rel=1e-3)


def test_table_objective_figure_and_comparison(cfg, tmp_path):
    import pandas as pd

    from e3.fairness.analysis import (
        TABLE_COLUMNS,
        comparison_markdown,
        epoch_rows,
        fairness_figure,
        fairness_row,
        fairness_table,
        with_objective,
    )

    c = copy.deepcopy(cfg)
    c["fairness"]["horizon_s"] = 300
    paths = []
    for pol, ctl in (("round_robin", None), ("multi_agent", "rules")):
        ri = load_inputs(c, "mec_city", pol, ctl)
        for seed in (1, 2):
            d = tmp_path / f"{pol}{seed}"
            simulate(c, "mec_city", pol, ctl, seed, d, inputs=ri)
            paths.append(d / "summary.json")
    runs = with_objective(pd.DataFrame([fairness_row(p) for p in paths]), "round_robin", 1.0)
    rr = runs[runs["policy"] == "round_robin"]
    # the reference policy's own objective is 1 + w (1 - J')
    assert (rr["objective"] - (1.0 + (1.0 - rr["jain_normalized"]))).abs().max() < 1e-12
    cells = [{"policy": "multi_agent", "controller": "rules"}, {"policy": "round_robin"}]
    t = fairness_table(runs, cells, ["mec_city"], list(c["fairness"]["models"]))
    assert list(t.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert list(t["policy"]) == ["multi_agent", "round_robin"] and (t["n_seeds"] == 2).all()
    md = comparison_markdown(t)
    assert "74 s" in md and "> 80 %" in md and "multi_agent (llm)" in md
    out = fairness_figure(pd.DataFrame([r for p in paths for r in epoch_rows(p)]), tmp_path / "fig9")
    assert all(p.stat().st_size > 0 for p in out)


def test_cold_start_waits_for_activation(cfg, tmp_path):
    s = _run(cfg, "mec_city", "static_sect", tmp_path=tmp_path, initial_pods_active=False)
    t = pq.read_table(s.trace_path).to_pandas()
    first = t[t["start_ms"].notna()].groupby("model")["start_ms"].min()
    j = cfg["fairness"]["activation_jitter"]
    for m, start in first.items():
        assert start >= cfg["fairness"]["models"][m]["activation_s"] * 1000.0 * (1 - j) - 1e-6, m
    assert s.stats.activations == len(s.policy.ctx.best_static.pods)


def test_results_do_not_depend_on_the_yaml_order_of_models(cfg, tmp_path):
    c = copy.deepcopy(cfg)
    c["fairness"]["horizon_s"] = 300
    r = copy.deepcopy(c)
    r["fairness"]["models"] = dict(reversed(list(c["fairness"]["models"].items())))
    a = simulate(c, "mec_city", "multi_agent", "rules", 1, tmp_path / "a")
    b = simulate(r, "mec_city", "multi_agent", "rules", 1, tmp_path / "b")
    assert (tmp_path / "a/requests.parquet").read_bytes() == (tmp_path / "b/requests.parquet").read_bytes()
    assert a["jain_normalized"] == b["jain_normalized"]


def test_cli_dispatches_on_the_scenario_system(tmp_path, capsys):
    from e3.cli import main

    assert main(["simulate", "--scenario", "mec_city", "--policy", "jsq", "--seed", "1", "--out", str(tmp_path / "one"),
                 "--quiet"]) == 0
    assert (tmp_path / "one/summary.json").exists() and (tmp_path / "one/requests.parquet").exists()
    assert main(["simulate", "--scenario", "mec_city", "--policy", "jsq", "--seed", "1", "--tasks", "5",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--tasks does not apply" in capsys.readouterr().err
    assert main(["list"]) == 0
    assert "fairness policies:" in capsys.readouterr().out


# --- issue 29: feasible operating points and reporting that cannot reward levelling down --------
def test_rate_is_calibrated_on_the_busiest_epoch(cfg):
    ri = load_inputs(cfg, "mec_city", "static_sect", None)
    peak = max(ri.scenario.epoch_rate_factors)
    rates = {m: ri.total_rate_per_s * peak * s for m, s in ri.scenario.mix.items()}
    from e3.fairness.run import _program_inputs
    from e3.fairness.static import deployment_utilisation

    nodes, models, _, _, svc = _program_inputs(ri.system)
    u = deployment_utilisation(ri.best_static.pods, nodes, models, svc, rates)
    assert u == pytest.approx(cfg["fairness"]["workload"]["target_static_utilisation"], rel=1e-3)


def test_deployment_utilisation_by_hand():
    from e3.fairness.static import deployment_utilisation

    svc = {("a", "m"): 2.0, ("b", "m"): 1.0, ("a", "k"): 1.0, ("b", "k"): 1.0}
    # model m at 0.6 req/s on nodes a (2 s) and b (1 s): best split r_a = 0.2, r_b = 0.4 -> u = 0.4
    assert deployment_utilisation([("a", "m"), ("b", "m")], ["a", "b"], ["m", "k"], svc, {"m": 0.6}) == \
        pytest.approx(0.4)
    assert deployment_utilisation([("a", "m")], ["a", "b"], ["m", "k"], svc, {"m": 0.6, "k": 0.1}) == math.inf


def test_the_naive_deployment_is_an_infeasible_stress_case(cfg, monkeypatch):
    from e3.errors import E3Error
    from e3.fairness.policies import RoundRobinNaive

    load_inputs(cfg, "mec_city", "round_robin_naive", None)  # labelled stress: accepted
    monkeypatch.setattr(RoundRobinNaive, "stress", False)
    with pytest.raises(E3Error, match="naive deployment cannot carry scenario 'mec_city'"):
        load_inputs(cfg, "mec_city", "round_robin_naive", None)


def test_pareto_check_against_static_sect():
    import pandas as pd

    from e3.fairness.analysis import pareto_vs

    t = pd.DataFrame([{"scenario": "s", "policy": "static_sect", "latency_a_s": 10.0, "latency_b_s": 10.0},
                      {"scenario": "s", "policy": "x", "latency_a_s": 5.0, "latency_b_s": 20.0},
                      {"scenario": "s", "policy": "y", "latency_a_s": 5.0, "latency_b_s": 10.0}])
    assert [pareto_vs(t, r, ["a", "b"]) for _, r in t.iterrows()] == ["-", "mixed", "better"]


def test_dpp_one_slot_by_hand():
    """Issue 29: the standard drift-plus-penalty's pieces on numbers worked by hand."""
    from e3.fairness.policies import dpp_plan_rates, dpp_route_score, fairness_floor_update

    # a request of 2 s on a node with 3 s of backlog, 0.1 s away, V = 10:
    # drift 3 * 2 = 6, penalty 10 * (3 + 2 + 0.1) = 51
    assert dpp_route_score(3.0, 2.0, 0.1, 10.0) == pytest.approx(57.0)
    # an idle GPU (0 s backlog, 4 s) beats a busy faster one (10 s backlog, 1 s) at any V
    for v in (1.0, 10.0, 100.0):
        assert dpp_route_score(0.0, 4.0, 0.0, v) < dpp_route_score(10.0, 1.0, 0.0, v)
    # fairness floor 0.9: scores 1.0 and 0.5 (mean 0.75): Z_a = max(0 + 0.675 - 1, 0) = 0,
    # Z_b = 0.675 - 0.5 = 0.175; a model without a score keeps its queue
    z = fairness_floor_update({"a": 0.0, "b": 0.0, "c": 2.0}, {"a": 1.0, "b": 0.5, "c": None}, 0.9)
    assert z == pytest.approx({"a": 0.0, "b": 0.175, "c": 2.0})
    # equal scores meet the floor with slack: no queue grows (unlike floor 1 on noisy scores)
    assert fairness_floor_update({"a": 0.0, "b": 0.0}, {"a": 0.8, "b": 0.8}, 0.9) == {"a": 0.0, "b": 0.0}
    # frame 300 s, 60 arrivals (0.2/s), backlog 30 s of 1-s requests, Z 0.5, V 10:
    # 0.2 + 30 / 1 / (10 * 300) + 0.5 * 0.2 / 10 = 0.2 + 0.01 + 0.01
    r = dpp_plan_rates({"a": 60}, {"a": 30.0}, {"a": 0.5}, {"a": 1.0}, 300.0, 10.0)
    assert r["a"] == pytest.approx(0.22)


def test_dpp_drains_before_it_stops_and_never_fails_a_request(cfg, tmp_path):
    s = _run(cfg, "mec_city_skewed", "dpp", "v1", tmp_path=tmp_path)
    assert s.policy.changes > 0  # it did redeploy
    t = pq.read_table(s.trace_path).to_pandas()
    assert not (t["outcome"] == "failed").any()


def test_smooth_weighted_round_robin_follows_the_plan_shares():
    from types import SimpleNamespace

    from e3.fairness.policies import RoundRobin

    class Obs:
        def active_pods(self, m):
            return ["a", "b"]

    rr = RoundRobin.__new__(RoundRobin)
    rr.decisions, rr._next, rr._credit = 0, {}, {}
    rr._weights = {"m": {"a": 0.75, "b": 0.25}}
    picks = [rr.route(SimpleNamespace(model="m"), Obs()) for _ in range(8)]
    assert picks.count("a") == 6 and picks.count("b") == 2
    assert picks[:4] == ["a", "a", "b", "a"]  # nginx's smooth interleaving


def test_load_sweep_runs_each_utilisation_with_only_the_rate_rule_changed(cfg):
    from e3.fairness.load_sweep import run_sweep

    c = copy.deepcopy(cfg)
    c["fairness"]["horizon_s"] = 300
    spec = {"utilisations": [0.5, 0.85], "seeds": [1], "cells": [{"policy": "static_sect"}, {"policy": "jsq"}]}
    t = run_sweep(c, spec, ["mec_city"])
    assert list(t["target_static_utilisation"]) == [0.5, 0.5, 0.85, 0.85]
    lat = t.set_index(["target_static_utilisation", "policy"])["mean_latency_s"]
    assert lat[(0.5, "static_sect")] < lat[(0.85, "static_sect")]  # more load, more latency


def test_adapting_planner_reconfigures_under_overload_and_the_flat_one_does_not():
    # Hand-worked: one model, two nodes of equal speed (1 s), rate 1.5 req/s. Running: one pod
    # (u = 1.5). Starting the second pod halves u to 0.75.
    from e3.fairness.static import best_deployment

    nodes, models = ["a", "b"], ["m"]
    cap = {n: {"mem": 1.0} for n in nodes}
    dem = {(n, "m"): {"mem": 1.0} for n in nodes}
    svc = {(n, "m"): 1.0 for n in nodes}
    cur = frozenset({("a", "m")})
    # flat penalty 1.0 per change: keeping (u 1.5, -1) beats starting b (u 0.75, -1 + 1): no change
    flat = best_deployment(nodes, models, cap, dem, svc, {"m": 1.5}, current=cur, churn_penalty=1.0)
    assert flat.pods == cur and flat.max_utilisation == pytest.approx(1.5)
    # activation cost 0.5 alone: 0.75 + 0.5 < 1.5, start b
    act = best_deployment(nodes, models, cap, dem, svc, {"m": 1.5}, current=cur, activation_cost={(n, "m"): 0.5 for n in nodes})
    assert act.pods == {("a", "m"), ("b", "m")}
    # activation cost 0.9: 0.75 + 0.9 > 1.5, keep; the overload term (10 x (1.5 - 0.85)) makes it start b
    keep = best_deployment(nodes, models, cap, dem, svc, {"m": 1.5}, current=cur, activation_cost={(n, "m"): 0.9 for n in nodes})
    assert keep.pods == cur
    over = best_deployment(nodes, models, cap, dem, svc, {"m": 1.5}, current=cur, activation_cost={(n, "m"): 0.9 for n in nodes},
                           overload_weight=10.0, overload_threshold=0.85)
    assert over.pods == {("a", "m"), ("b", "m")}


def test_overload_threshold_is_the_calibration_target(repo):
    from e3.config import load_config

    f = load_config(repo / "config/config.yaml")["fairness"]
    assert f["agents"]["overload_threshold"] == f["workload"]["target_static_utilisation"]
