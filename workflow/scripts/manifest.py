"""Snakemake script: results/MANIFEST.json over every frozen file."""

import sys

from e3.analysis.paper import write_manifest

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
files = [*sm.input.frozen, sm.input.priors, sm.params.llm]
write_manifest(sm.output[0], files, dict(sm.params.config))
