"""Network delay between nodes: half a round trip plus serialisation (spec "Network", [I]).

``transfer_ms(src, dst, bytes) = rtt_ms(src, dst) / 2 + 8 * bytes / bandwidth_bps * 1000``, zero
within a node. The RTT matrix is symmetric; :func:`uniform_rtt_matrix` draws one from a seeded
stream (city nodes: 2-10 ms), other systems may build it from distances.
"""

from __future__ import annotations

import random
from itertools import combinations

from e3.errors import E3Error


class Network:
    """Point-to-point delays between named nodes.

    Args:
        rtt_ms: ``{(a, b): rtt}`` for every unordered pair of distinct nodes (either order given).
        bandwidth_bps: link bandwidth in bits per second (the same on every path).

    Raises:
        E3Error: a missing pair, a negative or NaN RTT, a non-positive bandwidth.
    """

    def __init__(self, nodes: list[str], rtt_ms: dict[tuple[str, str], float], bandwidth_bps: float) -> None:
        if not bandwidth_bps > 0:
            raise E3Error(f"network bandwidth_bps must be > 0 (value: {bandwidth_bps!r})")
        self.nodes = list(nodes)
        self.bandwidth_bps = float(bandwidth_bps)
        self._rtt: dict[tuple[str, str], float] = {}
        for a, b in combinations(self.nodes, 2):
            v = rtt_ms.get((a, b), rtt_ms.get((b, a)))
            if v is None or not v >= 0:
                raise E3Error(f"network: RTT between {a!r} and {b!r} missing or invalid (value: {v!r})")
            self._rtt[(a, b)] = self._rtt[(b, a)] = float(v)

    def rtt_ms(self, a: str, b: str) -> float:
        """Round-trip time between ``a`` and ``b`` in ms (0 within a node)."""
        return 0.0 if a == b else self._rtt[(a, b)]

    def transfer_ms(self, src: str, dst: str, n_bytes: float) -> float:
        """One-way delivery time of ``n_bytes`` from ``src`` to ``dst`` in ms (0 within a node)."""
        if src == dst:
            return 0.0
        return self._rtt[(src, dst)] / 2.0 + 8.0 * n_bytes / self.bandwidth_bps * 1000.0


def uniform_rtt_matrix(nodes: list[str], low_ms: float, high_ms: float, rng: random.Random) -> dict[tuple[str, str], float]:
    """A symmetric RTT per unordered pair, uniform in [low_ms, high_ms], pairs in sorted order."""
    if not 0 <= low_ms <= high_ms:
        raise E3Error(f"network rtt_ms range must satisfy 0 <= low <= high (value: [{low_ms!r}, {high_ms!r}])")
    return {(a, b): rng.uniform(low_ms, high_ms) for a, b in combinations(sorted(nodes), 2)}
