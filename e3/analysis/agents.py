"""The held-out event benchmark (issue 31): where does an LLM meta-controller help?

Config ``agents`` (``config/config.yaml``) names the scenario (``events``: per seed, known semantic
events, free-text notices of held-out types and a silent slowdown, drawn by written rules,
:mod:`e3.sim.events`), the seeds, the Oracles and one row per controller (model, prompt,
invocation) with the controls. Every row runs on the same seeds, so seed s is the same workload,
truth and events for every row (common random numbers).

Metrics, per row, averaged over seeds (``results/tables/agents.csv``, :data:`COLUMNS`):

* ``mean_latency_ms``; ``gap_to_oracle_pct`` and ``gap_to_oracle_avoid_pct``: Table 5's gap on
  the seed means, to each Oracle; ``delta_vs_rules_pct`` with its 95 % t-interval, paired over seeds
  (:func:`e3.analysis.attribution.paired_change_pct`).
* ``stutter_pct``: Eq. 3's stutter rate over all tasks.
* ``exposed_{class}_pct``: of the same-kind tasks arriving while an event of that class degrades
  its device, the share dispatched to that device (:func:`exposure`): what avoidance failed to
  spare, per class (known, held_out, silent).
* ``false_alarm_pct``: of the benign notices (announced, no effect), the share during whose window
  the controller flagged the announced device risky (:func:`false_alarms`); the row's flags on a
  device neither degraded nor announced as pending are ``false_flags`` (a count per run).
* ``missed_pct``: of the degrading windows, the share never avoided, and
  ``onset_to_avoidance_tasks``: same-kind arrivals from the effect's onset until avoidance (a
  censored window counts its whole length) (:func:`avoidance`). Avoided = the first of
  ``avoid_run_tasks`` consecutive same-kind arrivals sent elsewhere.
* ``llm_requests_per_1000_tasks``, ``prompt_tokens_per_1000_tasks``,
  ``completion_tokens_per_1000_tasks``; ``fallbacks`` (per run); ``record_s_per_request`` (the
  recording's wall time per request that reached the model, ``results/llm/agents_runs.json``: each
  recorded seed's whole wall time, simulation included, over its uncached requests; the cost of a
  decision on this machine's CPU). The replay's own CPU time per decision varies from run to
  run, so it stays out of the frozen table: :func:`run_row` prints it in the log
  (``logs/agents.log``) and ``benchmarks/`` times it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: The columns of ``results/tables/agents.csv``.
COLUMNS = ["row", "control", "controller", "model", "prompt", "invoke", "mean_latency_ms", "gap_to_oracle_pct",
           "gap_to_oracle_avoid_pct", "delta_vs_rules_pct", "delta_ci95_lo_pct", "delta_ci95_hi_pct", "stutter_pct",
           "exposed_known_pct", "exposed_held_out_pct", "exposed_silent_pct", "false_alarm_pct", "false_flags",
           "missed_pct", "onset_to_avoidance_tasks", "controller_calls", "llm_requests_per_1000_tasks",
           "prompt_tokens_per_1000_tasks", "completion_tokens_per_1000_tasks", "fallbacks", "record_s_per_request", "n_seeds"]
#: Event classes that degrade a device (:mod:`e3.sim.events`).
CLASSES = ("known", "held_out", "silent")


def degrades(event: dict[str, Any]) -> bool:
    """:attr:`e3.sim.events.DrawnEvent.degrades` of an event's dict form (a window cut by
    :func:`in_horizon` can become empty)."""
    return event["effect_end_task"] > event["effect_start_task"] and event["slowdown"] > 1.0


# --- one function per metric ---------------------------------------------------------------------
def exposure(dispatch: pd.DataFrame, events: list[dict[str, Any]],
             kinds: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """Per event class: (tasks sent to a degraded device, same-kind tasks arriving in its effect
    windows).

    Args:
        dispatch: one row per task: ``task_id`` (= arrival index), ``kind``, ``device``.
        events: the run's drawn events (:meth:`e3.sim.events.DrawnEvent.to_dict`); only those that
            degrade count, each over [effect_start_task, effect_end_task).
        kinds: device -> kind (the pool's); default: read from ``dispatch`` (a device that served
            nothing then has no kind).
    """
    out = {c: (0, 0) for c in CLASSES}
    kind_of = kinds if kinds is not None else dict(zip(dispatch["device"], dispatch["kind"], strict=False))
    for e in events:
        if not degrades(e):
            continue
        w = dispatch[(dispatch["task_id"] >= e["effect_start_task"]) & (dispatch["task_id"] < e["effect_end_task"])
                     & (dispatch["kind"] == kind_of.get(e["device"], ""))]
        hit, n = out[e["event_class"]]
        out[e["event_class"]] = (hit + int((w["device"] == e["device"]).sum()), n + len(w))
    return out


def avoidance(dispatch: pd.DataFrame, event: dict[str, Any], run_tasks: int,
              kinds: dict[str, str] | None = None) -> tuple[int, bool]:
    """(same-kind arrivals from the effect's onset until avoidance, whether it was missed).

    Avoidance starts at the first same-kind arrival of the effect window from which ``run_tasks``
    consecutive same-kind arrivals all go to another device. A window without such a run is missed
    and counts its whole number of same-kind arrivals (censored).

    Raises:
        ValueError: ``run_tasks`` below 1.
    """
    if run_tasks < 1:
        raise ValueError(f"avoidance: run_tasks must be >= 1, got {run_tasks}")
    if kinds is not None:
        kind = kinds.get(event["device"])
    else:
        kind = dispatch.loc[dispatch["device"] == event["device"], "kind"]
        kind = kind.iloc[0] if len(kind) else None
    w = dispatch[(dispatch["task_id"] >= event["effect_start_task"]) & (dispatch["task_id"] < event["effect_end_task"])
                 & (dispatch["kind"] == kind)].sort_values("task_id")
    away = (w["device"] != event["device"]).to_numpy()
    need = min(run_tasks, len(away))  # a window shorter than the run: every one of its arrivals elsewhere
    for i in range(len(away) - need + 1):
        if need and away[i:i + need].all():
            return i, False
    return len(away), True


def risky_flags(audit: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(task index, device) of every successful ``set_device_risky`` call in an audit log."""
    return [(r["task_index"], r["result"]["device"]) for r in audit
            if r.get("tool") == "set_device_risky" and "error" not in r.get("result", {"error": 1})]


def risky_intervals(audit: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """(from task, until task, device) of every risk override in an audit log: from a successful
    ``set_device_risky`` to its ``risky_until_task`` or an earlier ``clear_device_risky`` (or a
    later set on the same device, which replaces it)."""
    out: list[tuple[int, int, str]] = []
    open_: dict[str, tuple[int, int]] = {}
    for r in audit:
        res = r.get("result", {"error": 1})
        if "error" in res or r.get("tool") not in ("set_device_risky", "clear_device_risky"):
            continue
        d, k = res["device"], r["task_index"]
        if d in open_:
            a, until = open_.pop(d)
            out.append((a, min(until, k), d))
        if r["tool"] == "set_device_risky":
            open_[d] = (k, res["risky_until_task"])
    out += [(a, until, d) for d, (a, until) in open_.items()]
    return sorted(out)


def in_horizon(events: list[dict[str, Any]], n_tasks: int) -> list[dict[str, Any]]:
    """The events a run of ``n_tasks`` arrivals saw: announced ones that start inside it (a
    degrading one with its effect starting inside it too), silent ones whose effect starts inside
    it; windows are cut at the horizon."""
    out = []
    for e in events:
        start = e["effect_start_task"] if e["event_class"] == "silent" else e["start_task"]
        if start >= n_tasks or (e["effect"] != "benign" and e["effect_start_task"] >= n_tasks):
            continue
        out.append({**e, "end_task": min(e["end_task"], n_tasks), "effect_end_task": min(e["effect_end_task"], n_tasks)})
    return out


def false_alarms(flags: list[tuple[int, str]], events: list[dict[str, Any]],
                 intervals: list[tuple[int, int, str]] | None = None) -> tuple[int, int, int]:
    """(benign notices flagged, benign notices, flags on a healthy device).

    A benign notice is flagged when its device is under a risk override at some task of its
    announced window (``intervals``, :func:`risky_intervals`; without them, when a flag is set
    during the window). A flag is on a healthy device when, at its task, the device is neither
    degraded nor announced with a degrading effect still to come (a delayed event's announced
    window counts as announced, so acting on an announcement early is not a false alarm).
    """
    benign = [e for e in events if e["effect"] == "benign"]
    if intervals is None:
        intervals = [(k, k + 1, d) for k, d in flags]
    flagged = sum(any(d == e["device"] and a < e["end_task"] and e["start_task"] < b for a, b, d in intervals)
                  for e in benign)

    def justified(k: int, d: str) -> bool:
        for e in events:
            if e["device"] != d or not degrades(e):
                continue
            if e["effect_start_task"] <= k < e["effect_end_task"]:
                return True
            if e["event_class"] != "silent" and e["start_task"] <= k < e["effect_start_task"]:
                return True
        return False

    return flagged, len(benign), sum(not justified(k, d) for k, d in flags)


# --- running the rows ----------------------------------------------------------------------------
def row_setup(cfg: dict[str, Any], spec: dict[str, Any], row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, policy overrides) of one row: for an ``llm`` row, ``controllers.llm`` takes the
    row's model entry (``agents.models``), prompt and invocation.

    Raises:
        e3.errors.ConfigError: an ``llm`` row naming a model that ``agents.models`` lacks.
    """
    from e3.errors import ConfigError, did_you_mean

    rcfg = copy.deepcopy(cfg)
    over = {"controller": row["controller"]} if "controller" in row else {}
    if row.get("controller") == "llm":
        name = row.get("model")
        if name not in spec["models"]:
            raise ConfigError(f"agents.rows {row['row']!r}: field 'model': {name!r} is not in agents.models"
                              f"{did_you_mean(str(name), spec['models'])}; known: {sorted(spec['models'])}")
        llm = rcfg["controllers"].setdefault("llm", {})
        llm.update(copy.deepcopy(spec["models"][name]))
        llm["prompt"] = row.get("prompt", "reasoning")
        llm["frozen"] = spec["responses"]  # the benchmark's own replies (results/llm/agents_responses.jsonl)
        llm["invoke"] = row.get("invoke", "all")  # stated on every row, never inherited
    return rcfg, over


def run_row(cfg: dict[str, Any], spec: dict[str, Any], row: dict[str, Any], seeds: list[int],
            progress=None) -> list[dict[str, Any]]:
    """Simulate one row on every seed; one metrics dict per seed (summary, dispatch, events, audit
    digested by the metric functions above)."""
    from e3.experiment.run import build_simulation, load_run_inputs, summarize

    rcfg, over = row_setup(cfg, spec, row)
    inputs = load_run_inputs(rcfg, spec["scenario"], row["policy"], over)
    out = []
    with tempfile.TemporaryDirectory(prefix="e3-agents-") as tmp:
        for seed in seeds:
            audit: list[dict[str, Any]] = []
            trace = Path(tmp) / f"seed{seed}.parquet"
            sim = build_simulation(rcfg, spec["scenario"], row["policy"], seed, None, trace, over, (), None,
                                   audit.append, inputs=inputs)
            cpu = _time_controller(sim.policy)
            sim.run()
            s = summarize(sim, rcfg, seed, inputs.workload)
            dispatch = pd.read_parquet(trace, columns=["task_id", "kind", "device"])
            events = [e.to_dict() for e in sim.drawn_events]
            kinds = {d.name: d.kind for d in sim.pool}
            out.append(_seed_metrics(s, dispatch, events, audit, cpu, int(spec["avoid_run_tasks"]), kinds))
            if progress:
                progress(f"{row['row']} seed {seed}: {s['latency_ms']['mean']:.1f} ms, controller CPU "
                         f"{1000 * cpu[0] / max(cpu[1], 1):.3f} ms per decision ({cpu[1]} decisions)")
    return out


def _time_controller(policy) -> list[float]:
    # Wraps the controller's handle to sum its process time (the replay's cost per decision).
    spent = [0.0, 0]
    ctl = getattr(policy, "controller", None)
    if ctl is None:
        return spent
    handle = ctl.handle

    def timed(trig, tools):
        t0 = time.process_time()
        try:
            return handle(trig, tools)
        finally:
            spent[0] += time.process_time() - t0
            spent[1] += 1

    ctl.handle = timed
    return spent


def _seed_metrics(s: dict[str, Any], dispatch: pd.DataFrame, events: list[dict[str, Any]],
                  audit: list[dict[str, Any]], cpu: list[float], run_tasks: int,
                  kinds: dict[str, str]) -> dict[str, Any]:
    events = in_horizon(events, int(s["n_tasks"]))
    exp = exposure(dispatch, events, kinds)
    degrading = [e for e in events if degrades(e)]
    # a window with no same-kind arrival (cut by the horizon) has nothing to avoid: left out
    seen = [e for e in degrading if exposure(dispatch, [e], kinds)[e["event_class"]][1] > 0]
    av = [avoidance(dispatch, e, run_tasks, kinds) for e in seen]
    flagged, benign, false_flags = false_alarms(risky_flags(audit), events, risky_intervals(audit))
    ps = s.get("policy_summary", {})
    n = s["n_tasks"]
    return {"latency_ms": s["latency_ms"]["mean"], "stutter": s["stutter_rate"], "exposure": exp,
            "avoid_tasks": [a for a, _ in av], "missed": [m for _, m in av], "benign_flagged": flagged,
            "benign": benign, "false_flags": false_flags, "controller_calls": ps.get("controller_calls", 0),
            "llm_requests_per_1000": 1000.0 * ps.get("llm_requests", 0) / n,
            "prompt_tokens_per_1000": 1000.0 * ps.get("llm_prompt_tokens", 0) / n,
            "completion_tokens_per_1000": 1000.0 * ps.get("llm_completion_tokens", 0) / n,
            "fallbacks": ps.get("llm_fallbacks", 0), "cpu_s": cpu[0], "decisions": cpu[1]}


def _pct(hit: int, n: int) -> float:
    return 100.0 * hit / n if n else float("nan")


def table(spec: dict[str, Any], per_row: dict[str, list[dict[str, Any]]], oracles: dict[str, list[float]],
          record_s: dict[str, float] | None = None) -> pd.DataFrame:
    """The benchmark table (:data:`COLUMNS`) from each row's per-seed metrics and the Oracles'
    per-seed mean latencies (same seeds, same order)."""
    from e3.analysis.attribution import paired_change_pct

    rules = [m["latency_ms"] for m in per_row["rules"]] if "rules" in per_row else None
    rows = []
    for row in spec["rows"]:
        ms = per_row[row["row"]]
        lat = [m["latency_ms"] for m in ms]
        mean = float(np.mean(lat))
        d = paired_change_pct(lat, rules) if rules is not None else (float("nan"),) * 3
        exp = {c: (sum(m["exposure"][c][0] for m in ms), sum(m["exposure"][c][1] for m in ms)) for c in CLASSES}
        avoid = [a for m in ms for a in m["avoid_tasks"]]
        missed = [x for m in ms for x in m["missed"]]
        rows.append({
            "row": row["row"], "control": row.get("control", ""), "controller": row.get("controller", ""),
            "model": row.get("model", ""), "prompt": row.get("prompt", "reasoning" if row.get("controller") == "llm" else ""),
            "invoke": row.get("invoke", "all" if row.get("controller") == "llm" else ""),
            "mean_latency_ms": mean,
            "gap_to_oracle_pct": 100.0 * (mean / float(np.mean(oracles["oracle"])) - 1.0),
            "gap_to_oracle_avoid_pct": 100.0 * (mean / float(np.mean(oracles["oracle_avoid"])) - 1.0),
            "delta_vs_rules_pct": d[0], "delta_ci95_lo_pct": d[1], "delta_ci95_hi_pct": d[2],
            "stutter_pct": 100.0 * float(np.mean([m["stutter"] for m in ms])),
            **{f"exposed_{c}_pct": _pct(*exp[c]) for c in CLASSES},
            "false_alarm_pct": _pct(sum(m["benign_flagged"] for m in ms), sum(m["benign"] for m in ms)),
            "false_flags": float(np.mean([m["false_flags"] for m in ms])),
            "missed_pct": _pct(sum(missed), len(missed)),
            "onset_to_avoidance_tasks": float(np.mean(avoid)) if avoid else float("nan"),
            "controller_calls": float(np.mean([m["controller_calls"] for m in ms])),
            "llm_requests_per_1000_tasks": float(np.mean([m["llm_requests_per_1000"] for m in ms])),
            "prompt_tokens_per_1000_tasks": float(np.mean([m["prompt_tokens_per_1000"] for m in ms])),
            "completion_tokens_per_1000_tasks": float(np.mean([m["completion_tokens_per_1000"] for m in ms])),
            "fallbacks": float(np.mean([m["fallbacks"] for m in ms])),
            "record_s_per_request": (record_s or {}).get(row["row"], float("nan")),
            "n_seeds": len(ms)})
    return pd.DataFrame(rows, columns=COLUMNS)


def record_seconds(runs_path: str | Path) -> dict[str, float]:
    """Row -> recorded wall seconds per LLM request, from the recording's run summaries
    (``results/llm/agents_runs.json``: a list of {row, record_wall_s, llm_requests, ...}); {} when
    the file is absent."""
    p = Path(runs_path)
    if not p.is_file():
        return {}
    by: dict[str, list[float]] = {}
    for r in json.loads(p.read_text()):
        by.setdefault(r["row"], [0.0, 0.0])
        by[r["row"]][0] += r["record_wall_s"]
        by[r["row"]][1] += r["llm_requests"] - r.get("llm_cache_hits", 0)
    return {k: (w / n if n else float("nan")) for k, (w, n) in by.items()}


def run_benchmark(cfg: dict[str, Any], spec: dict[str, Any], rows: list[str] | None = None,
                  progress=None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[float]]]:
    """Run the Oracles and the rows (all, or those named) on ``spec``'s seeds.

    Returns:
        (row -> per-seed metrics, oracle -> per-seed mean latency).

    Raises:
        e3.errors.ConfigError: a row name ``spec`` lacks.
    """
    from e3.errors import ConfigError
    from e3.experiment.run import simulate_summaries

    seeds = list(spec["seeds"])
    known = [r["row"] for r in spec["rows"]]
    for name in rows or []:
        if name not in known:
            raise ConfigError(f"agents: no row {name!r}; rows: {known}")
    oracles = {o: [s["latency_ms"]["mean"] for s in simulate_summaries(cfg, spec["scenario"], o, seeds)]
               for o in spec["oracles"]}
    per_row = {r["row"]: run_row(cfg, spec, r, seeds, progress) for r in spec["rows"]
               if rows is None or r["row"] in rows or r["row"] == "rules"}
    return per_row, oracles


# --- recording the LLM rows ----------------------------------------------------------------------
def record_rows(cfg: dict[str, Any], spec: dict[str, Any], rows: list[str], out: str | Path, runs_out: str | Path,
                progress=None) -> list[dict[str, Any]]:
    """Record the replies of the named ``llm`` rows against the provider their model entry names
    (``controllers.llm.api_base``; a local server must serve the row's model under its alias).

    Replies already in ``out`` are reused (only misses reach the provider); after every seed the
    cache is exported to ``out`` (JSONL, sorted by key), so an interrupted recording keeps its work.
    Each run's summary (row, seed, calls, requests, tokens, fallbacks, ``record_wall_s``) is added
    to ``runs_out`` (a JSON list; a rerun of the same row and seed replaces its entry).

    Raises:
        e3.errors.ConfigError: a row that is not an ``llm`` row.
        e3.errors.E3Error: a seed whose recording met provider errors (its replies are incomplete).
    """
    from e3.errors import ConfigError, E3Error
    from e3.experiment.run import simulate_summaries
    from e3.io import write_json_atomic
    from e3.llm.cache import ResponseCache

    by_name = {r["row"]: r for r in spec["rows"]}
    out, runs_out = Path(out), Path(runs_out)
    runs = json.loads(runs_out.read_text()) if runs_out.is_file() else []
    for name in rows:
        row = by_name.get(name)
        if row is None or row.get("controller") != "llm":
            raise ConfigError(f"agents: {name!r} is not an llm row; llm rows: "
                              f"{[r['row'] for r in spec['rows'] if r.get('controller') == 'llm']}")
        with tempfile.TemporaryDirectory(prefix="e3-agents-record-") as tmp:
            rcfg, over = row_setup(cfg, spec, row)
            rcfg["controllers"]["llm"].update({"mode": "record", "cache_dir": str(Path(tmp) / "cache"),
                                               "frozen": str(out) if out.exists() else None})
            cache = ResponseCache(Path(tmp) / "cache")
            for seed in spec["seeds"]:
                t0 = time.perf_counter()
                s = simulate_summaries(rcfg, spec["scenario"], row["policy"], [seed], over)[0]
                ps = s["policy_summary"]
                if ps.get("llm_fallback_reasons", {}).get("provider_error"):
                    # the failed requests are not cached: a replay would stop at them
                    raise E3Error(f"agents: row {name!r} seed {seed}: {ps['llm_fallback_reasons']['provider_error']} "
                                  "provider errors while recording; nothing of this seed was exported, record it again")
                run = {"row": name, "seed": seed, "scenario": spec["scenario"],
                       **{k: ps.get(k) for k in ("controller_calls", "llm_requests", "llm_cache_hits",
                                                 "llm_prompt_tokens", "llm_completion_tokens", "llm_fallbacks",
                                                 "llm_model", "prompt_version")},
                       "record_wall_s": round(time.perf_counter() - t0, 1)}
                old = [r for r in runs if (r["row"], r["seed"]) == (name, seed)]
                if not (old and ps.get("llm_requests") == ps.get("llm_cache_hits")):  # keep a real recording's cost
                    runs = [r for r in runs if (r["row"], r["seed"]) != (name, seed)] + [run]
                runs.sort(key=lambda r: (r["row"], r["seed"]))
                cache.export_jsonl(out)
                write_json_atomic(runs_out, runs)
                if progress:
                    progress(f"{name} seed {seed}: {ps.get('controller_calls')} calls, {ps.get('llm_requests')} "
                             f"requests ({ps.get('llm_cache_hits')} cached), {ps.get('llm_fallbacks')} fallbacks, "
                             f"{run['record_wall_s']} s")
            cache.close()
    return runs


# --- outputs -------------------------------------------------------------------------------------
#: Columns of the Markdown/LaTeX tables (the CSV has every column).
SHOWN = ["row", "control", "mean_latency_ms", "gap_to_oracle_pct", "gap_to_oracle_avoid_pct", "delta_vs_rules_pct",
         "stutter_pct", "exposed_known_pct", "exposed_held_out_pct", "exposed_silent_pct", "false_alarm_pct",
         "missed_pct", "onset_to_avoidance_tasks", "llm_requests_per_1000_tasks", "prompt_tokens_per_1000_tasks",
         "fallbacks", "record_s_per_request"]


def csv_text(df: pd.DataFrame) -> str:
    """The CSV form of the table, as committed (4 decimals; NaN empty)."""
    return df.to_csv(index=False, float_format="%.4f")


def write_outputs(df: pd.DataFrame, spec: dict[str, Any], stem: str | Path, figure: str | Path,
                  leaderboard: str | Path) -> list[Path]:
    """Write STEM.{csv,md,tex}, the figure (png, pdf) and the leaderboard, each atomically."""
    from e3.analysis.tables import to_latex, to_markdown
    from e3.io import write_text_atomic

    stem = Path(stem)
    out = [stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")]
    write_text_atomic(out[0], csv_text(df))
    write_text_atomic(out[1], to_markdown(df[SHOWN], floatfmt=".1f"))
    write_text_atomic(out[2], to_latex(df[SHOWN], "The held-out event benchmark: each controller on the events "
                                       "scenario (known, held-out and silent events), 10 seeds; gaps to both "
                                       "Oracles, exposure per class, false alarms, cost.", "tab:agents"))
    out += figure_gap_vs_false_alarm(df, figure)
    write_text_atomic(Path(leaderboard), leaderboard_text(df, spec))
    return out + [Path(leaderboard)]


def figure_gap_vs_false_alarm(df: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Gap to oracle_avoid (%) against the false-alarm rate (%), one point per row; the controls
    marked (negative: x, positive: *). Writes STEM.png and STEM.pdf."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from e3.analysis.figures import _save

    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    markers = {"": "o", "negative": "X", "positive": "*"}
    for _, r in df.iterrows():
        x = 0.0 if pd.isna(r["false_alarm_pct"]) else r["false_alarm_pct"]
        ax.scatter(x, r["gap_to_oracle_avoid_pct"], marker=markers[r["control"] or ""], s=70 if r["control"] else 40)
        ax.annotate(r["row"].removeprefix("llm/"), (x, r["gap_to_oracle_avoid_pct"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("false-alarm rate: benign notices flagged risky (%)")
    ax.set_ylabel("gap to oracle_avoid (%)")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_title("Held-out event benchmark (events scenario, 10 seeds)", fontsize=9)
    return _save(fig, Path(stem))


def leaderboard_text(df: pd.DataFrame, spec: dict[str, Any]) -> str:
    """``results/leaderboard.md``: rows by gap to oracle_avoid, with the command that re-runs each."""
    from e3.analysis.tables import to_markdown

    d = df.sort_values(["gap_to_oracle_avoid_pct", "row"])[
        ["row", "control", "gap_to_oracle_avoid_pct", "gap_to_oracle_pct", "exposed_held_out_pct", "false_alarm_pct",
         "missed_pct", "llm_requests_per_1000_tasks"]].copy()
    d.insert(0, "rank", range(1, len(d) + 1))
    return ("# Leaderboard: the held-out event benchmark\n\n"
            f"Scenario `{spec['scenario']}` (config/scenarios/{spec['scenario']}.yaml, catalogue "
            "config/events/catalogue.yaml), seeds " + ", ".join(map(str, spec["seeds"])) + ". Ranked by the gap to "
            "`oracle_avoid` (lower is better); the full table with every metric is "
            "[`results/tables/agents.md`](tables/agents.md). LLM rows replay the committed replies "
            "(`" + spec["responses"] + "`), offline.\n\n"
            + to_markdown(d, floatfmt=".1f") +
            "\nRe-run any row and check it against the committed table, cell for cell as written (exit status 1 on "
            "a difference):\n\n    python -m e3.analysis.agents --check ROW\n\n"
            "e.g. `python -m e3.analysis.agents --check llm/qwen2.5-coder-1.5b/reasoning`. Add a row: a controller "
            "(`@register_controller`, e3/agent/controllers.py) or a model (one `agents.models` entry and one "
            "`agents.rows` entry in config/config.yaml), then record its replies with "
            "`python -m e3.analysis.agents --record ROW` (any litellm provider; `--serve` serves a local model), "
            "and re-run `snakemake --cores 8`.\n")


def check_rows(df: pd.DataFrame, rows: list[str], committed_csv: Path) -> int:
    """Compare the named rows of ``df`` with the committed CSV's, cell for cell as the CSV writes
    them (4 decimals), all columns but ``record_s_per_request`` (read from the recording's file,
    not re-measured). Prints the verdict; returns 0 when every row is identical, 1 when one
    differs, 2 when the committed CSV is missing."""
    import io

    if not committed_csv.is_file():
        print(f"e3: error: {committed_csv} not found", file=sys.stderr)
        return 2
    committed = pd.read_csv(committed_csv, dtype=str, keep_default_na=False)
    fresh = pd.read_csv(io.StringIO(csv_text(df)), dtype=str, keep_default_na=False)
    # the recording's cost is read from agents_runs.json, not re-measured by a re-run
    cols = [c for c in fresh.columns if c != "record_s_per_request"]
    bad = 0
    for name in rows:
        a = committed[committed["row"] == name].reindex(columns=cols)
        b = fresh[fresh["row"] == name][cols]
        if len(a) != 1 or len(b) != 1 or a.iloc[0].to_dict() != b.iloc[0].to_dict():
            bad += 1
            diff = {c: (a.iloc[0][c] if len(a) else None, b.iloc[0][c] if len(b) else None) for c in cols
                    if not len(a) or not len(b) or a.iloc[0][c] != b.iloc[0][c]}
            print(f"{name}: DIFFERS from {committed_csv}: {diff}")
        else:
            print(f"{name}: identical to {committed_csv}")
    return 1 if bad else 0


class serving:
    """Context manager: serve the local model behind a litellm ``openai/<alias>`` string on
    127.0.0.1:8765 (``e3.llm.local_model``), wait until it answers, stop it on exit.

    Raises:
        e3.errors.E3Error: not a local model, its packages missing, or no answer within 300 s.
    """

    def __init__(self, model: str, progress=None) -> None:
        self.alias, self.progress, self.proc = model.removeprefix("openai/"), progress, None

    def __enter__(self):
        from e3.config import REPO_ROOT
        from e3.llm import local_model
        from e3.llm.record import wait_for_server

        gguf = local_model.assemble_gguf(REPO_ROOT / "resources" / "models" / f"{self.alias}.gguf", self.alias)
        self.proc = local_model.serve(gguf, 8765, 2, alias=self.alias)
        try:
            wait_for_server("http://127.0.0.1:8765/v1", 300.0, progress=self.progress)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None


def main(argv: list[str] | None = None) -> int:
    """``python -m e3.analysis.agents`` (the workflow's rule; ``--help`` lists the modes)."""
    from e3.config import load_config
    from e3.errors import E3Error

    ap = argparse.ArgumentParser(prog="python -m e3.analysis.agents", description=(
        "The held-out event benchmark (issue 31). Default: run every row of config `agents` (replaying the "
        "committed LLM replies) and write STEM.{csv,md,tex}, the figure and the leaderboard. --check ROW...: "
        "re-run those rows and compare their table rows with the committed CSV, byte for byte. --record ROW...: "
        "record the replies of llm rows from the provider their model names (a local server must be serving it)."))
    ap.add_argument("--config", default="config/config.yaml", help="config file (default: %(default)s)")
    ap.add_argument("--out", default="results/tables/agents", help="table stem (default: %(default)s)")
    ap.add_argument("--figure", default="results/figures/fig12_agents", help="figure stem (default: %(default)s)")
    ap.add_argument("--leaderboard", default="results/leaderboard.md", help="(default: %(default)s)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", nargs="+", metavar="ROW", help="re-run these rows and compare with STEM.csv")
    mode.add_argument("--record", nargs="+", metavar="ROW", help="record these llm rows' replies")
    ap.add_argument("--serve", action="store_true",
                    help="with --record: serve each row's local model (e3.llm.local_model.LOCAL_MODELS, GGUF assembled "
                         "under resources/models) on 127.0.0.1:8765 while its rows record, one server at a time")
    a = ap.parse_args(argv)

    def progress(line: str) -> None:
        print(f"[e3] agents {line}", file=sys.stderr, flush=True)

    try:
        cfg = load_config(a.config)
        spec = cfg.get("agents")
        if not spec:
            raise E3Error(f"{a.config}: no `agents` section")
        if a.record:
            if not a.serve:
                record_rows(cfg, spec, a.record, spec["responses"], spec["record_runs"], progress)
                return 0
            by_name = {r["row"]: r for r in spec["rows"]}
            groups: list[tuple[str, list[str]]] = []
            for name in a.record:  # one server per run of consecutive rows of one model, in the order named
                model = str(by_name.get(name, {}).get("model"))
                if groups and groups[-1][0] == model:
                    groups[-1][1].append(name)
                else:
                    groups.append((model, [name]))
            for model, names in groups:
                with serving(spec["models"].get(model, {}).get("model", ""), progress):
                    record_rows(cfg, spec, names, spec["responses"], spec["record_runs"], progress)
            return 0
        rows = None
        if a.check:
            rows = a.check
            spec = {**spec, "rows": [r for r in spec["rows"] if r["row"] in rows or r["row"] == "rules"]}
        per_row, oracles = run_benchmark(cfg, spec, rows, progress)
        df = table(spec, per_row, oracles, record_seconds(spec["record_runs"]))
        if a.check:
            return check_rows(df, rows, Path(a.out).with_suffix(".csv"))
        write_outputs(df, spec, a.out, a.figure, a.leaderboard)
    except E3Error as exc:
        print(f"e3: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
