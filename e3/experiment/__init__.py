"""The experiment layer: assembles a run from the config (priors, pool, scenario, workload, truth,
registered policy), runs it on the :mod:`e3.sim` kernel, and writes its files with provenance.

``e3/sim`` is the simulation kernel and imports nothing from this layer, the policies or the
agents; everything that knows about config files, the policy registry or output folders lives here.
"""
