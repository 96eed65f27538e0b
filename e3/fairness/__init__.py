"""The multi-model, latency- and fairness-aware edge inference system (issue 14; arXiv 2602.07215).

Run assembly (config, priors, scenarios, policies, metrics) around the kernel engine
:mod:`e3.fairness.engine`; what is known of the system and the defaults chosen: docs/fairness.md.
"""
