"""Issue 33, defect 3: a plugin cannot shadow a built-in policy or controller, and two plugins
cannot share a name; the same plugin file loaded twice in one process is not a clash."""

from __future__ import annotations

import pytest

from e3.errors import ConfigError
from e3.policies.base import get_policy, load_plugins

PLUGIN = '''
from e3.policies.base import Policy, register


@register
class {cls}(Policy):
    name = "{name}"

    def choose(self, task, obs):
        return obs.feasible(task.kind)[0].name
'''


def _plugin(tmp_path, file, cls, name):
    p = tmp_path / file
    p.write_text(PLUGIN.format(cls=cls, name=name))
    return str(p)


def test_a_plugin_cannot_replace_a_builtin_policy(tmp_path):
    oracle = get_policy("oracle")
    for cls in ("Oracle", "MyOracle"):  # the same class name as the built-in, or another
        with pytest.raises(ConfigError, match="'oracle' is already taken by a built-in policy"):
            load_plugins([_plugin(tmp_path, f"{cls.lower()}_plugin.py", cls, "oracle")])
    assert get_policy("oracle") is oracle


def test_two_plugins_cannot_share_a_name_and_a_reload_is_not_a_clash(tmp_path):
    first = _plugin(tmp_path, "first_plugin.py", "Mine", "mine_issue33")
    load_plugins([first])
    load_plugins([first])  # the same file again (e.g. a batch loading plugins per cell)
    (tmp_path / "other").mkdir()
    second = _plugin(tmp_path / "other", "first_plugin.py", "Mine", "mine_issue33")
    with pytest.raises(ConfigError, match="'mine_issue33' is already taken"):
        load_plugins([second])


def test_a_controller_name_is_reserved():
    from e3.agent.controllers import Controller, register_controller

    class Rules(Controller):
        name = "rules"

        def handle(self, trig, tools):
            return None

    with pytest.raises(ConfigError, match="'rules' is already taken"):
        register_controller(Rules)


# --- issue 33, defect 4: the observation a policy receives cannot be written ----------------------
class Tamper:
    """A plugin policy's body that tries each write a policy could attempt on its observation."""

    @staticmethod
    def attempts(obs, task):
        yield "now_ms", lambda: setattr(obs, "now_ms", 0.0)
        yield "task_index", lambda: setattr(obs, "task_index", 0)
        yield "devices", lambda: setattr(obs, "devices", {})
        yield "devices[...]", lambda: obs.devices.__setitem__("x", None)
        yield "annotations.clear", lambda: obs.annotations.clear()
        yield "annotations.append", lambda: obs.annotations.append(None)
        yield "recent.clear", lambda: obs.recent.clear()
        yield "recent.append", lambda: obs.recent.append(None)
        yield "annotations=", lambda: setattr(obs, "annotations", [])
        yield "recent=", lambda: setattr(obs, "recent", [])
        yield "new attribute", lambda: setattr(obs, "cheat", 1)
        dev = obs.feasible(task.kind)[0]
        yield "device.available", lambda: setattr(dev, "available", False)
        yield "device.queue.clear", lambda: dev.queue.clear()
        yield "task.input_tokens", lambda: setattr(task, "input_tokens", 1)
        yield "task.arrival_ms", lambda: setattr(task, "arrival_ms", 0.0)
        if len(obs.recent):
            yield "record.end_ms", lambda: setattr(obs.recent[-1], "end_ms", 0.0)
            yield "record.task", lambda: setattr(obs.recent[-1], "task", None)
        if len(obs.annotations):
            yield "annotation.device", lambda: setattr(obs.annotations[-1], "device", "x")


def test_every_write_to_the_observation_fails_and_the_run_is_unchanged(tmp_path, repo):
    import dataclasses

    import pandas as pd

    from e3.config import load_config
    from e3.experiment.run import simulate
    from e3.policies.base import Policy, register

    failed, succeeded = set(), set()

    @register
    class TamperingPolicy(Policy):
        name = "tampering_issue33"

        def choose(self, task, obs):
            for what, attempt in Tamper.attempts(obs, task):
                try:
                    attempt()
                except (AttributeError, TypeError, dataclasses.FrozenInstanceError):
                    failed.add(what)
                else:
                    succeeded.add(what)
            return obs.feasible(task.kind)[0].name

    cfg = load_config(repo / "config/config.yaml")
    simulate(cfg, "churn", "tampering_issue33", 1, tmp_path / "t", n_tasks=60)
    assert not succeeded, succeeded
    assert {"now_ms", "recent.clear", "record.end_ms", "annotation.device", "task.input_tokens"} <= failed
    t = pd.read_parquet(tmp_path / "t/tasks.parquet")
    assert (t["dispatch_ms"] >= t["arrival_ms"]).all()


# --- issue 33, UX ----------------------------------------------------------------------------------
def test_bare_e3_lists_the_commands_and_misspelt_names_get_a_suggestion(capsys):
    from e3.cli import main

    assert main([]) == 2
    err = capsys.readouterr().err
    assert "simulate" in err and "operating-points" in err and "list" in err
    assert main(["simulate", "--scenario", "driftt", "--policy", "e3", "--seed", "1", "--out", "x"]) == 2
    assert "did you mean 'drift'?" in capsys.readouterr().err
    assert main(["simulate", "--scenario", "drift", "--policy", "oracel", "--seed", "1", "--out", "x"]) == 2
    assert "did you mean 'oracle'?" in capsys.readouterr().err


def test_every_subcommand_has_a_description():
    import argparse

    from e3.cli import build_parser

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    yield f"{path} {name}", sub
                    yield from walk(sub, f"{path} {name}")

    missing = [name for name, sub in walk(build_parser(), "e3") if not sub.description]
    assert not missing, missing
