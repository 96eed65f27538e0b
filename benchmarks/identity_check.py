"""Byte-identity check for hot-path optimisations: hash every output of a fixed set of runs.

Usage::

    python benchmarks/identity_check.py --record /tmp/identity_before.json   # on the old code
    python benchmarks/identity_check.py --compare /tmp/identity_before.json  # after a change

The set: every registered policy (plus the e3 controllers none, page_hinkley and llm in replay
mode) on every scenario in ``config/scenarios``, seeds 1 and 2, the config's default horizon;
and longer runs (20,000 tasks, seed 1) of e3 on drift, semantic and churn and of every other
policy on churn. For each run it records the SHA-256 of ``tasks.parquet``, ``summary.json`` and
``audit.jsonl`` (when written). Runs go in-process through :func:`e3.experiment.run.simulate`, exactly
the function ``e3 simulate`` calls. ``--compare`` exits 1 and lists the runs whose files differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cases(policies: list[str], scenarios: list[str]) -> list[tuple[str, str, str | None, int, int | None]]:
    """(scenario, policy, controller, seed, n_tasks) of every checked run."""
    out: list[tuple[str, str, str | None, int, int | None]] = []
    variants = [(p, None) for p in policies] + [("e3", c) for c in ("none", "page_hinkley", "llm")]
    for sc in scenarios:
        for p, c in variants:
            for seed in (1, 2):
                out.append((sc, p, c, seed, None))
    for sc in ("drift", "semantic", "churn"):
        out.append((sc, "e3", None, 1, 20_000))
    for p in policies:
        if p != "e3":
            out.append(("churn", p, None, 1, 20_000))
    return out


def run_all(only: str | None = None) -> dict[str, dict[str, str]]:
    """Run every case; return ``{case key: {file name: sha256}}``."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from e3.config import load_config
    from e3.experiment.run import simulate
    from e3.io import sha256_file
    from e3.llm.client import LLMCacheMiss
    from e3.policies.base import policy_names

    scenarios = sorted(p.stem for p in (REPO / "config/scenarios").glob("*.yaml"))
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for sc, pol, ctrl, seed, n in cases(policy_names(), scenarios):
            key = f"{sc}/{pol}{'+' + ctrl if ctrl else ''}/seed{seed}/{n or 'default'}"
            if only and only not in key:
                continue
            cfg = load_config(REPO / "config/config.yaml")
            run_dir = Path(tmp) / "run"
            t0 = time.perf_counter()
            try:
                simulate(cfg, sc, pol, seed, run_dir, n_tasks=n,
                         policy_overrides={"controller": ctrl} if ctrl else None)
            except LLMCacheMiss:  # the llm controller replays only the recorded scenarios and seeds
                out[key] = {"skipped": "no recorded LLM responses"}
                continue
            out[key] = {f.name: sha256_file(f) for f in sorted(run_dir.iterdir())
                        if f.name in ("tasks.parquet", "tasks.csv", "summary.json", "audit.jsonl")}
            print(f"{key:50s} {time.perf_counter() - t0:6.2f} s", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", type=Path, help="write the hashes here")
    g.add_argument("--compare", type=Path, help="compare with hashes recorded earlier")
    ap.add_argument("--only", help="run only the cases whose key contains this text")
    args = ap.parse_args(argv)
    hashes = run_all(args.only)
    if args.record:
        args.record.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
        print(f"{len(hashes)} runs recorded in {args.record}", file=sys.stderr)
        return 0
    ref = json.loads(args.compare.read_text())
    bad = [k for k in hashes if ref.get(k) != hashes[k]]
    missing = [k for k in ref if k not in hashes and not args.only]
    for k in bad:
        print(f"DIFFERS: {k}: {ref.get(k)} != {hashes[k]}")
    for k in missing:
        print(f"MISSING: {k}")
    print(f"{len(hashes) - len(bad)}/{len(hashes)} runs identical", file=sys.stderr)
    return 1 if bad or missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
