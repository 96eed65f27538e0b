"""Where the local mirrors of the raw inputs are: the MLPerf results and the request traces.

One home for the lookup the CLI, the workflow and the fetchers share (issue 32, item 6): the
command-line override, then the config's field, then the environment variable; None means download.
"""

from __future__ import annotations

import os
from typing import Any


def mlperf_mirror(cfg: dict[str, Any]) -> str | None:
    """The local MLPerf mirror folder: ``mlperf_mirror`` override, ``mlperf.mirror``, or
    the ``E3_MLPERF_MIRROR`` environment variable (first set wins); None means download."""
    return cfg.get("mlperf_mirror") or cfg.get("mlperf", {}).get("mirror") or os.environ.get("E3_MLPERF_MIRROR") or None


def traces_mirror(cfg: dict[str, Any]) -> str | None:
    """The local traces mirror: the ``traces_mirror`` override, ``traces.mirror``, or
    ``$E3_TRACES_MIRROR`` (first set wins); None means download."""
    return (cfg.get("traces_mirror") or (cfg.get("traces") or {}).get("mirror")
            or os.environ.get("E3_TRACES_MIRROR") or None)
