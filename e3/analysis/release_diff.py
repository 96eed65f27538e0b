"""Before/after of two releases' frozen runs (``results/aggregate/runs.csv``), for CHANGELOG.md.

``python -m e3.analysis.release_diff OLD_RUNS_CSV NEW_RUNS_CSV`` prints a Markdown table: per
scenario and cell (policy/controller), the mean latency over seeds (ms), the gap of the seed means
to the Oracle (%) and the stutter rate (%), old and new. Read an old release's file from git, e.g.
``git show v0.1.0-commit:results/aggregate/runs.csv > /tmp/old.csv``.
"""

from __future__ import annotations

import argparse

import pandas as pd

#: The cells a release note compares, in order.
CELLS = [("oracle", "none"), ("oracle_avoid", "none"), ("e3", "llm"), ("e3", "rules"), ("e3", "none"),
         ("sed_ewma", "none"), ("jsq", "none"), ("fixed_heuristic", "none"), ("round_robin", "none")]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (scenario, policy, controller): ``latency_ms`` (mean over seeds), ``gap_pct`` (to the
    Oracle's mean on the same scenario) and ``stutter_pct``.

    Raises:
        KeyError: a scenario without an ``oracle`` row.
    """
    g = runs.groupby(["scenario", "policy", "controller"], as_index=False).agg(
        latency_ms=("avg_latency_ms", "mean"), stutter_pct=("stutter_rate", "mean"))
    g["stutter_pct"] *= 100.0
    oracle = g[g["policy"] == "oracle"].set_index("scenario")["latency_ms"]
    g["gap_pct"] = 100.0 * (g["latency_ms"] / g["scenario"].map(oracle) - 1.0)
    return g


def diff_table(old: pd.DataFrame, new: pd.DataFrame) -> str:
    """The Markdown before/after table of :func:`summarise` for :data:`CELLS` in every scenario
    of ``new`` (a cell missing in one release shows ``-``)."""
    o, n = summarise(old).set_index(["scenario", "policy", "controller"]), summarise(new).set_index(
        ["scenario", "policy", "controller"])

    def cell(df, key, col, fmt):
        return format(df.loc[key, col], fmt) if key in df.index else "-"

    lines = ["| scenario | cell | latency ms 0.1.0 | latency ms 0.2.0 | gap % 0.1.0 | gap % 0.2.0 | stutter % 0.1.0 | stutter % 0.2.0 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for sc in dict.fromkeys(new["scenario"]):
        for p, c in CELLS:
            k = (sc, p, c)
            if k not in n.index and k not in o.index:
                continue
            lines.append(f"| {sc} | {p}/{c} | {cell(o, k, 'latency_ms', '.0f')} | {cell(n, k, 'latency_ms', '.0f')} | "
                         f"{cell(o, k, 'gap_pct', '+.1f')} | {cell(n, k, 'gap_pct', '+.1f')} | "
                         f"{cell(o, k, 'stutter_pct', '.1f')} | {cell(n, k, 'stutter_pct', '.1f')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m e3.analysis.release_diff",
                                 description="Print the before/after Markdown table of two releases' runs.csv.")
    ap.add_argument("old", help="the older release's results/aggregate/runs.csv")
    ap.add_argument("new", help="the newer release's results/aggregate/runs.csv")
    args = ap.parse_args(argv)
    print(diff_table(pd.read_csv(args.old), pd.read_csv(args.new)), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
