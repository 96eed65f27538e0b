"""Snakemake script: results/MANIFEST.json over every frozen file, after checking that the
aggregate holds exactly this configuration's runs (issue 33, defect 1: outputs restored with
`git checkout` after a run of another configuration look up to date to Snakemake)."""

import sys

from e3.analysis.paper import check_aggregate_matches, check_table_cells, write_manifest
from e3.config import config_hash, load_config

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
check_aggregate_matches("results/aggregate/runs.csv", config_hash(load_config(sm.input.effective)),
                        [tuple(r) for r in sm.params.runs])
check_table_cells("results/tables/fairness.csv", [tuple(c) for c in sm.params.fairness_cells], sm.params.fairness_seeds)
check_table_cells("results/tables/migration.csv", [tuple(c) for c in sm.params.migration_cells],
                  sm.params.migration_seeds)
files = [*sm.input.frozen, sm.input.priors, sm.params.llm, *sm.params.agents_llm]
write_manifest(sm.output[0], files, dict(sm.params.config))
