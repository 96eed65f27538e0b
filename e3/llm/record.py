"""Record LLM controller responses for a sweep and export them for replay (``e3 llm record``).

Runs the ``llm`` controller of one system's LLM policy in record mode for every (scenario, seed)
(:attr:`e3.systems.System.llm_policy`: E3-Agent's ``e3``, the fairness system's ``multi_agent``, the placement
system's ``antllm``), against a provider (by default the bundled local model, served on 127.0.0.1), in a fresh cache, and
writes the cache as the committed JSONL export. Re-running it with the same model, settings and
prompt version reproduces the same file (greedy decoding); its ``meta`` fields record the model.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from e3.errors import E3Error
from e3.llm.cache import ResponseCache


def wait_for_server(api_base: str, timeout_s: float = 300.0, api_key: str | None = None,
                    progress: Callable[[str], None] | None = None) -> None:
    """Poll ``{api_base}/models`` until the server answers, with ``Authorization: Bearer
    api_key`` when a key is given. Any HTTP answer counts, a 401 or 403 included (the server is
    up; the request itself will say whether the key is right), so a provider whose ``/models``
    needs a key is not waited on for ``timeout_s`` (issue 33, defect 9). ``progress`` hears a line
    every 10 s while nothing answers.

    Raises:
        E3Error: nothing answered within ``timeout_s`` (the message names the address and the last
            connection error).
    """
    start = time.monotonic()
    deadline, said, last = start + timeout_s, start, "no attempt"
    req = urllib.request.Request(api_base.rstrip("/") + "/models")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                json.load(r)
                return
        except urllib.error.HTTPError:
            return  # the server answered (e.g. 401 without the right key)
        except (OSError, ValueError) as exc:
            last = str(exc)
            time.sleep(1)
        if progress and time.monotonic() - said >= 10:
            said = time.monotonic()
            progress(f"waiting for a server at {api_base} ({said - start:.0f} s of {timeout_s:.0f} s; {last})")
    raise E3Error(f"no server answered at {api_base} within {timeout_s:.0f} s (last error: {last})")


def _simulator(system: str) -> Callable[..., dict[str, Any]]:
    """``simulate(cfg, scenario, seed, out_dir) -> summary`` of ``system``'s LLM policy
    (:attr:`e3.systems.System.llm_policy`) with the ``llm`` controller.

    Raises:
        E3Error: an unknown system.
    """
    from e3.systems import get_system

    sys_ = get_system(system)
    # E3's runner takes the controller from the config (record sets policies.e3.controller: llm)
    controller = None if sys_.name == "e3" else "llm"
    return lambda cfg, sc, seed, out: sys_.simulate(cfg, sc, sys_.llm_policy, controller, seed, out)


def record(cfg: dict[str, Any], scenarios: list[str], seeds: list[int], out: str | Path,
           runs_dir: str | Path, reuse: bool = False,
           progress: Callable[[str], None] | None = None, system: str = "e3") -> dict[str, Any]:
    """Record every (scenario, seed) run of the ``llm`` controller; export the responses to ``out``.

    Args:
        cfg: validated config; ``controllers.llm`` names the provider.
        reuse: start from the existing export (only misses reach the provider) instead of empty.
        system: ``e3``, ``fairness`` or ``placement`` (:func:`e3.systems.get_system`); the three systems'
            requests differ, so one export can hold all of them.

    Returns:
        {"runs": [summary.policy_summary per run], "responses": count written}.

    Raises:
        E3Error: unknown ``system``.
    """
    simulate = _simulator(system)
    llm = cfg["controllers"]["llm"]
    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="e3-llm-record-") as tmp:
        rcfg = copy.deepcopy(cfg)
        rcfg["controllers"]["llm"].update({"mode": "record", "cache_dir": str(Path(tmp) / "cache"),
                                           "frozen": str(out) if reuse and out.exists() else None})
        rcfg.setdefault("policies", {}).setdefault("e3", {})["controller"] = "llm"
        runs = []
        cache = ResponseCache(Path(tmp) / "cache")
        for seed in seeds:  # seed-major, exporting after each run: an interrupted recording keeps its work
            for sc in scenarios:
                t0 = time.perf_counter()
                s = simulate(rcfg, sc, seed, Path(runs_dir) / f"{sc}_seed{seed}")
                ps = s["policy_summary"]
                run = {"scenario": sc, "seed": seed, **ps, "record_wall_s": round(time.perf_counter() - t0, 1)}
                if system == "e3":
                    run["horizon_tasks"] = rcfg["simulation"]["horizon_tasks"]
                else:
                    run["system"] = system
                runs.append(run)
                if progress:
                    progress(f"{sc} seed {seed}: {ps.get('controller_calls', ps.get('llm_calls'))} calls, "
                             f"{ps['llm_requests']} requests "
                             f"({ps['llm_cache_hits']} cached), {ps.get('llm_fallbacks', ps.get('fallbacks_total'))} fallbacks, "
                             f"{time.perf_counter() - t0:.0f} s ({llm['model']})")
                n = cache.export_jsonl(out)
        cache.close()
    return {"runs": runs, "responses": n}


def merge_run_summaries(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recording-run summaries to keep beside the export after a ``--reuse`` recording.

    A run is identified by (system, scenario, seed, horizon_tasks, prompt_version) (``system``
    absent = ``e3``; ``horizon_tasks`` only E3's), so the recordings of another prompt (another
    release's) are kept; ``new`` replaces ``old`` runs with the same identity and the others are
    kept. Sorted by horizon (longest first), then seed.
    """
    def key(r: dict[str, Any]) -> tuple:
        return r.get("system", "e3"), r["scenario"], r["seed"], r.get("horizon_tasks"), r.get("prompt_version")

    fresh = {key(r) for r in new}
    runs = [r for r in old if key(r) not in fresh] + list(new)
    return sorted(runs, key=lambda r: (-(r.get("horizon_tasks") or 0), r["seed"]))
