"""The three systems of e3 in one table (issue 32, item 1): E3-Agent's dispatch system, the
multi-agentic fairness system and AntLLM's agent placement. Each :class:`System` names its
scenario folder, its policy registry, its config section, the policy whose ``llm`` controller is
recorded, and how one run and one batch of seeds are simulated, so that the command line, the
config checks and LLM recording loop over systems instead of branching on them.

A system's engine and policy API live with the system (``e3.sim.engine`` + ``e3.policies`` for
E3, ``e3.fairness.engine`` + ``e3.fairness`` for fairness, ``e3.placement.engine`` + ``e3.placement`` for
placement); every run writes a summary in one schema (:mod:`e3.run_summary`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e3.errors import E3Error
from e3.registry import Registry
from e3.scenario_files import ScenarioFolder


@dataclass(frozen=True)
class System:
    """One system of e3.

    Attributes:
        name: ``e3``, ``fairness`` or ``placement`` (the run summary's ``system``).
        section: the config section holding its ``sweep`` (``""``: the top level, E3's).
        scenarios: its scenario files.
        registry_module: the module whose ``POLICIES`` registry holds its policies.
        runner: the module with its ``simulate`` and ``simulate_batch``.
        llm_policy: the policy whose ``llm`` controller ``e3 llm record --system NAME`` records.
        done: one line describing a finished run's summary (the CLI's progress).
    """

    name: str
    section: str
    scenarios: ScenarioFolder
    registry_module: str
    runner: str
    llm_policy: str
    done: Callable[[dict[str, Any]], str]

    @property
    def registry(self) -> Registry:
        """The system's policy registry (:class:`e3.registry.Registry`)."""
        return importlib.import_module(self.registry_module).POLICIES

    def simulate(self, cfg: dict[str, Any], scenario: str, policy: str, controller: str | None, seed: int,
                 out_dir: str | Path) -> dict[str, Any]:
        """One run; writes its folder and returns the summary. ``controller`` None or ``none``:
        the policy's default. E3's runner reads the controller from ``policies.e3`` unless given."""
        run = importlib.import_module(self.runner).simulate
        if self.name == "e3":
            over = {"controller": controller} if controller not in (None, "none") else None
            return run(cfg, scenario, policy, seed, out_dir, policy_overrides=over)
        return run(cfg, scenario, policy, self.runner_controller(controller), seed, out_dir)

    def simulate_batch(self, cfg: dict[str, Any], scenario: str, policy: str, controller: str | None,
                       seeds: list[int], out_pattern: str, progress=None) -> list[dict[str, Any]]:
        """One cell for several seeds in one process (``out_pattern`` holds ``{seed}``)."""
        if self.name == "e3":
            raise E3Error("the E3 system's batches run through e3.experiment.run.simulate_batch")
        run = importlib.import_module(self.runner).simulate_batch
        return run(cfg, scenario, policy, self.runner_controller(controller), seeds, out_pattern, progress=progress)

    def runner_controller(self, controller: str | None) -> str | None:
        """``controller`` as this system's runner takes it: the placement runner takes None for
        "the policy's default", which the CLI and the sweep cells write as ``none``; the fairness
        runner takes ``none`` as a controller name."""
        return None if self.name == "placement" and controller == "none" else controller


def _e3_done(s: dict[str, Any]) -> str:
    return (f"{s['n_tasks']} tasks, mean latency {s['latency_ms']['mean'] / 1000:.2f} s, "
            f"stutter {s['stutter_rate']:.3f}")


def _fairness_done(s: dict[str, Any]) -> str:
    return (f"{s['issued']} requests, mean latency {s['mean_latency_s']:.2f} s, p95 {s['p95_latency_s']:.1f} s, "
            f"normalised Jain {s['jain_normalized']:.3f}, success {s['success_ratio']:.3f}, {s['wall_s']:.2f} s wall")


def _placement_done(s: dict[str, Any]) -> str:
    return (f"{s['issued']} tasks, mean latency {s['task_latency_mean_ms'] / 1000:.2f} s, "
            f"p95 {s['task_latency_p95_ms'] / 1000:.1f} s, QoS {s['qos_ratio']:.3f}, {s['migrations']} migrations, "
            f"optimiser {s['optimizer_s']:.2f} s, {s['wall_s']:.2f} s wall")


def _folder(module: str) -> ScenarioFolder:
    return importlib.import_module(module).SCENARIOS


@functools.cache
def systems() -> dict[str, System]:
    """name -> :class:`System`, in the order e3, fairness, placement (built on first use: each
    system's scenario folder lives in its own module)."""
    return {
        "e3": System("e3", "", _folder("e3.sim.scenario"), "e3.policies.base", "e3.experiment.run", "e3", _e3_done),
        "fairness": System("fairness", "fairness", _folder("e3.fairness.scenario"), "e3.fairness.policies",
                           "e3.fairness.run", "multi_agent", _fairness_done),
        "placement": System("placement", "placement", _folder("e3.placement.run"), "e3.placement.policies",
                            "e3.placement.run", "antllm", _placement_done),
    }


def get_system(name: str) -> System:
    """The system called ``name``.

    Raises:
        E3Error: an unknown name (the message lists the systems).
    """
    table = systems()
    if name not in table:
        raise E3Error(f"unknown system {name!r}; the systems are {list(table)}")
    return table[name]


def system_of(scenario: str | Path) -> System:
    """The system a scenario belongs to: the fairness or placement system when its file says so
    (``system: fairness|placement``), else E3's."""
    table = systems()
    for name in ("fairness", "placement"):
        if table[name].scenarios.holds(scenario):
            return table[name]
    return table["e3"]
