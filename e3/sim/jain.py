"""Jain's fairness index, the one home of it in e3 (issue 32, item 6).

R. Jain, D. Chiu and W. Hawe, "A quantitative measure of fairness and discrimination for resource
allocation in shared computer systems", DEC-TR-301 (1984): ``J(x) = (sum x)^2 / (n sum x^2)``.
Used for the E3 pool's utilisation balance and for the fairness system's per-model scores.
"""

from __future__ import annotations

from collections.abc import Sequence


def jain_index(x: Sequence[float]) -> float:
    """Jain's index of ``x`` (n >= 1 non-negative values), in [1/n, 1].

    Returns 1.0 for empty or all-zero input (nothing to be unfair about): a caller that must not
    reward levelling down reports a starvation-aware measure beside it (issue 29). Summed in
    order in pure Python, so the value is the same on every platform.
    """
    s2 = sum(v * v for v in x)
    return (sum(x) ** 2) / (len(x) * s2) if s2 > 0 else 1.0


def jain_normalized(j: float, n: int) -> float:
    """Min-max rescaling of Jain's index to [0, 1]: ``(J - 1/n) / (1 - 1/n)``; 1 when n = 1
    (the fairness spec's candidate (b))."""
    return (j - 1.0 / n) / (1.0 - 1.0 / n) if n > 1 else 1.0
