# e3: every table and figure of the E3-Agent evaluation from raw MLPerf data.
# Thin root Snakefile: config, validation and rule files; the logic lives in the `e3` package.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/mlperf.smk"
include: "workflow/rules/traces.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/scale.smk"
include: "workflow/rules/operating_points.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/agents.smk"
include: "workflow/rules/llm_vs_rules.smk"
include: "workflow/rules/fairness.smk"
include: "workflow/rules/migration.smk"
include: "workflow/rules/external.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        "results/MANIFEST.json",
        "paper/build/main.status",
