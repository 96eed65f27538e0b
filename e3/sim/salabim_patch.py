"""Cheaper stand-ins for two salabim helpers that run per environment and per component.

1. ``_get_caller_frame`` (same frame returned, no source reading).

salabim records the caller's frame (for trace line numbers) when an ``Environment`` is created and
run and in a few component calls, through ``inspect.stack()``, which reads the source of every
frame on the stack and scans ``sys.modules`` for each one (twice per call). With litellm and
Snakemake loaded that cost tens of milliseconds per run, more than a 300-task simulation itself
(profile in benchmarks/PROFILE.md). This walks the frames by ``f_code.co_filename`` instead and
returns the same frame: the first one outside salabim's module and ``<string>``. Applied once, on
import of :mod:`e3.sim.components`; no result depends on it (trace line numbers only, unused here).

2. ``_check_overlapping_parameters``, which salabim runs three times per component created to
refuse a ``setup``/``process`` parameter that ``__init__`` also takes, through
``inspect.signature`` (about 2 ms per component; an operating-point job creates 700). The stand-in
runs salabim's own check once per combination of functions and remembers that it passed; a
failing check raises salabim's TypeError as before.
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


_salabim_check_overlapping = salabim.salabim._check_overlapping_parameters
_PASSED_OVERLAP_CHECKS: set[tuple] = set()


def check_overlapping_parameters(obj, method_name0: str, method_name1: str, process=None) -> None:
    """salabim's check that two methods of ``obj`` share no parameter, remembered once it passed.

    The key is the pair of underlying functions, so a passed check holds for every instance of the
    class. Methods that are not plain bound Python methods are checked every time, unremembered.

    Raises:
        TypeError: salabim's, when the parameters overlap.
    """
    m0 = getattr(obj, method_name0)
    m1 = process if process is not None else getattr(obj, method_name1)
    f0, f1 = getattr(m0, "__func__", None), getattr(m1, "__func__", None)
    key = (f0, f1)
    if f0 is None or f1 is None or key not in _PASSED_OVERLAP_CHECKS:
        _salabim_check_overlapping(obj, method_name0, method_name1, process)
        if f0 is not None and f1 is not None:
            _PASSED_OVERLAP_CHECKS.add(key)


def apply() -> None:
    """Install :func:`caller_frame` and :func:`check_overlapping_parameters` in salabim (idempotent)."""
    salabim.salabim._get_caller_frame = caller_frame
    salabim.salabim._check_overlapping_parameters = check_overlapping_parameters
