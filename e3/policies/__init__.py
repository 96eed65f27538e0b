"""Dispatch policies of the E3 system: one module per family (``oracle``, ``oracle_avoid``,
``fixed_heuristic``, ``round_robin``, ``jsq`` with ``jsq_d`` and ``sed_ewma``, ``learning`` with the
bandits, ``e3_agent`` with ``e3`` and ``e3_rls``); :mod:`e3.policies.base` is the interface and the
registry (plugins: a ``.py`` file or an entry point of group ``e3.policies``)."""

from e3.policies.base import Policy, get_policy, policy_names, register

__all__ = ["Policy", "get_policy", "policy_names", "register"]
