"""Geography and user mobility for the agent placement system (issue 15).

* :func:`great_circle_km` / :func:`great_circle_rtt_matrix`: an RTT matrix from server
  coordinates (spec "To invent": intra-region RTT fixed, inter-region
  ``RTT = 2 * d / v * stretch + base`` with ``v = 200 km/ms`` in fibre and a path stretch of 1.5).
  The result feeds :class:`e3.sim.network.Network`.
* :func:`markov_mobility`: each user moves over regions as a continuous-time Markov chain
  (exponential dwell per region, the next region uniform among the others) and, inside a region,
  hands over between its access points (exponential handover gaps); seeded per user.

Units: km, ms (RTT and times).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from itertools import combinations

from e3.errors import E3Error

EARTH_RADIUS_KM = 6371.0


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance between two points given in degrees (km)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def great_circle_rtt_matrix(sites: dict[str, tuple[str, float, float]], intra_region_ms: float,
                            km_per_ms: float, stretch: float, base_ms: float) -> dict[tuple[str, str], float]:
    """RTT per unordered pair of servers (sorted names).

    Args:
        sites: server -> ``(region, latitude_deg, longitude_deg)``.
        intra_region_ms: RTT between two servers of the same region.
        km_per_ms: signal speed (200 km/ms in fibre).
        stretch: path length / great-circle length.
        base_ms: fixed per-path overhead (switching, last hops).

    Returns:
        ``{(a, b): rtt_ms}`` with ``a < b``; inter-region ``2 * d / km_per_ms * stretch + base_ms``.

    Raises:
        E3Error: a non-positive speed or stretch, a negative overhead.
    """
    if not (km_per_ms > 0 and stretch > 0 and base_ms >= 0 and intra_region_ms >= 0):
        raise E3Error(f"rtt: need km_per_ms > 0, stretch > 0, base_ms >= 0, intra_region_ms >= 0 "
                      f"(values: {km_per_ms!r}, {stretch!r}, {base_ms!r}, {intra_region_ms!r})")
    out = {}
    for a, b in combinations(sorted(sites), 2):
        ra, la, loa = sites[a]
        rb, lb, lob = sites[b]
        if ra == rb:
            out[(a, b)] = float(intra_region_ms)
        else:
            out[(a, b)] = 2.0 * great_circle_km(la, loa, lb, lob) / km_per_ms * stretch + base_ms
    return out


@dataclass(frozen=True, slots=True)
class Move:
    """A user's change of access point at ``t_ms``: to ``region`` and its access point ``cell``
    (an index into the region's servers); ``kind`` is ``region`` or ``handover``."""

    t_ms: float
    user: int
    region: str
    cell: int
    kind: str


def markov_mobility(user: int, regions: dict[str, int], start_region: str, start_cell: int, horizon_ms: float,
                    dwell_mean_ms: float, handover_mean_ms: float, rng: random.Random) -> list[Move]:
    """The moves of one user over ``[0, horizon_ms)``, in time order.

    Region changes: exponential dwell (mean ``dwell_mean_ms``), next region uniform among the
    others, access point uniform in it. Handovers: exponential gaps (mean ``handover_mean_ms``),
    a different access point of the current region (none if the region has one). Both clocks are
    memoryless, so racing them is exact.

    Args:
        regions: region -> number of access points (servers) in it.

    Raises:
        E3Error: unknown start region, non-positive means.
    """
    if start_region not in regions:
        raise E3Error(f"mobility: start region {start_region!r} not in {sorted(regions)}")
    if not (dwell_mean_ms > 0 and handover_mean_ms > 0):
        raise E3Error(f"mobility: dwell and handover means must be > 0 ({dwell_mean_ms!r}, {handover_mean_ms!r})")
    names = sorted(regions)
    t, region, cell, out = 0.0, start_region, start_cell, []
    while True:
        t_reg = rng.expovariate(1.0 / dwell_mean_ms)
        t_ho = rng.expovariate(1.0 / handover_mean_ms)
        t += min(t_reg, t_ho)
        if t >= horizon_ms:
            return out
        if t_reg <= t_ho and len(names) > 1:
            region = rng.choice([r for r in names if r != region])
            cell = rng.randrange(regions[region])
            out.append(Move(t, user, region, cell, "region"))
        elif regions[region] > 1:
            cell = rng.choice([c for c in range(regions[region]) if c != cell])
            out.append(Move(t, user, region, cell, "handover"))
