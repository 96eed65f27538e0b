"""The fairness system's load sweep (issue 29): the comparison at several operating points.

Config ``fairness.load_sweep``: ``utilisations`` (values of ``fairness.workload.
target_static_utilisation``, the best static plan's utilisation in the busiest epoch: the rate
rule's one parameter), ``seeds`` and ``cells``. Every (utilisation, scenario, cell) runs the
sweep's scenarios with that rule value and nothing else changed; the table is the fairness table
(:func:`e3.fairness.analysis.fairness_table`, objective referenced as configured) with a
``target_static_utilisation`` column. Its own target: ``snakemake --cores 8 fairness_load``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def run_sweep(cfg: dict[str, Any], spec: dict[str, Any], scenarios: list[str], progress=None) -> pd.DataFrame:
    """The load-sweep table (see module docstring)."""
    from e3.fairness.analysis import fairness_row, fairness_table, with_objective
    from e3.fairness.run import simulate_batch

    f = cfg["fairness"]
    obj = f["objective"]
    cells = [dict(c) for c in spec["cells"]]
    tables = []
    for u in spec["utilisations"]:
        c = copy.deepcopy(cfg)
        c["fairness"]["workload"]["target_static_utilisation"] = float(u)
        rows = []
        with tempfile.TemporaryDirectory(prefix="e3-fairness-load-") as tmp:
            for sc in scenarios:
                for cell in cells:
                    pol, ctl = cell["policy"], cell.get("controller")
                    out = str(Path(tmp) / sc / pol / str(ctl) / "seed{seed}")
                    simulate_batch(c, sc, pol, ctl, list(spec["seeds"]), out)
                    rows += [fairness_row(Path(out.format(seed=s)) / "summary.json") for s in spec["seeds"]]
                if progress:
                    progress(f"utilisation {u}: {sc} done")
        runs = with_objective(pd.DataFrame(rows), obj["reference_policy"], obj["fairness_weight"])
        t = fairness_table(runs, cells, scenarios, list(f["models"]))
        tables.append(t.assign(target_static_utilisation=float(u)))
    out = pd.concat(tables, ignore_index=True)
    first = ["target_static_utilisation", "scenario", "policy", "controller"]
    return out[first + [c for c in out.columns if c not in first]]


def main(argv: list[str] | None = None) -> int:
    from e3.analysis.tables import to_markdown
    from e3.config import load_config
    from e3.io import write_text_atomic

    ap = argparse.ArgumentParser(prog="python -m e3.fairness.load_sweep",
                                 description="Run the fairness load sweep of config fairness.load_sweep; write STEM.csv "
                                             "and STEM.md.")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--out", default="results/tables/fairness_load")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    df = run_sweep(cfg, cfg["fairness"]["load_sweep"], cfg["fairness"]["sweep"]["scenarios"],
                   progress=lambda line: print(f"[e3] fairness load {line}", file=sys.stderr, flush=True))
    write_text_atomic(f"{args.out}.csv", df.to_csv(index=False, float_format="%.4f"))
    cols = ["target_static_utilisation", "scenario", "policy", "controller", "mean_latency_s", "jain_normalized",
            "worst_model_latency_s", "min_model_success_ratio", "censored_pct", "pareto_vs_static_sect", "objective"]
    write_text_atomic(f"{args.out}.md", to_markdown(df[cols], floatfmt=".2f"))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
