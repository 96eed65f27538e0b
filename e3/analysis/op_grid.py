"""The operating-point study's grid (issue 10): which runs it holds and how each is named.

Pure Python with no pandas or statsmodels, so that the Snakefile can lay out the study's jobs
without importing the analysis stack (issue 11: the no-op re-run). The analysis of the rows is in
:mod:`e3.analysis.operating_points`.
"""

from __future__ import annotations

import math
from typing import Any

STUDIES = ("rate", "penalty", "mismatch")
_PREFIX = {"rate": "rate", "penalty": "pen", "mismatch": "mis"}
REFERENCE_POINT = "ref"


def point_name(study: str, value: float) -> str:
    """Folder name of a grid point, e.g. ``rate0.15``, ``pen60000``, ``mis0.5``."""
    return f"{_PREFIX[study]}{value:g}"


def point_value(study: str, point: str) -> float:
    """The grid value of ``point`` (NaN for the penalty study's ``ref`` point)."""
    if point == REFERENCE_POINT:
        return math.nan
    return float(point[len(_PREFIX[study]):])


def point_sets(study: str, point: str, policy: str) -> list[str]:
    """The ``e3 simulate --set`` assignments of one run of the study."""
    if study == "rate":
        return [f"workload.arrival_rate_per_s={point_value(study, point):g}"]
    if study == "mismatch":
        return [f"truth.mismatch_scale={point_value(study, point):g}"]
    if point == REFERENCE_POINT:
        return []
    pen = f"{point_value(study, point):g}"
    if policy == "oracle_avoid":
        return [f"policies.oracle_avoid.soft_penalty_ms={pen}"]
    return [f"policies.{policy}.hard_avoidance=false", f"policies.{policy}.risk_penalty_ms={pen}"]


def sets_leave_config_unchanged(cfg: dict[str, Any], sets: list[str]) -> bool:
    """True when every ``KEY=VALUE`` of ``sets`` (:func:`point_sets`) names a key that ``cfg``
    already holds, with that value and type (VALUE parsed as YAML, as ``e3 simulate --set`` does):
    such a point runs the config as it is, so its runs are the main sweep's. A key the config
    lacks counts as a change (it changes the config hash, e.g. ``truth.mismatch_scale=1``)."""
    import yaml

    for item in sets:
        key, _, raw = item.partition("=")
        node: Any = cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        value = yaml.safe_load(raw)
        if type(node) is not type(value) or node != value:
            return False
    return True


def study_points(op: dict[str, Any], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run of the study: dicts with study, point, scenario, policy, controller, seed and
    ``path`` (``{study}/{point}/{scenario}/{policy}/{controller}/seed{seed}``), in a fixed order."""
    pairs = [(c["policy"], c.get("controller", "none")) for c in cells if c.get("controller", "none") != "llm"]
    frontier = [("oracle", "none"), ("oracle_avoid", "none"), ("e3", "rules")]
    grid: list[tuple[str, str, list[str], list[tuple[str, str]]]] = []
    for r in op["rates_per_s"]:
        grid.append(("rate", point_name("rate", r), op["scenarios"], pairs))
    if op["penalty_scenarios"]:
        grid.append(("penalty", REFERENCE_POINT, op["penalty_scenarios"], frontier))
        for p in op["risk_penalties_ms"]:
            grid.append(("penalty", point_name("penalty", p), op["penalty_scenarios"], frontier[1:]))
    for m in op["mismatch_scales"]:
        grid.append(("mismatch", point_name("mismatch", m), op.get("mismatch_scenarios", op["scenarios"]), pairs))
    out = []
    for study, point, scenarios, cell_pairs in grid:
        for sc in scenarios:
            for pol, ctl in cell_pairs:
                for seed in op["seeds"]:
                    out.append({"study": study, "point": point, "scenario": sc, "policy": pol, "controller": ctl,
                                "seed": seed, "path": f"{study}/{point}/{sc}/{pol}/{ctl}/seed{seed}"})
    return out


def study_shards(op: dict[str, Any], cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The study grouped into shards: one per (study, point, scenario), each with its cells.

    A shard's rows (:func:`summary_row`, every cell and seed of it) go to one JSONL file. One
    Snakemake job runs the shards of one (study, point), its scenarios in turn, in one process
    (``e3 operating-points --scenario A B ...``), so the study costs 20 process starts instead of
    ten thousand.

    Returns:
        dicts with ``study``, ``point``, ``scenario``, ``cells`` ([(policy, controller)]) and
        ``path`` (``{study}/{point}/{scenario}``), in :func:`study_points` order.
    """
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in study_points(op, cells):
        key = (p["study"], p["point"], p["scenario"])
        sh = out.setdefault(key, {"study": key[0], "point": key[1], "scenario": key[2], "cells": [],
                                  "path": "/".join(key)})
        if (p["policy"], p["controller"]) not in sh["cells"]:
            sh["cells"].append((p["policy"], p["controller"]))
    return list(out.values())


def summary_row(study: str, point: str, scenario: str, policy: str, controller: str, seed: int,
                s: dict[str, Any]) -> dict[str, Any]:
    """The figures the study reads from one run's summary dict: mean latency (ms), stutter rate,
    rho_pool (largest per-kind utilisation with no event) and rho_safe (largest over semantic
    windows; inf when a window leaves a kind no safe device).

    Raises:
        KeyError: the summary lacks ``latency_ms``, ``stutter_rate`` or ``load``.
    """
    load = s["load"]
    safe = [w["rho_safe"] for w in load["semantic_windows"]]
    return {"study": study, "point": point, "scenario": scenario, "policy": policy, "controller": controller,
            "seed": int(seed), "latency_ms": s["latency_ms"]["mean"], "stutter_rate": s["stutter_rate"],
            "rho_pool": max(load["rho_pool_static"].values()),
            "rho_safe": max((math.inf if x is None else x) for x in safe) if safe else math.nan}
