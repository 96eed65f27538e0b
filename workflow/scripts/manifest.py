"""Snakemake script: results/MANIFEST.json over every frozen file, after checking that the
aggregate holds exactly this configuration's runs (issue 33, defect 1: outputs restored with
`git checkout` after a run of another configuration look up to date to Snakemake)."""

import sys

from e3.analysis.paper import check_aggregate_matches, write_manifest
from e3.config import config_hash, load_config

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
check_aggregate_matches("results/aggregate/runs.csv", config_hash(load_config(sm.input.effective)),
                        [tuple(r) for r in sm.params.runs])
files = [*sm.input.frozen, sm.input.priors, sm.params.llm]
write_manifest(sm.output[0], files, dict(sm.params.config))
