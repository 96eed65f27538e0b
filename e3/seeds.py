"""Deterministic seed derivation: every random stream gets its own seed from named parts.

As in benchopt's ``get_seed``: a seed is a hash of (global seed, names...), never the global
``random`` state. Streams that must be common across policies (workload, hidden truth) are
derived without the policy name, so every policy of a replicate sees the same tasks and the same
hidden device behaviour (common random numbers).
"""

from __future__ import annotations

import random

from e3.io import sha256_hex


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from ``seed`` and the string forms of ``parts`` (sha256-based, stable)."""
    text = "|".join([str(int(seed))] + [str(p) for p in parts])
    return int(sha256_hex(text)[:16], 16) >> 1  # the digest's first 8 bytes, big-endian


def stream(seed: int, *parts: object) -> random.Random:
    """An independent ``random.Random`` seeded by :func:`derive_seed`."""
    return random.Random(derive_seed(seed, *parts))
