"""The fairness table and Fig. 9 from the runs' ``summary.json`` files.

* ``fairness_row``: one run as a flat row (metrics of :func:`e3.fairness.run.request_metrics`).
* ``fairness_table``: one row per (scenario, policy, controller) cell: means over seeds, 95 %
  Student-t intervals (:func:`e3.analysis.tables.t_interval`), per-model means, and the composite
  objective ``Phi = L_mean / L_ref + w (1 - J')`` with ``L_ref`` the reference policy's mean
  latency on the same scenario and seed (config ``fairness.objective``), averaged over seeds.
* ``fairness_figure``: mean latency and normalised Jain per epoch (by arrival), one column per
  scenario, one line per cell (mean over seeds): how fast each policy adapts.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from e3.analysis.tables import cell_runs, t_interval
from e3.errors import InputError
from e3.run_summary import read_run_summary

TABLE_COLUMNS = ["scenario", "policy", "controller", "mean_latency_s", "p95_latency_s", "jain_raw",
                 "jain_normalized", "success_ratio", "pod_activations", "objective", "n_seeds",
                 "worst_model_latency_s", "min_model_success_ratio", "p95_latency_served_s", "censored_pct",
                 "pareto_vs_static_sect"]
EXTRA_COLUMNS = ["mean_latency_ci95_low_s", "mean_latency_ci95_high_s", "jain_normalized_ci95_low",
                 "jain_normalized_ci95_high", "objective_ci95_low", "objective_ci95_high",
                 "jain_inverse_latency", "mean_latency_served_s", "failed", "timed_out", "llm_fallbacks"]


def fairness_row(summary_path: str | Path) -> dict:
    """Flatten one fairness ``summary.json``. Raises InputError on a missing file or field."""
    p = Path(summary_path)
    s = read_run_summary(p, "fairness")  # the run-summary schema: a malformed run fails here, named
    try:
        row = {k: s[k] for k in ("scenario", "policy", "controller", "seed", "issued", "served", "timed_out", "failed",
                                 "mean_latency_s", "p95_latency_s", "mean_latency_served_s", "jain_raw",
                                 "jain_normalized", "jain_inverse_latency", "success_ratio", "pod_activations",
                                 "worst_model_latency_s", "min_model_success_ratio", "p95_latency_served_s",
                                 "censored_fraction")}
        row.update({f"latency_{m}_s": v for m, v in s["per_model_mean_latency_s"].items()})
        row["llm_fallbacks"] = s["policy_summary"].get("fallbacks_total", 0)
        return row
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(p, getattr(exc, "args", ["?"])[0] if isinstance(exc, KeyError) else "summary",
                         f"not a readable fairness summary: {exc}") from None


def epoch_rows(summary_path: str | Path) -> list[dict]:
    """Per-epoch rows (scenario, policy, controller, seed, epoch, mean_latency_s, jain_normalized)."""
    s = read_run_summary(summary_path, "fairness")
    return [{"scenario": s["scenario"], "policy": s["policy"], "controller": s["controller"], "seed": s["seed"],
             "epoch": e["epoch"], "mean_latency_s": e["mean_latency_s"], "jain_normalized": e["jain_normalized"]}
            for e in s["per_epoch"]]


def with_objective(runs: pd.DataFrame, reference_policy: str, weight: float) -> pd.DataFrame:
    """Add ``objective`` per run: ``L / L_ref(scenario, seed) + weight * (1 - J')``; NaN where the
    reference run is missing."""
    ref = runs[runs["policy"] == reference_policy].groupby(["scenario", "seed"])["mean_latency_s"].mean()
    lref = [ref.get((sc, sd), math.nan) for sc, sd in zip(runs["scenario"], runs["seed"], strict=True)]
    return runs.assign(objective=runs["mean_latency_s"] / pd.Series(lref, index=runs.index)
                       + weight * (1.0 - runs["jain_normalized"]))


def fairness_table(runs: pd.DataFrame, cells: list[dict], scenarios: list[str], models: list[str]) -> pd.DataFrame:
    """One row per cell in config order (scenario, then cell); see the module docstring."""
    rows = []
    for sc, pol, ctl, c in cell_runs(runs, scenarios, cells):
        lo, hi = t_interval(c["mean_latency_s"])
        jlo, jhi = t_interval(c["jain_normalized"])
        olo, ohi = t_interval(c["objective"].dropna())
        r = {"scenario": sc, "policy": pol, "controller": ctl, "mean_latency_s": c["mean_latency_s"].mean(),
             "p95_latency_s": c["p95_latency_s"].mean(), "jain_raw": c["jain_raw"].mean(),
             "jain_normalized": c["jain_normalized"].mean(), "success_ratio": c["success_ratio"].mean(),
             "pod_activations": c["pod_activations"].mean(), "objective": c["objective"].mean(),
             "n_seeds": len(c), "mean_latency_ci95_low_s": lo, "mean_latency_ci95_high_s": hi,
             "jain_normalized_ci95_low": jlo, "jain_normalized_ci95_high": jhi,
             "objective_ci95_low": olo, "objective_ci95_high": ohi,
             "jain_inverse_latency": c["jain_inverse_latency"].mean(),
             "mean_latency_served_s": c["mean_latency_served_s"].mean(), "failed": c["failed"].mean(),
             "timed_out": c["timed_out"].mean(), "llm_fallbacks": c["llm_fallbacks"].mean(),
             "worst_model_latency_s": c["worst_model_latency_s"].mean(),
             "min_model_success_ratio": c["min_model_success_ratio"].mean(),
             "p95_latency_served_s": c["p95_latency_served_s"].mean(),
             "censored_pct": 100.0 * c["censored_fraction"].mean()}
        r.update({f"latency_{m}_s": c[f"latency_{m}_s"].mean() for m in models})
        rows.append(r)
    t = pd.DataFrame(rows, columns=TABLE_COLUMNS + EXTRA_COLUMNS + [f"latency_{m}_s" for m in models])
    return t.assign(pareto_vs_static_sect=[pareto_vs(t, r, models) for _, r in t.iterrows()])


def pareto_vs(t: pd.DataFrame, row: pd.Series, models: list[str], ref_policy: str = "static_sect") -> str:
    """How a cell's per-model mean latencies compare with ``ref_policy``'s on the same scenario:
    ``better`` (no model slower, one faster, by more than 1 %), ``worse`` (the reverse), ``mixed``
    (some models faster, some slower: a fairness gain there may be levelling down), ``same``, or
    ``-`` (no reference, or the reference itself)."""
    ref = t[(t["scenario"] == row["scenario"]) & (t["policy"] == ref_policy)]
    if ref.empty or row["policy"] == ref_policy:
        return "-"
    ref = ref.iloc[0]
    rel = [row[f"latency_{m}_s"] / ref[f"latency_{m}_s"] - 1.0 for m in models]
    faster, slower = any(x < -0.01 for x in rel), any(x > 0.01 for x in rel)
    return "mixed" if faster and slower else "better" if faster else "worse" if slower else "same"


def label(policy: str, controller: str) -> str:
    """Legend label of a cell."""
    if policy in ("lyapunov_dpp", "dpp"):
        return f"{policy} V={controller[1:]}"
    return policy if controller == "none" else f"{policy} ({controller})"


def fairness_figure(epochs: pd.DataFrame, out_base: str | Path) -> list[Path]:
    """Fig. 9: mean latency (top, log scale) and normalised Jain (bottom) per epoch; one column per
    scenario, one line per cell (mean over seeds). Returns the PNG and PDF paths."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save

    e = epochs.copy()
    e["cell"] = [label(p, c) for p, c in zip(e["policy"], e["controller"], strict=True)]
    e = e.groupby(["scenario", "cell", "epoch"], sort=False, as_index=False)[["mean_latency_s", "jain_normalized"]].mean()
    scenarios = list(dict.fromkeys(e["scenario"]))
    fig, axes = plt.subplots(2, len(scenarios), figsize=(4.4 * len(scenarios), 6.6), squeeze=False, sharex=True)
    for j, sc in enumerate(scenarios):
        d = e[e["scenario"] == sc]
        for i, (col, ylab) in enumerate((("mean_latency_s", "mean latency (s, censored)"),
                                         ("jain_normalized", "normalised Jain J'"))):
            ax = axes[i][j]
            sns.lineplot(data=d, x="epoch", y=col, hue="cell", marker="o", markersize=3, ax=ax,
                         legend=(i == 1 and j == 0))
            ax.set_ylabel(ylab if j == 0 else "")
            ax.set_xlabel("epoch (5 min)" if i == 1 else "")
            if i == 0:
                ax.set_yscale("log")
                ax.set_title(sc)
            else:
                ax.set_ylim(0, 1)
    if axes[1][0].get_legend() is not None:
        sns.move_legend(axes[1][0], "lower left", fontsize=6, title=None, ncol=2)
    return _save(fig, Path(out_base))


def _cell(t: pd.DataFrame, sc: str, pol: str, ctl: str = "none") -> pd.Series | None:
    r = t[(t["scenario"] == sc) & (t["policy"] == pol) & (t["controller"] == ctl)]
    return None if r.empty else r.iloc[0]


def comparison_markdown(t: pd.DataFrame) -> str:
    """``results/fairness_comparison.md``: each readable claim of arXiv 2602.07215 beside our
    numbers from the fairness table ``t``, in shape, with the caveat about the sources."""
    naive = ("round_robin_naive", "random_naive", "jsq_naive")
    feasible = ("static_sect", "jsq", "round_robin", "random")
    lines = [
        "# The multi-agentic fairness paper (arXiv 2602.07215) beside our simulation",
        "",
        "Generated by `snakemake fairness` from `results/tables/fairness.csv`; do not edit.",
        "",
        "**Caveat.** The paper's full text could not be read: its claims below come from the abstract [P]",
        "and a third-party summary [S] (what is known and what we chose: docs/fairness.md). Its testbed (7",
        "VMs, real models, GPT-4/GPT-5 agents) is replaced by a simulation whose sizes, speeds, rates and",
        "agent rules are our own choices (config `fairness`, each marked (I)). Compare shapes, not values.",
        "Our multi-agent rows: the deterministic `rules` surrogate, and the `llm` back-end with a small",
        "local model (Qwen2.5-Coder 1.5B) as the planner, its plans executed per slot by the rules steps",
        "(a stated departure: docs/fairness.md); the paper's agents are GPT-4/GPT-5.",
        "",
        "| claim | paper | ours: multi_agent (rules) | shape holds? |",
        "|---|---|---|---|",
    ]
    scen = list(dict.fromkeys(t["scenario"]))
    for sc in scen:
        ma = _cell(t, sc, "multi_agent", "rules")
        if ma is None:
            continue
        base = {p: b for p in naive if (b := _cell(t, sc, p)) is not None}
        red = {p: 100.0 * (1.0 - ma["mean_latency_s"] / b["mean_latency_s"]) for p, b in base.items() if b is not None}
        worst_j = min((b["jain_normalized"], p) for p, b in base.items() if b is not None) if base else None
        lines.append(f"| mean end-to-end latency ({sc}) | 74 s [S] | {ma['mean_latency_s']:.1f} s "
                     f"(p95 {ma['p95_latency_s']:.0f} s, success {100 * ma['success_ratio']:.1f} %) | scale not comparable |")
        red_txt = ", ".join(f"{p} {v:.0f} %" for p, v in red.items())
        lines.append(f"| latency reduction vs naive baselines ({sc}) | > 80 % [P] | {red_txt} (naive deployment: "
                     f"a stress case that cannot carry the demand) | "
                     f"{'yes' if red and min(red.values()) > 80 else 'partly' if red and max(red.values()) > 80 else 'no'} |")
        feas = {p: b for p in feasible if (b := _cell(t, sc, p)) is not None}
        if feas:
            fr = ", ".join(f"{p} {100.0 * (1.0 - ma['mean_latency_s'] / b['mean_latency_s']):+.0f} %"
                           for p, b in feas.items())
            lines.append(f"| latency reduction vs the same baselines on a feasible deployment ({sc}) | not stated | "
                         f"{fr} | {'yes' if all(ma['mean_latency_s'] < b['mean_latency_s'] for b in feas.values()) else 'no'} |")
        if worst_j is not None:
            lines.append(f"| normalised Jain ({sc}) | 0.90, from 0.51 [P/S] | {ma['jain_normalized']:.2f} "
                         f"(naive baselines {min(b['jain_normalized'] for b in base.values() if b is not None):.2f}-"
                         f"{max(b['jain_normalized'] for b in base.values() if b is not None):.2f}) | "
                         f"{'yes' if ma['jain_normalized'] > max(b['jain_normalized'] for b in base.values() if b is not None) else 'no'} |")
    lines += ["| adapts and stabilises faster than hierarchical DRL | [S], no time given | no DRL baseline "
              "(optional in issue 14, not built); per-epoch adaptation in Fig. 9 | not tested |", ""]
    lines += ["## Against the other baselines", "",
              "| scenario | multi_agent (rules) L / J' | multi_agent (llm) L / J' (fallbacks a run) | "
              "best dpp L / J' | static_sect L / J' | "
              "multi_agent worst model L / min model success | per-model latency vs static_sect |",
              "|---|---|---|---|---|---|---|"]
    for sc in scen:
        ma, st = _cell(t, sc, "multi_agent", "rules"), _cell(t, sc, "static_sect")
        llm = _cell(t, sc, "multi_agent", "llm")
        dpp = [r for v in ("v1", "v10", "v100") if (r := _cell(t, sc, "dpp", v)) is not None]
        best = min(dpp, key=lambda r: r["objective"]) if dpp else None

        def fmt(r, name=""):
            return "--" if r is None else f"{name}{r['mean_latency_s']:.1f} s / {r['jain_normalized']:.2f}"

        vname = "V=" + best["controller"][1:] + ": " if best is not None else ""
        worst = "--" if ma is None else (f"{ma['worst_model_latency_s']:.1f} s / "
                                         f"{100 * ma['min_model_success_ratio']:.1f} %")
        pareto = "--" if ma is None else ma["pareto_vs_static_sect"]
        llm_txt = "--" if llm is None else f"{fmt(llm)} ({llm['llm_fallbacks']:.1f})"
        lines.append(f"| {sc} | {fmt(ma)} | {llm_txt} | {fmt(best, vname)} | {fmt(st)} | {worst} | {pareto} |")
    lines += ["", "L = mean latency censored at the 600-s timeout; J' = normalised Jain over per-model "
              "scores ref_m / L_m (ref = the model's fastest prior), rescaled to [0, 1]. \"mixed\": some "
              "models faster and some slower than under static_sect (a J' gain there may be levelling "
              "down); the worst model's latency and the smallest per-model success ratio cannot reward it.",
              "", "## What release 0.1.0 concluded that was an artefact of the setting (issue 29)", "",
              "- **\"> 80 % latency reduction vs the naive baselines\"** was measured against deployments that "
              "cannot carry the demand whatever they route (Stable Diffusion on one GPU and CPU pods). Those "
              "baselines are now labelled stress cases (`*_naive`); the routing baselines run on the best "
              "static deployment, which carries the busiest epoch.",
              "- **The fairness advantage** rewarded levelling down: J' rose while three of four models got "
              "slower than under static_sect. The table now sets per-model latency, the worst model's "
              "latency and success ratio and a Pareto check against static_sect beside every J'.",
              "- **The composite objective** divided latency by round_robin's on an infeasible deployment, so "
              "it ranked by J' alone; it is now referenced to static_sect.",
              "- **The operating point** was critical: calibrated on the mean epoch, the best static plan's "
              "GPUs ran at 0.94-1.04 in busier epochs. The rate is now calibrated on the busiest epoch.",
              "- **The Lyapunov baseline was a strawman** (0.1.0's `lyapunov_dpp`: softmax routing at the "
              "median score, a fairness queue only equality satisfies, lockstep redeployments that fail "
              "queued requests). `dpp` is the standard drift-plus-penalty (per-request min-drift routing, "
              "a satisfiable fairness floor, frame-based redeployment with switching and activation cost, "
              "drain before stop), V swept; `lyapunov_dpp` V=10 stays for reference.",
              "- **`multi_agent` never adapted**: its planner's flat churn penalty kept the first plan for "
              "every epoch (row `multi_agent_churn_averse`). The planner now charges each started pod its "
              "activation time per epoch and each unit of utilisation above the calibration target ten "
              "units, so it reconfigures under overload; whether that pays is in the table above.",
              "- **No LLM number existed**: the `llm` cells are now recorded (10 seeds a scenario, replayed "
              "offline). The model plans per epoch and surge; a plan that would overload a node at the "
              "measured rates is refused and the running plan kept (counted as a fallback).", ""]
    return "\n".join(lines)
