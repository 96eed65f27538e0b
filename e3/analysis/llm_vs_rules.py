"""Where the LLM meta-controller decides differently from the ``rules`` controller, whether that
helps, and what it costs (issue 28, deliverable 6).

Both controllers run the same scenario and seed (common random numbers), so up to its first
differing action the two runs see the same triggers. Per scenario, over the sweep's seeds of the
``e3``/``llm`` and ``e3``/``rules`` cells (``resources/runs/.../audit.jsonl`` and
``summary.json``), the table gives:

* ``llm_calls`` / ``rules_calls``: controller invocations per run;
* ``llm_actions``: the LLM's actuating tool calls per run, by tool (``tool:count``), and the same
  for ``rules``; sensing calls (``get_system_status``, ``pull_observations``, ``compute_drift``) are
  not actions;
* ``same_actions_runs``: runs in which the LLM's sequence of (task index, tool, device) actions
  equals the rules controller's;
* ``delta_latency_pct``: mean over seeds of ``100 * (L_llm / L_rules - 1)`` with its 95 %
  t-interval (negative: the LLM helps); ``stutter_llm_pct`` / ``stutter_rules_pct``;
* ``prompt_tokens_per_call`` / ``completion_tokens_per_call`` and ``no_action_per_run``,
  ``fallbacks_per_run`` of the LLM (the recording's CPU seconds per decision are in
  ``results/llm/responses.jsonl.runs.json``; replay costs none).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from e3.analysis.attribution import paired_change_pct

SENSING = frozenset({"get_system_status", "pull_observations", "compute_drift"})
COLUMNS = ["scenario", "n_seeds", "llm_calls", "rules_calls", "llm_actions", "rules_actions", "same_actions_runs",
           "delta_latency_pct", "delta_ci95_lo_pct", "delta_ci95_hi_pct", "stutter_llm_pct", "stutter_rules_pct",
           "prompt_tokens_per_call", "completion_tokens_per_call", "no_action_per_run", "fallbacks_per_run"]


def actions(audit_path: Path) -> list[tuple[int, str, str]]:
    """The actuating tool calls of one run's audit log: (task index, tool, device or "")."""
    out = []
    for line in Path(audit_path).read_text().splitlines():
        a = json.loads(line)
        tool = a.get("tool")
        if tool and tool not in SENSING and "error" not in a.get("result", {}):
            out.append((a["task_index"], tool, (a.get("arguments") or {}).get("device", "")))
    return out


def _counts(runs: list[list[tuple[int, str, str]]]) -> str:
    c = Counter(t for r in runs for _, t, _ in r)
    return " ".join(f"{t}:{c[t] / len(runs):.1f}" for t in sorted(c)) or "-"


def compare(runs_dir: str | Path, scenarios: list[str], seeds: list[int]) -> pd.DataFrame:
    """The table (:data:`COLUMNS`) from ``runs_dir/{scenario}/e3/{llm,rules}/seed{seed}``.

    Raises:
        FileNotFoundError: a run's summary.json or audit.jsonl is missing (the file named).
    """
    rows = []
    for sc in scenarios:
        run = {c: [Path(runs_dir) / sc / "e3" / c / f"seed{s}" for s in seeds] for c in ("llm", "rules")}
        summ = {c: [json.loads((d / "summary.json").read_text()) for d in run[c]] for c in run}
        acts = {c: [actions(d / "audit.jsonl") for d in run[c]] for c in run}
        lat = {c: [s["latency_ms"]["mean"] for s in summ[c]] for c in run}
        m, lo, hi = paired_change_pct(lat["llm"], lat["rules"])
        ps = [s["policy_summary"] for s in summ["llm"]]
        calls = sum(p["controller_calls"] for p in ps)
        rows.append({"scenario": sc, "n_seeds": len(seeds),
                     "llm_calls": float(np.mean([p["controller_calls"] for p in ps])),
                     "rules_calls": float(np.mean([s["policy_summary"]["controller_calls"] for s in summ["rules"]])),
                     "llm_actions": _counts(acts["llm"]), "rules_actions": _counts(acts["rules"]),
                     "same_actions_runs": sum(a == b for a, b in zip(acts["llm"], acts["rules"], strict=True)),
                     "delta_latency_pct": m, "delta_ci95_lo_pct": lo, "delta_ci95_hi_pct": hi,
                     "stutter_llm_pct": 100 * float(np.mean([s["stutter_rate"] for s in summ["llm"]])),
                     "stutter_rules_pct": 100 * float(np.mean([s["stutter_rate"] for s in summ["rules"]])),
                     "prompt_tokens_per_call": sum(p["llm_prompt_tokens"] for p in ps) / calls if calls else 0.0,
                     "completion_tokens_per_call": sum(p["llm_completion_tokens"] for p in ps) / calls if calls else 0.0,
                     "no_action_per_run": float(np.mean([p["llm_no_action"] for p in ps])),
                     "fallbacks_per_run": float(np.mean([p["llm_fallbacks"] for p in ps]))})
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    """``python -m e3.analysis.llm_vs_rules --runs DIR --scenarios ... --seeds ... --out STEM``."""
    from e3.analysis.tables import to_markdown
    from e3.io import write_text_atomic

    ap = argparse.ArgumentParser(prog="python -m e3.analysis.llm_vs_rules",
                                 description="Compare the llm and rules controllers' actions, latency and cost "
                                             "per scenario; write STEM.csv and STEM.md.")
    ap.add_argument("--runs", default="resources/runs", help="run folders (default: %(default)s)")
    ap.add_argument("--scenarios", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    ap.add_argument("--out", default="results/tables/llm_vs_rules", help="output stem (default: %(default)s)")
    args = ap.parse_args(argv)
    df = compare(args.runs, args.scenarios, args.seeds)
    stem = Path(args.out)
    write_text_atomic(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.4f"))
    write_text_atomic(stem.with_suffix(".md"), to_markdown(df, floatfmt=".1f"))
    print(f"[e3] wrote {stem}.csv and {stem}.md", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
