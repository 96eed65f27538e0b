"""Checks of a config against what is registered and on disk, before anything runs: policy and
controller names, the E3 sweep, the fairness and placement sweeps, and the external baselines.

They sit above every system (they ask each system's registry and scenario folder), so that
:mod:`e3.config`, the loader every layer uses, imports nothing of e3 but :mod:`e3.errors` and
:mod:`e3.io` (issue 32, item 1; ``tests/test_layering.py``).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

from e3.config import check_references, check_sub_schemas, load_schema, pool_kinds, validate
from e3.errors import ConfigError, did_you_mean


def check_names(cfg: dict[str, Any], source: str | Path, plugins: tuple[str, ...] = ()) -> None:
    """The ``policies`` and ``controllers`` sections name registered policies, parameters and
    controllers (with ``plugins`` and ``sweep.plugins`` loaded).

    Raises:
        ConfigError: naming ``source``, the field, the value and the registered names.
    """
    from e3.agent.controllers import controller_names
    from e3.policies.base import get_policy, policy_names

    plugins = tuple(cfg.get("sweep", {}).get("plugins", ())) + tuple(plugins)
    known = policy_names(plugins)
    for name, params in cfg.get("policies", {}).items():
        if name not in known:
            raise ConfigError(f"{source}: field 'policies.{name}': unknown policy {name!r}; registered: {known}")
        allowed = get_policy(name, plugins).parameters
        for k in params:
            if k not in allowed:
                raise ConfigError(f"{source}: field 'policies.{name}.{k}': unknown parameter of policy "
                                  f"{name!r}; known: {sorted(allowed)}")
    ctrls = controller_names()
    for name in cfg.get("controllers", {}):
        if name not in ctrls:
            raise ConfigError(f"{source}: field 'controllers.{name}': unknown controller {name!r}; "
                              f"registered: {ctrls}")


def check_sweep(cfg: dict[str, Any], root: str | Path, source: str | Path = "config") -> None:
    """Check the whole sweep before Snakemake builds its DAG (``workflow/rules/common.smk``).

    A name that matches nothing would otherwise drop jobs silently (Snakemake skips a job whose
    input file is missing when committed outputs exist) or fail only at run time.

    Args:
        cfg: the merged, schema-validated config (``snakemake`` ``config``).
        root: the workflow's folder (holding ``config/scenarios``); plugin paths are relative
            to the working folder, as in the ``e3 simulate --plugin`` commands the rules run.
        source: how errors name the config.

    Checks: NaN/infinities anywhere; ``truth``/``pool`` references (:func:`check_references`);
    ``policies``/``controllers`` names (:func:`check_names`); every ``sweep.plugins`` entry
    imports; every ``sweep.scenarios`` entry is a scenario file that loads against the pool;
    every ``sweep.cells`` policy is registered and its controller is registered and usable by
    it; the fairness and placement sweeps likewise (:func:`check_system_sweep`). Events past the
    horizon are printed as warnings.

    Raises:
        ConfigError: the first problem, naming the field and the value.
    """
    from e3.agent.controllers import controller_names
    from e3.policies.base import get_policy, load_plugins, policy_names
    from e3.sim.scenario import available_scenarios, horizon_warnings, load_scenario

    validate(copy.deepcopy(cfg), load_schema("config.schema.yaml"), source)
    check_sub_schemas(cfg, source)
    check_references(cfg, source)
    sweep = cfg["sweep"]
    plugins = tuple(sweep.get("plugins", ()))
    for i, p in enumerate(plugins):
        try:
            load_plugins((p,))
        except ConfigError as exc:
            raise ConfigError(f"{source}: field 'sweep.plugins.{i}': {exc}") from None
    check_names(cfg, source)
    folder = Path(root) / "config" / "scenarios"
    kinds = pool_kinds(cfg)
    for i, name in enumerate(sweep["scenarios"]):
        path = folder / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"{source}: field 'sweep.scenarios.{i}': unknown scenario {name!r} (no {path}); "
                              f"available: {available_scenarios(folder)}")
        # Ranks for `order: fastest` selectors need the priors; all-equal ranks (pool order) check
        # the same structure: disjoint offsets stay disjoint under any one ranking.
        sc = load_scenario(path, kinds, None, dict.fromkeys(kinds, 0.0))
        for line in horizon_warnings(sc, cfg["simulation"]["horizon_tasks"]):
            print(f"e3: warning: {line}", file=sys.stderr)
    known, ctrls = policy_names(plugins), controller_names()
    for i, cell in enumerate(sweep["cells"]):
        pol, ctrl = cell["policy"], cell.get("controller", "none")
        if pol not in known:
            raise ConfigError(f"{source}: field 'sweep.cells.{i}.policy': unknown policy {pol!r}; registered: {known}")
        if ctrl not in ctrls:
            raise ConfigError(f"{source}: field 'sweep.cells.{i}.controller': unknown controller {ctrl!r}; "
                              f"registered: {ctrls}")
        if ctrl != "none" and "controller" not in get_policy(pol, plugins).parameters:
            raise ConfigError(f"{source}: field 'sweep.cells.{i}.controller': policy {pol!r} has no "
                              f"meta-controller; use controller: none (or omit it)")
    for section in ("fairness", "placement"):
        if section in cfg:
            check_system_sweep(cfg, section, source)
    if "placement" in cfg:
        from e3.placement.policies import check_prompt_queueing

        check_prompt_queueing(cfg["placement"], str(source))
    check_external(cfg, source)
    if "attribution" in cfg:  # each ablation sets e3 parameters: a typo would remove nothing
        e3_params = set(get_policy("e3", plugins).parameters)
        for name, over in cfg["attribution"]["ablations"].items():
            for key in over:
                if key not in e3_params:
                    raise ConfigError(f"{source}: field 'attribution.ablations.{name}.{key}': not a parameter of "
                                      f"policy 'e3'{did_you_mean(key, e3_params)}; known: {sorted(e3_params)}")
        for i, name in enumerate(cfg["attribution"]["scenarios"]):
            if not (folder / f"{name}.yaml").is_file():
                raise ConfigError(f"{source}: field 'attribution.scenarios.{i}': unknown scenario {name!r}; "
                                  f"available: {available_scenarios(folder)}")


def check_system_sweep(cfg: dict[str, Any], section: str, source: str | Path = "config") -> None:
    """Check ``{section}.sweep`` of the fairness or placement system: every scenario is a file of
    that system, every cell's policy is registered and takes its controller, and a cell's
    ``scenarios`` (if given) are among the sweep's.

    Raises:
        ConfigError: the first problem, naming the field and the value.
    """
    from e3.systems import get_system

    system = get_system(section)
    plugins = tuple(cfg.get("sweep", {}).get("plugins", ()))
    sweep = cfg[section]["sweep"]
    for i, name in enumerate(sweep["scenarios"]):
        if not system.scenarios.path(name).is_file():
            raise ConfigError(f"{source}: field '{section}.sweep.scenarios.{i}': unknown scenario {name!r}; "
                              f"available: {system.scenarios.names()}")
    for i, cell in enumerate(sweep["cells"]):
        try:
            cls = system.registry.get(cell["policy"], plugins)
        except ConfigError as exc:
            raise ConfigError(f"{source}: field '{section}.sweep.cells.{i}.policy': {exc}") from None
        ctrl = cell.get("controller", "none")
        if ctrl not in cls.controllers:
            raise ConfigError(f"{source}: field '{section}.sweep.cells.{i}.controller': policy {cell['policy']!r} "
                              f"takes {list(cls.controllers)}, not {ctrl!r}")
        extra = sorted(set(cell.get("scenarios", ())) - set(sweep["scenarios"]))
        if extra:
            raise ConfigError(f"{source}: field '{section}.sweep.cells.{i}.scenarios': {extra} not in "
                              f"{section}.sweep.scenarios {sweep['scenarios']}")


def check_external(cfg: dict[str, Any], source: str | Path = "config") -> None:
    """Check ``external.baselines``: unique names that no policy of their system registers, a
    command that fills in ``{out}``, and a system whose sweep exists.

    Raises:
        ConfigError: the first problem, naming the field and the value.
    """
    from e3.systems import get_system

    plugins = tuple(cfg.get("sweep", {}).get("plugins", ()))
    seen: set[tuple[str, str]] = set()
    for i, b in enumerate(cfg.get("external", {}).get("baselines", [])):
        where = f"{source}: field 'external.baselines.{i}"
        system = b["system"]
        if b["name"] in get_system(system).registry.names(plugins):
            raise ConfigError(f"{where}.name': {b['name']!r} is a registered {system} policy; an external "
                              "baseline needs a name of its own")
        if (system, b["name"]) in seen:
            raise ConfigError(f"{where}.name': {b['name']!r} is listed twice for the {system} system")
        seen.add((system, b["name"]))
        if "{out}" not in b["command"]:
            raise ConfigError(f"{where}.command': the command must write into {{out}} (value: {b['command']!r})")
