"""Job benchmark (issue 11): CPU seconds of one job of each simulation rule of the default run.

Usage::

    python benchmarks/bench_jobs.py --out benchmarks/results/jobs.json                 # this checkout
    python benchmarks/bench_jobs.py --baseline-root /tmp/old --out ...                # paired, against another

The default ``snakemake --cores 8`` spends almost all of its CPU time in four kinds of job: the
operating-point study (``op_simulate_{rate,penalty,mismatch}``, one job per grid point), the E3
sweep (``simulate_scenario_parts``: the rules ``simulate_{scenario}_part{k}_batch{i}``, each a
part of a scenario's non-llm cells; ``simulate_other_batch0``, one cell, with
``sweep.batch_by: cell``), the fairness system (``simulate_fairness``: the rules
``simulate_fairness_{scenario}_part{k}``) and the placement system (``simulate_migration``: the
rules ``simulate_migration_{scenario}_part{k}``). This benchmark
takes one job of each rule from the workflow's own dry run (``snakemake -n -p --forceall``,
so the commands are the workflow's, not a copy), points its output at a scratch folder, and runs
it as a whole process (Python start-up and imports included) ``--repeat`` times; CPU seconds are
the operating system's user + system time of the finished child.

With ``--baseline-root DIR`` (a checkout of another commit, e.g. ``git worktree add /tmp/old
4ec5848``; it must take the commands' options, so no commit before 877919c, which added
``e3 simulate --cells`` and several ``--scenario`` for ``e3 operating-points``), each repetition runs the job with this checkout's ``e3`` and then with DIR's
(``PYTHONPATH``), in turn, so the ratio ``cpu / baseline cpu`` is taken pair by pair on the same
machine state; the jobs' outputs (operating-point rows, summaries) are compared too, and the
benchmark fails if they differ (unless the rule is named in ``--outputs-may-differ``, for a fix
between the two commits: then ``outputs_identical`` is false). ``estimate_cpu_s`` multiplies each rule's median by its number of
jobs in the DAG: the CPU the default run spends in these jobs (wall time on N cores is at least
that divided by N).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# rule -> the folder its jobs write under (their --out); the two E3 sweep rules differ by --cells
RULES = {"op_simulate_rate": "resources/operating_points/", "op_simulate_penalty": "resources/operating_points/",
         "op_simulate_mismatch": "resources/operating_points/", "simulate_scenario_parts": "resources/runs/",
         "simulate_other_batch0": "resources/runs/", "simulate_fairness": "resources/fairness/",
         "simulate_migration": "resources/placement/"}


def dag_commands(root: Path) -> tuple[dict[str, str], dict[str, int]]:
    """One shell command of each rule of :data:`RULES` (the lexicographically smallest, so the
    choice does not depend on the dry run's order) and each rule's job count (the llm
    controller's E3 jobs, ``simulate_llm_batch0``, are left out), from
    ``snakemake -n -p --forceall`` in ``root`` (which also writes the configs the jobs read).

    Rules without a job in the DAG are absent from both dicts (e.g. ``simulate_other_batch0``
    under the default ``sweep.batch_by: scenario``).
    """
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    # The small rules whose outputs the jobs read (configs, pool); the simulations are not run.
    subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "--quiet", "--until", "effective_config",
                    "fairness_config", "migration_config", "resolve_pool"],
                   cwd=root, env=env, check=True, capture_output=True)
    # The rules carry a `message`, so the dry run's log does not name them: a job's rule is told
    # by where its command writes (--out), which is rule-specific (workflow/rules/*.smk).
    out = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--forceall"], cwd=root, env=env,
                         check=True, capture_output=True, text=True).stdout
    jobs: dict[str, set[str]] = {}
    for line in out.splitlines():
        if not line.startswith("Shell command: e3 "):
            continue
        cmd = line.removeprefix("Shell command: ")
        words = shlex.split(cmd)
        target = words[words.index("--out") + 1] if "--out" in words else ""
        rule = next((r for r, prefix in RULES.items() if target.startswith(prefix)), None)
        if rule == "op_simulate_rate":  # the three studies' rules write under one folder
            rule = f"op_simulate_{words[words.index('--study') + 1]}"
        if rule == "simulate_scenario_parts" and "--cells" not in words:
            rule = "simulate_other_batch0"
        if rule == "simulate_other_batch0" and words[words.index("--controller") + 1] == "llm":
            rule = None  # simulate_llm_batch0: replayed LLM responses, few jobs
        if rule is not None:
            jobs.setdefault(rule, set()).add(cmd)
    first = {rule: min(cmds) for rule, cmds in jobs.items()}  # the smallest: stable across runs
    counts = {rule: len(cmds) for rule, cmds in jobs.items()}
    return first, counts


def scratch_command(cmd: str, scratch: Path) -> list[str]:
    """The job's command with its output moved under ``scratch`` and its log redirection dropped."""
    words = shlex.split(cmd)
    if ">" in words:
        words = words[:words.index(">")]
    i = words.index("--out")
    parts = Path(words[i + 1]).parts
    # keep the placeholders' folders ({policy}/{controller}/seed{seed} of a --cells batch)
    first = next((k for k, part in enumerate(parts) if "{" in part), len(parts) - 1)
    words[i + 1] = str(scratch.joinpath("out", *parts[first:]))
    return words


def run_once(words: list[str], root: Path, e3_root: Path, scratch: Path) -> dict:
    """Run one job as a whole process with ``e3`` imported from ``e3_root``; CPU and wall seconds."""
    shutil.rmtree(scratch / "out", ignore_errors=True)
    (scratch / "out").mkdir(parents=True)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(e3_root)}
    # -P: no current folder on sys.path, so PYTHONPATH alone decides which checkout's e3 runs.
    exe = [sys.executable, "-P", "-c",
           f"import sys, e3; assert e3.__file__.startswith({str(e3_root) + os.sep!r}), e3.__file__; "
           "from e3.cli import main; sys.exit(main(sys.argv[1:]))"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(exe + words[1:], cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"bench_jobs: {' '.join(words)} failed (e3 from {e3_root}):\n{proc.stderr[-2000:]}")
    return {"cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), "wall_s": wall,
            "outputs": _outputs(scratch / "out")}


def _outputs(out: Path) -> dict[str, str]:
    # What the job computed, without its wall times: operating-point rows, run summaries.
    found = {}
    for p in sorted(out.rglob("*")):
        if p.suffix in (".jsonl", ".json") and p.name != "timing.json":
            text = p.read_text()
            if p.name == "summary.json":
                text = json.dumps({k: v for k, v in json.loads(text).items() if k != "wall_s"}, sort_keys=True)
            found[str(p.relative_to(out))] = text
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each job (and of its baseline), default 3")
    ap.add_argument("--baseline-root", type=Path, help="a checkout of another commit to compare against, pair by pair")
    ap.add_argument("--rules", nargs="+", choices=list(RULES),
                    help="which jobs (default: every rule with a job in the DAG)")
    ap.add_argument("--out", type=Path, help="write the figures here as JSON (atomically)")
    ap.add_argument("--outputs-may-differ", nargs="+", choices=list(RULES), default=[], metavar="RULE",
                    help="rules whose outputs are known to differ from the baseline's (a fix between the two "
                         "commits): timed and recorded with outputs_identical false instead of failing")
    a = ap.parse_args(argv)
    if a.repeat < 1:
        ap.error(f"--repeat must be at least 1, not {a.repeat}")
    if a.baseline_root is not None and not (a.baseline_root / "e3" / "cli.py").is_file():
        ap.error(f"--baseline-root {a.baseline_root}: no e3/cli.py there (a checkout of e3 is needed)")
    commands, counts = dag_commands(REPO)
    missing = [r for r in a.rules or () if r not in commands]
    if missing:
        ap.error(f"no job of {missing} in the workflow's dry run")
    a.rules = a.rules or [r for r in RULES if r in commands]
    results = {}
    with tempfile.TemporaryDirectory(prefix="e3-bench-jobs-") as tmp:
        for rule in a.rules:
            words = scratch_command(commands[rule], Path(tmp))
            runs, base = [], []
            identical = True
            for k in range(a.repeat):
                runs.append(run_once(words, REPO, REPO, Path(tmp)))
                if a.baseline_root is not None:
                    base.append(run_once(words, REPO, a.baseline_root.resolve(), Path(tmp)))
                    if base[-1]["outputs"] != runs[-1]["outputs"]:
                        if rule not in a.outputs_may_differ:
                            raise SystemExit(f"bench_jobs: {rule}: outputs differ from the baseline's")
                        identical = False
                print(f"[bench_jobs] {rule} {k + 1}/{a.repeat}: {runs[-1]['cpu_s']:.2f} s CPU"
                      + (f" (baseline {base[-1]['cpu_s']:.2f} s)" if base else ""), file=sys.stderr, flush=True)
            cpu = [r["cpu_s"] for r in runs]
            row = {"command": " ".join(words), "jobs_in_dag": counts[rule], "cpu_s": cpu,
                   "median_cpu_s": statistics.median(cpu), "estimate_cpu_s": statistics.median(cpu) * counts[rule]}
            if base:
                ratios = [r["cpu_s"] / b["cpu_s"] for r, b in zip(runs, base, strict=True)]
                row |= {"baseline_cpu_s": [b["cpu_s"] for b in base],
                        "baseline_median_cpu_s": statistics.median(b["cpu_s"] for b in base),
                        "cpu_ratio_pairs": ratios, "median_cpu_ratio": statistics.median(ratios),
                        "outputs_identical": identical}
            results[rule] = row
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    report = {"benchmark": "bench_jobs", "command": "python benchmarks/bench_jobs.py " + " ".join(argv or sys.argv[1:]),
              "commit": commit, "baseline_root": str(a.baseline_root) if a.baseline_root else None,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
              "jobs": results,
              "estimate_cpu_s": sum(r["estimate_cpu_s"] for r in results.values()),
              "baseline_estimate_cpu_s": (sum(r["baseline_median_cpu_s"] * r["jobs_in_dag"] for r in results.values())
                                          if a.baseline_root else None)}
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    if a.out:
        sys.path.insert(0, str(REPO))
        from e3.io import write_text_atomic

        write_text_atomic(a.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
