"""Does the optimisers' objective predict the simulation? (issue 30, item 4)

For each seed, candidate initial placements are taken from the placement policies' own
``initial`` (the optimisers, the heuristics, and random feasible placements from extra streams).
Each candidate gets the objective's predicted mean task latency at t = 0
(:meth:`e3.placement.model.Evaluator.user_latency_ms` at the users' starting access servers) and a
simulated mean task latency: the same world run with that placement held fixed (no migration).
The table gives, per seed, Spearman's rank correlation between the two over the candidates
(``pandas.Series.corr(method="spearman")``) and their mean ratio; the figure plots every
candidate. A correlation well below 1 means the objective ranks placements differently from the
simulation, so an optimiser can "improve" the objective and lose in the simulation.

``python -m e3.analysis ...``-style entry point: ``python -m e3.placement.objective_check
--seeds 1 2 3 --out results/tables/objective_check``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from e3.placement.policies import PlacementPolicy, get_policy

#: The policies whose initial placements are candidates (controller in brackets where needed).
CANDIDATE_POLICIES = (("aco", "none"), ("antllm", "local_search"), ("greedy_local_search", "local_search"),
                      ("greedy_nearest", "none"), ("best_fit", "none"), ("first_fit", "none"))
#: Extra random feasible placements per seed (each from its own stream).
RANDOM_CANDIDATES = 6


class _Fixed(PlacementPolicy):
    """Holds a given placement: ``initial`` returns it, ``decide`` never migrates."""

    name = "fixed_placement"
    migration = "none"
    placement: list[str] = []

    def initial(self, obs):
        return list(self.placement)

    def decide(self, obs, reason, user):
        return {}


def candidates(ri, seed: int) -> list[tuple[str, list[str]]]:
    """(label, placement as server names) of every candidate of ``seed``."""
    from e3.placement.run import build_simulation, load_inputs

    out = []
    for pol, ctl in CANDIDATE_POLICIES:
        r = load_inputs(ri.cfg, "agents_global", pol, ctl)
        sim, _, policy = build_simulation(r, seed)
        out.append((pol, list(policy.initial(sim.observation()))))
    for k in range(RANDOM_CANDIDATES):
        r = load_inputs(ri.cfg, "agents_global", "random_feasible", "none")
        sim, _, policy = build_simulation(r, seed)
        policy.rng.seed(1000 * seed + k)
        out.append((f"random_feasible#{k}", list(policy.initial(sim.observation()))))
    return out


def check(cfg: dict[str, Any], seeds: list[int], scenario: str = "agents_global") -> pd.DataFrame:
    """One row per (seed, candidate): predicted and simulated mean task latency (ms)."""
    from e3.placement.run import build_simulation, load_inputs, metrics

    base = load_inputs(cfg, scenario, "greedy_nearest", "none")
    rows = []
    for seed in seeds:
        for label, placement in candidates(base, seed):
            cls = type("FixedPlacement", (_Fixed,), {"placement": placement, "migration": get_policy("no_migration").migration})
            ri = replace(base, policy_cls=cls, controller="none")
            sim, world, policy = build_simulation(ri, seed)
            ev = policy.ev
            x = [ev.idx[s] for s in placement]
            access = [ev.idx[a] for a in sim.observation().user_access]
            predicted = float(np.mean(ev.user_latency_ms(x, access)))
            sim.run()
            m = metrics(sim.stats, ri.system, ri.p, len(world.tasks))
            rows.append({"scenario": scenario, "seed": seed, "candidate": label, "predicted_latency_ms": predicted,
                         "simulated_latency_ms": m["task_latency_mean_ms"], "objective": ev.objective(x, access)})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per seed: Spearman's rho of predicted against simulated latency, and of the objective
    against simulated latency, over the candidates, and the mean simulated / predicted ratio."""
    out = []
    for seed, d in df.groupby("seed"):
        out.append({"seed": seed, "candidates": len(d),
                    "spearman_latency": d["predicted_latency_ms"].corr(d["simulated_latency_ms"], method="spearman"),
                    "spearman_objective": d["objective"].corr(d["simulated_latency_ms"], method="spearman"),
                    "simulated_over_predicted": float((d["simulated_latency_ms"] / d["predicted_latency_ms"]).mean())})
    return pd.DataFrame(out)


def figure(df: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Scatter of simulated against predicted mean latency (s), one colour per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    for seed, d in df.groupby("seed"):
        ax.scatter(d["predicted_latency_ms"] / 1000, d["simulated_latency_ms"] / 1000, s=14, label=f"seed {seed}")
    lim = [0, max(df["predicted_latency_ms"].max(), df["simulated_latency_ms"].max()) / 1000 * 1.05]
    ax.plot(lim, lim, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("objective's predicted mean task latency (s)")
    ax.set_ylabel("simulated mean task latency (s)")
    ax.set_title("agents_global: candidate placements held fixed")
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths = [Path(f"{out_base}.png"), Path(f"{out_base}.pdf")]
    for p in paths:
        fig.savefig(p, dpi=150, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> int:
    from e3.config import load_config
    from e3.io import write_text_atomic

    ap = argparse.ArgumentParser(prog="python -m e3.placement.objective_check",
                                 description="Check the placement objective against the simulation: candidate "
                                             "placements held fixed, predicted against simulated latency.")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--out", default="results/tables/objective_check", help="table stem (also STEM_runs.csv)")
    ap.add_argument("--figure", default="results/figures/fig11_objective_check", help="figure stem")
    args = ap.parse_args(argv)
    df = check(load_config(args.config), args.seeds)
    s = summary(df)
    write_text_atomic(f"{args.out}_runs.csv", df.to_csv(index=False, float_format="%.4f"))
    write_text_atomic(f"{args.out}.csv", s.to_csv(index=False, float_format="%.4f"))
    figure(df, args.figure)
    print(s.to_string(index=False), file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
