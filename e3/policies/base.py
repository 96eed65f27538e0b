"""The policy interface: one small class per dispatch policy, registered by name.

A policy (benchopt's "solver", Vidur's "scheduler") is one module defining one class::

    from e3.policies.base import Policy, register

    @register
    class ShortestQueue(Policy):
        '''Join the shortest queue (reference: Winston 1977).'''
        name = "my_jsq"
        def choose(self, task, obs):
            return min(obs.feasible(task.kind), key=lambda d: d.queue_length).name

The engine calls, in simulated-time order:

* ``choose(task, obs) -> device name``: for every arrival (and for every re-dispatch under churn);
  must return an available device serving ``task.kind`` (``obs.feasible(task.kind)``).
* ``on_annotation(annotation, obs)``: when a coarse event is exposed (before the next ``choose``).
* ``on_complete(record, obs)``: delayed feedback when a task finishes.
* ``summary() -> dict``: policy-specific counters for ``summary.json``.

A policy receives the pool's offline priors, its parameters, its own random stream, the
scenario's public part (the warmup budget) and the config's ``controllers`` section (options of
the meta-controllers a policy may drive). Only a class with ``needs_truth = True`` (the Oracle)
is also handed an :class:`e3.sim.truth.OracleView`; no other object can reach the ground truth.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from e3.errors import ConfigError
from e3.registry import Registry
from e3.sim.devices import DevicePrior
from e3.sim.observation import Annotation, CompletedTask, Observation
from e3.sim.workload import TaskView

#: E3 dispatch policies by name (:class:`e3.registry.Registry`; plugins register here too)
POLICIES: Registry = Registry("policy", ("e3.policies.round_robin", "e3.policies.fixed_heuristic", "e3.policies.oracle",
                    "e3.policies.oracle_avoid",
                    "e3.policies.e3_agent", "e3.policies.jsq", "e3.policies.learning"))


class Policy:
    """Base class of every dispatch policy. See the module docstring for the contract.

    Class attributes:
        name: registry name (used on the command line and in the Snakemake sweep).
        needs_truth: True only for full-information baselines (the Oracle).
        parameters: default parameters; config ``policies.NAME`` overrides them.
        test_config: extra parameter set exercised by the contract test (benchopt's idea).
    """

    name: ClassVar[str] = ""
    needs_truth: ClassVar[bool] = False
    parameters: ClassVar[dict[str, Any]] = {}
    #: parameter overrides the contract test (tests/test_baselines.py) also runs, besides the defaults
    test_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, pool: list[DevicePrior], params: dict[str, Any], rng: random.Random,
                 warmup_budget_tasks: int = 0, oracle=None, controllers: dict[str, Any] | None = None,
                 audit_sink=None) -> None:
        self.pool = pool
        self.audit_sink = audit_sink  # callable(record) for audit records, or None (keep in memory)
        self.controllers = dict(controllers or {})
        self.priors = {d.name: d for d in pool}
        unknown = set(params) - set(self.parameters)
        if unknown:
            raise ConfigError(f"policy {self.name!r}: unknown parameter(s) {sorted(unknown)}; "
                              f"known: {sorted(self.parameters)}")
        self.params = {**self.parameters, **params}
        self.rng = rng
        self.warmup_budget_tasks = warmup_budget_tasks
        self.decisions = 0

    def choose(self, task: TaskView, obs: Observation) -> str:  # pragma: no cover - interface
        """Return the name of the device that will run ``task``."""
        raise NotImplementedError

    def on_annotation(self, annotation: Annotation, obs: Observation) -> None:
        """React to an exposed coarse event (default: ignore)."""

    def on_complete(self, record: CompletedTask, obs: Observation) -> None:
        """Consume delayed feedback (default: ignore)."""

    def summary(self) -> dict[str, Any]:
        """Policy-specific counters for ``summary.json``."""
        return {}


#: the registry's methods under the names every system uses: ``register`` (class decorator; a
#: taken name is an error, so a plugin can never shadow a built-in or another plugin),
#: ``get_policy(name, plugins=())`` and ``policy_names(plugins=())``
register = POLICIES.register
get_policy = POLICIES.get
policy_names = POLICIES.names


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> None:
    """Import built-in policies, entry points of group ``e3.policies``, and ``modules``
    (:func:`e3.registry.load_plugins`: a dotted module name or a ``.py`` file path).

    Raises:
        ConfigError: a ``.py`` file that does not exist, or a module that cannot be found.
    """
    POLICIES.names(modules)
