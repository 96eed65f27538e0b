"""The page_hinkley controller's Page-Hinkley test is river's, ported: same detections, bit for bit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e3.agent.change_detection import PageHinkley

river_drift = pytest.importorskip("river.drift", reason="river (the `dev` extra) is the reference")

finite = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False)


def _both(stream, **kw):
    ours, ref = PageHinkley(**kw), river_drift.PageHinkley(**kw)
    flags = []
    for x in stream:
        ours.update(x)
        ref.update(x)
        flags.append((ours.drift_detected, ref.drift_detected))
        # The internal sums too, so a difference shows before it changes a detection.
        assert (ours._sum_increase, ours._sum_decrease, ours._mean) == (
            ref._sum_increase, ref._sum_decrease, ref._x_mean.get())
    return flags


@settings(max_examples=200, deadline=None)
@given(stream=st.lists(finite, max_size=300),
       mode=st.sampled_from(["up", "down", "both"]),
       delta=st.floats(min_value=0.0, max_value=1.0),
       threshold=st.floats(min_value=0.01, max_value=5.0),
       alpha=st.sampled_from([1.0, 1 - 0.0001, 0.9]),
       min_instances=st.integers(min_value=1, max_value=40))
def test_page_hinkley_matches_river(stream, mode, delta, threshold, alpha, min_instances):
    flags = _both(stream, mode=mode, delta=delta, threshold=threshold, alpha=alpha,
                  min_instances=min_instances)
    assert all(a == b for a, b in flags)


def test_page_hinkley_detects_a_shift_as_the_controller_configures_it():
    # The page_hinkley controller's defaults (config controllers.page_hinkley) on a log-ratio
    # stream that jumps from 0 to log(2): detected, and at the same task as river.
    stream = [0.0] * 50 + [0.693] * 50
    flags = _both(stream, min_instances=5, delta=0.1, threshold=1.5, alpha=1.0, mode="both")
    assert any(a for a, _ in flags) and flags.index((True, True)) >= 50


def test_page_hinkley_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="sideways"):
        PageHinkley(mode="sideways")
