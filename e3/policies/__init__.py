"""Dispatch policies. One module per policy; see :mod:`e3.policies.base` for the interface."""

from e3.policies.base import Policy, get_policy, policy_names, register

__all__ = ["Policy", "get_policy", "policy_names", "register"]
