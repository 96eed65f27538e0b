"""When does migration pay? (issue 30, deliverable 5): migration against ``no_migration`` at equal
everything, swept over mobility and load.

Config ``placement.migration_sweep``: ``dwell_mean_s`` (values of ``placement.users.dwell_mean_s``,
the mean time a user stays in a region: lower is more mobile), ``utilisations`` (values of
``placement.tasks.target_mean_utilisation``, the rate rule's one parameter), ``seeds``,
``scenario``, ``migrating`` (the (policy, controller) that migrates, ``antllm`` with
``local_search`` by default) and ``reference`` (``no_migration``: the same initial placement, never
moved). Every (dwell, utilisation) runs both on the same seeds, so seed s is the same users, moves
and tasks for both. The table gives each one's mean task latency and QoS, the migrations, and the
paired latency change of migrating against not migrating: the mean over seeds of
``100 * (L_migrating / L_reference - 1)`` with its 95 % t-interval
(:func:`e3.analysis.attribution.paired_change_pct`); an interval below 0 means migration pays.
Its own target: ``snakemake --cores 8 migration_sweep``.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: Columns of ``results/tables/migration_sweep.csv``.
COLUMNS = ["dwell_mean_s", "target_mean_utilisation", "latency_migrating_s", "latency_no_migration_s",
           "qos_migrating", "qos_no_migration", "migrations_per_run", "delta_latency_pct", "delta_ci95_lo_pct",
           "delta_ci95_hi_pct", "migration_pays", "n_seeds"]


def run_sweep(cfg: dict[str, Any], spec: dict[str, Any], progress=None) -> pd.DataFrame:
    """The sweep table (:data:`COLUMNS`, see the module docstring)."""
    from e3.analysis.attribution import paired_change_pct
    from e3.placement.run import simulate

    seeds = list(spec["seeds"])
    mig, ref = spec["migrating"], spec["reference"]
    rows = []
    for dwell in spec["dwell_mean_s"]:
        for u in spec["utilisations"]:
            c = copy.deepcopy(cfg)
            c["placement"]["users"]["dwell_mean_s"] = float(dwell)
            c["placement"]["tasks"]["target_mean_utilisation"] = float(u)
            runs: dict[str, list[dict[str, Any]]] = {"m": [], "r": []}
            with tempfile.TemporaryDirectory(prefix="e3-migration-sweep-") as tmp:
                for key, cell in (("m", mig), ("r", ref)):
                    for s in seeds:
                        runs[key].append(simulate(c, spec["scenario"], cell["policy"], cell.get("controller"), s,
                                                  Path(tmp) / key / f"seed{s}"))
            lm = [r["task_latency_mean_ms"] / 1000.0 for r in runs["m"]]
            lr = [r["task_latency_mean_ms"] / 1000.0 for r in runs["r"]]
            d, lo, hi = paired_change_pct(lm, lr)
            rows.append({"dwell_mean_s": float(dwell), "target_mean_utilisation": float(u),
                         "latency_migrating_s": float(np.mean(lm)), "latency_no_migration_s": float(np.mean(lr)),
                         "qos_migrating": float(np.mean([r["qos_ratio"] for r in runs["m"]])),
                         "qos_no_migration": float(np.mean([r["qos_ratio"] for r in runs["r"]])),
                         "migrations_per_run": float(np.mean([r["migrations"] for r in runs["m"]])),
                         "delta_latency_pct": d, "delta_ci95_lo_pct": lo, "delta_ci95_hi_pct": hi,
                         "migration_pays": bool(hi < 0), "n_seeds": len(seeds)})
            if progress:
                progress(f"dwell {dwell} s, utilisation {u}: migrating {np.mean(lm):.2f} s vs {np.mean(lr):.2f} s "
                         f"({d:+.1f} %, CI {lo:+.1f}..{hi:+.1f})")
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    """``python -m e3.placement.migration_sweep --config FILE --out STEM`` (the workflow's rule)."""
    from e3.analysis.tables import to_markdown
    from e3.config import load_config
    from e3.errors import E3Error
    from e3.io import write_text_atomic

    ap = argparse.ArgumentParser(prog="python -m e3.placement.migration_sweep",
                                 description="Run the migration sweep of config placement.migration_sweep (mobility x "
                                             "load, migrating vs no_migration); write STEM.csv and STEM.md.")
    ap.add_argument("--config", default="config/config.yaml", help="config file (default: %(default)s)")
    ap.add_argument("--out", default="results/tables/migration_sweep", help="table stem (default: %(default)s)")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        spec = cfg["placement"].get("migration_sweep")
        if not spec:
            raise E3Error(f"{a.config}: no placement.migration_sweep section")
        df = run_sweep(cfg, spec, lambda line: print(f"[e3] migration_sweep {line}", file=sys.stderr, flush=True))
    except E3Error as exc:
        print(f"e3: error: {exc}", file=sys.stderr)
        return 2
    stem = Path(a.out)
    write_text_atomic(stem.with_suffix(".csv"), df.to_csv(index=False, float_format="%.4f"))
    write_text_atomic(stem.with_suffix(".md"), to_markdown(df, floatfmt=".2f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
