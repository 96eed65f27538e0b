"""A cheaper stand-in for salabim's ``_get_caller_frame`` (same frame returned, no source reading).

salabim records the caller's frame (for trace line numbers) when an ``Environment`` is created and
run and in a few component calls, through ``inspect.stack()``, which reads the source of every
frame on the stack and scans ``sys.modules`` for each one (twice per call). With litellm and
Snakemake loaded that cost tens of milliseconds per run, more than a 300-task simulation itself
(profile in benchmarks/PROFILE.md). This walks the frames by ``f_code.co_filename`` instead and
returns the same frame: the first one outside salabim's module and ``<string>``. Applied once, on
import of :mod:`e3.sim.engine`; no result depends on it (trace line numbers only, unused here).
"""

from __future__ import annotations

import sys
from types import FrameType

import salabim


def caller_frame() -> FrameType | None:
    """The innermost frame whose file is neither salabim's nor ``<string>`` (salabim's rule)."""
    frame = sys._getframe(1)
    own = frame.f_code.co_filename  # the salabim function that asked
    last = frame
    while frame is not None:
        if frame.f_code.co_filename not in (own, "<string>"):
            return frame
        last, frame = frame, frame.f_back
    return last


def apply() -> None:
    """Install :func:`caller_frame` in salabim (idempotent)."""
    salabim.salabim._get_caller_frame = caller_frame
