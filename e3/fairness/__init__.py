"""The multi-model, latency- and fairness-aware edge inference system (issue 14; arXiv 2602.07215).

Run assembly (config, priors, scenarios, policies, metrics) around the kernel engine
:mod:`e3.sim.serving`; see docs/fairness.md and ``shared/paper/related-multi-agentic-edge-SPEC.md``.
"""
