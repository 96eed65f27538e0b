"""The migration table, Fig. 10 and the comparison with AntLLM's reported claims (issue 15).

* :func:`migration_row`: one run as a flat row (from its ``summary.json``).
* :func:`migration_table`: one row per (scenario, policy, controller) cell in config order: means
  over seeds and 95 % Student-t intervals (:func:`e3.analysis.tables.t_interval`) of the task
  latency, QoS ratio and total cost. Every column is deterministic: the optimiser's wall time
  stays in each run's ``timing.json`` (``optimizer_s``), out of the frozen files, which a rerun
  must reproduce byte for byte (the SLURM test compares them).
* :func:`migration_figure`: QoS ratio, mean task latency and migration cost per cell, one column
  per scenario.
* :func:`comparison_markdown`: each reported claim beside our number, in shape, with the caveat.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from e3.analysis.tables import cell_runs, t_interval
from e3.run_summary import read_run_summary

TABLE_COLUMNS = ["scenario", "policy", "controller", "task_latency_mean_ms", "task_latency_p95_ms", "qos_ratio",
                 "deployment_latency_ms", "migrations", "migration_mb", "migration_cost", "utilisation", "total_cost",
                 "llm_calls", "n_seeds"]
#: refinement counters of a run's policy_summary (0 for policies without refinement), means per run
REFINE_COUNTERS = ("refine_accepted", "refine_rejected", "llm_fallbacks", "local_evaluations",
                   "rejected_not_better", "rejected_infeasible", "rejected_unknown", "rejected_no_change")
CI_COLUMNS = ["task_latency_mean_ci95_low_ms", "task_latency_mean_ci95_high_ms", "qos_ratio_ci95_low",
              "qos_ratio_ci95_high", "total_cost_ci95_low", "total_cost_ci95_high", "refused_migrations",
              "evacuation_failures", *REFINE_COUNTERS]
BASELINES = ("random_feasible", "greedy_nearest", "best_fit", "first_fit")


def migration_row(summary_path: str | Path) -> dict:
    """One run's metrics. Raises InputError on a missing or unreadable summary."""
    s = read_run_summary(summary_path, "placement")  # the run-summary schema: a malformed run fails here
    keys = [c for c in TABLE_COLUMNS if c != "n_seeds"] + ["seed", "refused_migrations", "evacuation_failures"]
    ps = s.get("policy_summary") or {}
    return {**{k: s[k] for k in keys}, **{k: ps.get(k, 0) for k in REFINE_COUNTERS}}


def migration_table(runs: pd.DataFrame, cells: list[dict], scenarios: list[str]) -> pd.DataFrame:
    """One row per cell in config order (scenario, then cell)."""
    rows = []
    for sc, pol, ctl, c in cell_runs(runs, scenarios, cells):
        r = {"scenario": sc, "policy": pol, "controller": ctl, "n_seeds": len(c)}
        for k in TABLE_COLUMNS[3:-1] + ["refused_migrations", "evacuation_failures", *REFINE_COUNTERS]:
            r[k] = c[k].mean()
        r["task_latency_mean_ci95_low_ms"], r["task_latency_mean_ci95_high_ms"] = t_interval(c["task_latency_mean_ms"])
        r["qos_ratio_ci95_low"], r["qos_ratio_ci95_high"] = t_interval(c["qos_ratio"])
        r["total_cost_ci95_low"], r["total_cost_ci95_high"] = t_interval(c["total_cost"])
        rows.append(r)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS + CI_COLUMNS)


def label(policy: str, controller: str) -> str:
    """Axis label of a cell."""
    return policy if controller == "none" else f"{policy} ({controller})"


def migration_figure(t: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 10: QoS ratio, mean task latency (s) and migration cost per cell (bars, 95 % CI whiskers
    where available), one column per scenario. Returns the PNG and PDF paths."""
    import matplotlib.pyplot as plt

    from e3.analysis.figures import _save

    scenarios = list(dict.fromkeys(t["scenario"]))
    fig, axes = plt.subplots(3, len(scenarios), figsize=(5.0 * len(scenarios), 9.0), squeeze=False, sharey="row")
    for j, sc in enumerate(scenarios):
        d = t[t["scenario"] == sc]
        names = [label(p, c) for p, c in zip(d["policy"], d["controller"], strict=True)]
        y = range(len(d))
        for i, (col, lo, hi, xlab) in enumerate((
                ("qos_ratio", "qos_ratio_ci95_low", "qos_ratio_ci95_high", "QoS ratio (deadline met)"),
                ("task_latency_mean_ms", "task_latency_mean_ci95_low_ms", "task_latency_mean_ci95_high_ms",
                 "mean task latency (s)"),
                ("migration_cost", None, None, "migration cost"))):
            ax = axes[i][j]
            scale = 1000.0 if col.endswith("_ms") else 1.0
            v = d[col] / scale
            err = None
            if lo is not None:
                err = [(d[col] - d[lo]).clip(lower=0) / scale, (d[hi] - d[col]).clip(lower=0) / scale]
            ax.barh(list(y), v, xerr=err, color=["#c44e52" if p.startswith("antllm") else "#4c72b0" for p in d["policy"]])
            ax.set_yticks(list(y))
            ax.set_yticklabels(names, fontsize=7)
            ax.invert_yaxis()
            ax.set_xlabel(xlab)
            if i == 0:
                ax.set_title(sc)
    fig.tight_layout()
    return _save(fig, Path(out_base))


def _cell(t: pd.DataFrame, sc: str, pol: str, ctl: str = "none") -> pd.Series | None:
    r = t[(t["scenario"] == sc) & (t["policy"] == pol) & (t["controller"] == ctl)]
    return None if r.empty else r.iloc[0]


def _pct(ours: float, ref: float) -> str:
    return "n/a" if not ref else f"{100.0 * (ours - ref) / ref:+.1f} %"


#: the objective check's numbers under 0.4.0's M/M/1 factor (results/tables/objective_check.csv of
#: release 0.4.0, seeds 1-5), quoted beside the current ones
MM1_OBJECTIVE_CHECK = {"spearman_objective": (0.48, 0.84), "simulated_over_predicted": (0.69, 0.90)}
QUEUEING_NAMES = {"mm1": "M/M/1", "mg1": "M/G/1 (Pollaczek-Khinchine)"}


def objective_check_bullet(check: pd.DataFrame, queueing: str) -> str:
    """The comparison's line on the objective against the simulation, from the objective check.

    Args:
        check: ``results/tables/objective_check.csv`` (one row a seed: ``spearman_latency``,
            ``spearman_objective``, ``simulated_over_predicted``); ``queueing``: ``cost.queueing``.

    Raises:
        KeyError: a column missing from ``check``.
    """
    def span(col: str) -> str:
        return f"{check[col].min():.2f}-{check[col].max():.2f}"

    ratio = float(check["simulated_over_predicted"].mean())
    lo, hi = MM1_OBJECTIVE_CHECK["simulated_over_predicted"]
    lo_o, hi_o = MM1_OBJECTIVE_CHECK["spearman_objective"]
    return ("- **The objective against the simulation** (`results/tables/objective_check.csv`, Fig. 11): over "
            "candidate placements held fixed, the objective's latency term ranks them as the simulation does "
            f"(Spearman {span('spearman_latency')} per seed), the whole objective, with its resource-cost and "
            f"violation terms, less well ({span('spearman_objective')}). With the {QUEUEING_NAMES[queueing]} "
            f"queueing factor (`placement.cost.queueing: {queueing}`) the simulated latency is "
            f"{span('simulated_over_predicted')} x the predicted one (mean {ratio:.2f}). Releases up to 0.4.0 used "
            f"M/M/1's 1/(1-rho), which assumes exponential service while a step's cv2 is about 0.11: it "
            f"over-predicted latency (ratio {lo:.2f}-{hi:.2f}) and ranked the whole objective worse "
            f"({lo_o:.2f}-{hi_o:.2f}), so an optimiser could lower the objective and lose in the simulation. The "
            "remaining error comes from the chains' steps, which do not reach a server as a Poisson stream.")


#: the refinement's references: the same ant colony refined by local search (its own budget, and
#: the llm's budget: equal evaluations), and not refined at all
REFINEMENT_REFERENCES = (("antllm", "local_search"), ("antllm", "local_search_llm_budget"), ("aco", "none"))


def refinement_paired_lines(runs: pd.DataFrame, scenario: str) -> list[str]:
    """The llm refinement against each of :data:`REFINEMENT_REFERENCES` in ``scenario``, paired on
    the seed: the mean difference of the task latency (s) and of the QoS ratio (points), with the
    95 % Student-t interval of the mean difference (:func:`e3.analysis.tables.t_interval`).

    Args:
        runs: one row per run (:func:`migration_row` with ``scenario``, ``policy``, ``controller``).

    Returns:
        Markdown lines (empty when the llm cell did not run in ``scenario``).
    """
    def cell(pol: str, ctl: str) -> pd.DataFrame:
        c = runs[(runs["scenario"] == scenario) & (runs["policy"] == pol) & (runs["controller"] == ctl)]
        return c.set_index("seed")

    llm = cell("antllm", "llm")
    if llm.empty:
        return []
    out = ["Paired on the seed, llm minus each reference (mean difference, 95 % t interval; negative latency "
           "means the llm refinement is faster):", ""]
    for pol, ctl in REFINEMENT_REFERENCES:
        ref = cell(pol, ctl)
        seeds = llm.index.intersection(ref.index)
        if len(seeds) < 2:
            continue
        d_lat = (llm.loc[seeds, "task_latency_mean_ms"] - ref.loc[seeds, "task_latency_mean_ms"]) / 1000.0
        d_qos = 100.0 * (llm.loc[seeds, "qos_ratio"] - ref.loc[seeds, "qos_ratio"])
        (lo, hi), (qlo, qhi) = t_interval(d_lat), t_interval(d_qos)
        out.append(f"- vs {label(pol, ctl)}, {len(seeds)} seeds: task latency {d_lat.mean():+.2f} s "
                   f"({lo:+.2f} to {hi:+.2f}), QoS {d_qos.mean():+.1f} points ({qlo:+.1f} to {qhi:+.1f})")
    return out


def comparison_markdown(t: pd.DataFrame, check: pd.DataFrame | None = None, queueing: str = "mm1",
                        runs: pd.DataFrame | None = None) -> str:
    """The reported claims beside ours (AntLLM with the local_search controller against the mean of
    the four heuristic baselines), per scenario, with the caveat about the sources; where the
    ``antllm``/``llm`` cell ran, a table of the LLM refinement beside local_search and plain aco
    (latency, QoS, cost, accepted and rejected moves, LLM calls, fallbacks).

    Args:
        t: the migration table (:func:`migration_table`); ``check``: the objective check
            (:func:`objective_check_bullet`; None leaves its line out); ``queueing``: ``cost.queueing``;
            ``runs``: one row per run, for the llm refinement's paired differences
            (:func:`refinement_paired_lines`; None leaves them out).
    """
    out = ["# AntLLM (arXiv 2508.03345): reported claims beside this simulation", "",
           "Caveat: no code was released and the paper's full text could not be read. Every reported number",
           "below comes from third-party summaries (several AI-generated, not checked against the paper; see",
           "`shared/paper/related-agent-placement-migration-SPEC.md`); their baselines, units and scenarios are",
           "unknown, so only the direction (shape) of each claim can be compared. Our system, values and",
           "baselines are the spec's inventions (config `placement`; docs/placement.md).",
           "`antllm` in the claims table is MAX-MIN Ant System refined by `local_search` (first-improvement moves, the",
           "same 5-move budget), the cell run on every scenario; the LLM refinement (`antllm (llm)`, replayed",
           "from the recorded responses of a local 1.5B model) is compared with it and plain `aco` below each",
           "table. Recording took about 14 s a model call (two a decision with the feedback round) on 2 CPU cores "
           "(`results/llm/responses.jsonl.runs.json`); wall times are in each run's timing.json.", ""]
    for sc in dict.fromkeys(t["scenario"]):
        ant = _cell(t, sc, "antllm", "local_search")
        base = t[(t["scenario"] == sc) & t["policy"].isin(BASELINES)]
        if ant is None or base.empty:
            continue
        m = base.mean(numeric_only=True)
        aco = _cell(t, sc, "aco")
        fol = _cell(t, sc, "always_follow", "local_search")
        out += [f"## {sc}", "",
                "| claim | reported [source] | ours: antllm vs mean of baselines | same shape? |",
                "|---|---|---|---|"]

        def row(name, rep, ours, ref, lower_better):
            ch = _pct(ours, ref)
            shape = "n/a" if not ref else ("yes" if ((ours < ref) == lower_better) else "no")
            return f"| {name} | {rep} | {ch} ({ours:.4g} vs {ref:.4g}) | {shape} |"

        out.append(row("deployment latency", "-9.5 % [S arxivlens]", ant["deployment_latency_ms"], m["deployment_latency_ms"], True))
        out.append(row("migration cost", "-11.5 % [S arxivlens]", ant["migration_cost"], m["migration_cost"], True))
        out.append(row("task latency", "-10.3 % [S emergentmind]", ant["task_latency_mean_ms"], m["task_latency_mean_ms"], True))
        out.append(row("resource consumption (total cost)", "-38.6 % [S emergentmind]", ant["total_cost"], m["total_cost"], True))
        out.append(row("resource utilisation", "+32.7 % [S newx.sg]", ant["utilisation"], m["utilisation"], False))
        out.append(f"| tasks meeting QoS | 99.2 % [S newx.sg] | {100 * ant['qos_ratio']:.1f} % "
                   f"(baselines {100 * m['qos_ratio']:.1f} %) | {'yes' if ant['qos_ratio'] >= 0.99 else 'no'} |")
        out.append("")
        if aco is not None:
            out.append(f"Refinement: antllm (local_search) vs plain aco: task latency {_pct(ant['task_latency_mean_ms'], aco['task_latency_mean_ms'])}, "
                       f"QoS {100 * ant['qos_ratio']:.1f} % vs {100 * aco['qos_ratio']:.1f} %, total cost {_pct(ant['total_cost'], aco['total_cost'])}.")
        llm = _cell(t, sc, "antllm", "llm")
        if llm is not None:
            out.append("")
            out.append("Refinement, LLM vs local_search (its own budget and the LLM's) vs none (means per run; moves are proposed then accepted only "
                       "if feasible and lowering the objective):")
            out.append("")
            out.append("| cell | n_seeds | task latency (s) | QoS | total cost | accepted moves | rejected | "
                       "LLM calls | fallbacks |")
            out.append("|---|---|---|---|---|---|---|---|---|")
            budget = _cell(t, sc, "antllm", "local_search_llm_budget")
            for name, r in (("antllm (llm)", llm), ("antllm (local_search)", ant),
                            ("antllm (local_search_llm_budget)", budget), ("aco", aco)):
                if r is not None:
                    out.append(f"| {name} | {int(r['n_seeds'])} | {r['task_latency_mean_ms'] / 1000:.2f} | "
                               f"{100 * r['qos_ratio']:.1f} % | {r['total_cost']:.1f} | {r['refine_accepted']:.1f} | "
                               f"{r['refine_rejected']:.1f} | {r['llm_calls']:.1f} | {r['llm_fallbacks']:.1f} |")
            out.append("")
            out.append(f"Why the LLM's changes were rejected (a run): {llm['rejected_not_better']:.1f} did not lower the "
                       f"objective, {llm['rejected_infeasible']:.1f} did not fit, {llm['rejected_unknown']:.1f} named an "
                       f"unknown agent or server, {llm['rejected_no_change']:.1f} changed nothing. Local search "
                       f"evaluated {ant['local_evaluations']:.0f} candidates a run at its own budget"
                       + (f", {budget['local_evaluations']:.0f} at the LLM's." if budget is not None else "."))
            out.append("")
            if runs is not None:
                out += refinement_paired_lines(runs, sc) + [""]
        if fol is not None:
            out.append(f"Migration cost against always_follow: {_pct(ant['migration_cost'], fol['migration_cost'])} "
                       f"({ant['migration_cost']:.3g} vs {fol['migration_cost']:.3g}).")
        gls = _cell(t, sc, "greedy_local_search", "local_search")
        if aco is not None and gls is not None:
            out.append("")
            out.append(f"ACO at equal evaluations: aco (MAX-MIN Ant System) vs greedy + local search with the same "
                       f"objective evaluations: task latency {_pct(aco['task_latency_mean_ms'], gls['task_latency_mean_ms'])}, "
                       f"QoS {100 * aco['qos_ratio']:.1f} % vs {100 * gls['qos_ratio']:.1f} %, total cost "
                       f"{_pct(aco['total_cost'], gls['total_cost'])}.")
        ev = t[(t["scenario"] == sc) & (t["evacuation_failures"] > 0)]
        if not ev.empty:
            # the objective has no term for headroom: a packed placement strands a leaving server's agents
            out.append("")
            out.append("Outages no server could absorb (agents of a leaving server with no room elsewhere, stranded "
                       "until it returns; mean a run): " + ", ".join(
                           f"{label(r.policy, r.controller)} {r.evacuation_failures:.1f}" for r in ev.itertuples())
                       + "; every other cell 0.")
        nom = _cell(t, sc, "no_migration", "local_search")
        if nom is not None:
            out.append("")
            out.append(f"Migration's worth: antllm vs no_migration (the same initial placement, never migrated): task "
                       f"latency {_pct(ant['task_latency_mean_ms'], nom['task_latency_mean_ms'])}, QoS "
                       f"{100 * ant['qos_ratio']:.1f} % vs {100 * nom['qos_ratio']:.1f} %.")
        out.append("")
    out += ["## What earlier releases concluded that was an artefact of the setting (issue 30)", "",
            "- **QoS** was fixed by the deadline rule: the deadline was 1.5 x the unloaded time on the user's "
            "access server, and step times differ 2.5x within a region, so QoS was 0.38-0.50 for users on fast "
            "servers and 0.88-0.94 on slow ones. The deadline is now taken at the pool's mean prior speed "
            "(`placement.tasks.deadline_reference`).",
            "- **The ant colony learned nothing**: trails started at 1 against deposits of ~0.007, so the "
            "pheromone ratio after 20 iterations was ~2 and most EAM runs returned the warm start. `aco` is now "
            "MAX-MIN Ant System on the objective's scale at the spec's budget, beside greedy + local search at "
            "the same evaluations (`greedy_local_search`).",
            "- **The LLM refinement was not given a fair chance**: its prompt omitted each server's load, which "
            "drives the predicted latency, and it had no feedback. Its prompt (`refine.prompt: v4`; v3 under 0.4.0's M/M/1 objective) now shows each "
            "server's predicted load and step time with queueing, and one feedback round "
            "(`refine.feedback_rounds: 1`) reports what each proposed change did to the objective and asks for "
            "more; the table above is that refinement.",
            *([objective_check_bullet(check, queueing)] if check is not None else []),
            "- **Migration's worth** was reported at one mobility and load only. "
            "`results/tables/migration_sweep.md` (`snakemake --cores 8 migration_sweep`) sweeps mobility (mean "
            "dwell 3,600-300 s) and load (utilisation 0.2-0.6) with the paired change against `no_migration` "
            "and its 95 % interval. Up to release 0.4.0 `no_migration`, `always_follow` and `antllm_heavy` drew "
            "their own random streams and started from another ant-colony placement than `antllm`'s, so each "
            "comparison with them measured that difference too; they now draw `antllm`'s "
            "(`placement.ablation_stream: shared`) and start from its placement.",
            "- **An outage no server could absorb** was simulated as if it had not happened: a leaving server "
            "whose agents found no room stayed up and served. It now goes down on time and those agents serve "
            "nothing until it returns (`placement.outage: strand`; `stranded_agents` in each run's summary).", ""]
    return "\n".join(out) + "\n"
