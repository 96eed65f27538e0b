"""One run-summary shape for every system (issue 32, item 3).

Every run's ``summary.json`` (E3, fairness, placement, and a baseline run outside e3) has the top
level of ``e3/schemas/run_summary.schema.yaml``: ``system``, ``scenario``, ``policy``,
``controller`` (``none`` for a policy without one), ``seed``, ``config_hash``, ``scenario_hash``,
``policy_summary``, ``versions``, plus the fields its system's tables read. e3 checks a summary
with :func:`check_run_summary` when it writes one and when an aggregation reads one
(:func:`read_run_summary`), so a malformed run fails where it is, naming the file and the field.
"""

from __future__ import annotations

import functools
import json
import platform
import re
from pathlib import Path
from typing import Any

from e3 import __version__
from e3.config import load_schema, validate
from e3.errors import ConfigError, InputError

SCHEMA = "run_summary.schema.yaml"
#: the systems a summary may belong to (the schema's ``system`` enum)
SYSTEMS = ("e3", "fairness", "placement")


def versions() -> dict[str, str]:
    """Versions of e3, Python and the packages a result depends on (a fresh dict per call)."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    # Read once per process: importlib.metadata parses each package's METADATA file (~10 ms per
    # package), which a batch of 140 runs used to pay per run.
    import importlib.metadata as md

    out = {"e3": __version__, "python": platform.python_version()}
    for p in ("salabim", "numpy", "pandas", "pyarrow", "statsmodels", "litellm"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "absent"
    return tuple(out.items())


def check_run_summary(summary: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """Check ``summary`` against the run-summary schema and return it.

    Raises:
        ConfigError: naming ``source``, the field's JSON path and what is wrong (NaN included).
    """
    return validate(summary, load_schema(SCHEMA), source)


def read_run_summary(path: str | Path, system: str | None = None) -> dict[str, Any]:
    """Read and check one ``summary.json``; ``system``: the system it must belong to.

    Raises:
        InputError: missing or unreadable file, not JSON, a field the schema refuses (named), or
            a summary of another system.
    """
    p = Path(path)
    try:
        s = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(p, "(file)", "missing summary") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(p, "(file)", f"not a readable run summary ({exc})") from None
    if not isinstance(s, dict):
        raise InputError(p, "(top level)", "not a JSON object")
    try:
        check_run_summary(s, p)
    except ConfigError as exc:
        text = str(exc).removeprefix(f"{p}: ")
        m = re.match(r"field '(.*?)': (.*)", text, re.S)
        raise InputError(p, *(m.groups() if m else ("(top level)", text))) from None
    if system is not None and s["system"] != system:
        raise InputError(p, "system", f"a {s['system']!r} run where a {system!r} run was expected")
    return s
