"""Scale benchmark (issue 11): tasks/s and peak memory against the pool size, and the scale targets.

Usage::

    python benchmarks/bench_scale.py --out benchmarks/results/scale.json            # the table (~10 min)
    python benchmarks/bench_scale.py --devices 4 100 --tasks 20000                   # quicker
    python benchmarks/bench_scale.py --targets --out benchmarks/results/scale_targets.json  # --devices 1000: one target
    python benchmarks/bench_scale.py --baseline-root /tmp/old --tasks 20000 --out ...      # paired with another commit

Table mode: for each policy and generated pool size (``e3 simulate --devices N``, scenario
``scale_drift``), one fresh process runs ``--tasks`` tasks; figures are tasks/s (engine run only),
peak RSS, and the cost per task relative to the smallest pool in the same run
(``cost_ratio = tasks_per_s(smallest) / tasks_per_s(N)``): sub-linear growth means
``cost_ratio`` grows more slowly than ``N / N_smallest``; ``log_slope`` is the fitted exponent of
cost per task against N (statsmodels OLS on log-log; 1 = linear).

Targets mode (issue 11): ``scale_drift`` with ``e3`` at 1,000 devices and 10^6 tasks (target
<= 60 s, <= 2 GiB peak RSS) and at 10,000 devices and 10^6 tasks (target <= 180 s), each in a fresh
process, wall time of the whole simulation including pool generation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_one(policy: str, devices: int, n_tasks: int, scenario: str, seed: int, warmup_refit_scope: str) -> dict:
    """One case in this process (called in a child process); returns its figures."""
    from e3.config import load_config, load_schema, validate
    from e3.experiment.run import build_simulation

    cfg = load_config(REPO / "config/config.yaml")
    cfg["pool_generator"] = {"devices": devices}
    if policy.startswith("e3"):
        cfg["policies"].setdefault(policy, {})["warmup_refit_scope"] = warmup_refit_scope
    validate(cfg, load_schema("config.schema.yaml"), "bench")
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sim = build_simulation(cfg, scenario, policy, seed, n_tasks, Path(tmp) / "tasks.parquet")
        t0 = time.perf_counter()
        stats = sim.run()
        wall = time.perf_counter() - t0
    total = time.perf_counter() - t_start
    return {"policy": policy, "devices": devices, "n_tasks": n_tasks, "scenario": scenario, "seed": seed,
            "wall_s": wall, "total_s": total, "tasks_per_s": n_tasks / wall,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "mean_latency_ms": stats.latency_sum_ms / stats.n_tasks}


def _child(policy: str, devices: int, n: int, scenario: str, seed: int, timeout_s: float, scope: str,
           root: Path = REPO) -> dict:
    # -P and PYTHONPATH: the child imports e3 from ``root`` (this checkout, or --baseline-root's)
    cmd = [sys.executable, "-P", str(root / "benchmarks" / "bench_scale.py"), "--one", policy, str(devices), str(n),
           "--scenario", scenario, "--seed", str(seed), "--warmup-refit-scope", scope]
    env = {**os.environ, "PYTHONPATH": str(root)}
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=root)
    except subprocess.TimeoutExpired:
        return {"policy": policy, "devices": devices, "n_tasks": n, "scenario": scenario, "seed": seed,
                "timed_out_after_s": timeout_s}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _slope(rows: list[dict]) -> float | None:
    import numpy as np
    import statsmodels.api as sm

    ok = [r for r in rows if "tasks_per_s" in r]
    if len(ok) < 2:
        return None
    x = np.log([r["devices"] for r in ok])
    y = np.log([1.0 / r["tasks_per_s"] for r in ok])
    return float(sm.OLS(y, sm.add_constant(x)).fit().params[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, nargs="+", default=[4, 100, 1000, 10000])
    ap.add_argument("--policies", nargs="+", default=["round_robin", "oracle", "sed_ewma", "e3"])
    ap.add_argument("--tasks", type=int, default=100_000, help="tasks per case in table mode")
    ap.add_argument("--scenario", default="scale_drift")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=600.0, help="per-case limit; a case past it is reported")
    ap.add_argument("--warmup-refit-scope", choices=["all", "observed"], default="observed",
                    help="e3's warmup_refit_scope (default observed: 'all' refits every device every few "
                         "warmup tasks, O(pool))")
    ap.add_argument("--targets", action="store_true", help="run the issue's scale targets instead of the table")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--baseline-root", type=Path,
                    help="table mode: also run each case with the e3 of this checkout (another commit), right "
                         "after this one's, and report the pair's speed-up and whether the mean latency agrees")
    ap.add_argument("--one", nargs=3, metavar=("POLICY", "DEVICES", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        p, d, n = args.one
        print(json.dumps(run_one(p, int(d), int(n), args.scenario, args.seed, args.warmup_refit_scope)))
        return 0

    cases = ([("e3", d, 1_000_000) for d in (1000, 10_000) if d in args.devices] if args.targets
             else [(p, d, args.tasks) for p in args.policies for d in args.devices])
    rows = []
    for p, d, n in cases:
        print(f"[bench] {p:12s} {d:>6,d} devices {n:>9,d} tasks ...", file=sys.stderr, flush=True)
        r = _child(p, d, n, args.scenario, args.seed, args.timeout_s, args.warmup_refit_scope)
        rows.append(r)
        msg = (f"{r['tasks_per_s']:>9,.0f} tasks/s, {r['total_s']:.1f} s, peak {r['peak_rss_mib']:.0f} MiB"
               if "tasks_per_s" in r else f"timed out after {r['timed_out_after_s']:.0f} s")
        if args.baseline_root and not args.targets:
            b = _child(p, d, n, args.scenario, args.seed, args.timeout_s, args.warmup_refit_scope,
                       args.baseline_root.resolve())
            r["baseline"] = b
            if "tasks_per_s" in r and "tasks_per_s" in b:
                r["speedup_vs_baseline"] = r["tasks_per_s"] / b["tasks_per_s"]
                r["same_mean_latency_as_baseline"] = r["mean_latency_ms"] == b["mean_latency_ms"]
                msg += (f"; baseline {b['tasks_per_s']:,.0f} tasks/s, x{r['speedup_vs_baseline']:.2f}, same mean "
                        f"latency: {r['same_mean_latency_as_baseline']}")
        print(f"[bench]   {msg}", file=sys.stderr, flush=True)
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {"python": platform.python_version(), "machine": platform.machine(), "mode": "targets" if args.targets
              else "table", "scenario": args.scenario, "commit": commit, "command": " ".join(sys.argv),
              "e3_warmup_refit_scope": args.warmup_refit_scope, "rows": rows, "per_policy": []}
    if args.baseline_root:
        report["baseline_commit"] = subprocess.run(["git", "-C", str(args.baseline_root), "rev-parse", "HEAD"],
                                                   capture_output=True, text=True).stdout.strip()
    if args.targets:
        for r in rows:
            limit = 60.0 if r["devices"] == 1000 else 180.0
            r["target_s"] = limit
            r["meets_time"] = "total_s" in r and r["total_s"] <= limit
            if r["devices"] == 1000:
                r["meets_memory"] = "peak_rss_mib" in r and r["peak_rss_mib"] <= 2048
    else:
        print("\n| policy | devices | tasks/s | peak MiB | cost per task / smallest pool's |")
        print("|---|---:|---:|---:|---:|")
        for p in args.policies:
            prow = [r for r in rows if r["policy"] == p]
            base = next((r for r in prow if "tasks_per_s" in r), None)
            for r in prow:
                if "tasks_per_s" in r and base:
                    r["cost_ratio"] = base["tasks_per_s"] / r["tasks_per_s"]
                    print(f"| {p} | {r['devices']:,d} | {r['tasks_per_s']:,.0f} | {r['peak_rss_mib']:.0f} |"
                          f" {r['cost_ratio']:.2f} |")
            report["per_policy"].append({"policy": p, "log_slope_cost_vs_devices": _slope(prow)})
    if args.out:
        from e3.io import write_json_atomic

        write_json_atomic(args.out, report)
        print(f"figures written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
