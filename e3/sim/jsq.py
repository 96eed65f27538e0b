"""Join the shortest queue, the one home of the rule in e3 (issue 32, item 6).

W. Winston, "Optimality of the shortest line discipline", J. Appl. Prob. 14 (1977): send the job to
the server with the fewest jobs (waiting plus in service). Used by E3's ``jsq`` and ``jsq_d``
dispatch policies and the fairness system's ``jsq`` routing.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def join_shortest_queue(candidates: Sequence[T], queue_length: Callable[[T], int], rng: random.Random) -> T:
    """The candidate with the smallest ``queue_length`` (jobs waiting plus in service); ties broken
    uniformly at random with one ``rng.choice`` over the tied candidates in their given order.

    Raises:
        ValueError: no candidates.
    """
    if not candidates:
        raise ValueError("join_shortest_queue: no candidates")
    qs = [queue_length(c) for c in candidates]
    best = min(qs)
    return rng.choice([c for c, q in zip(candidates, qs, strict=True) if q == best])
