"""Snakemake script: config and optional study tables -> paper/generated/{setting,operating_points,studies}.tex."""

import sys
from pathlib import Path

import yaml

from e3.analysis.paper import load_paper_values, write_text
from e3.analysis.paper_context import (
           operating_point_tex,
           read_optional_csv,
           setting_tex,
           studies_tex,
)
from e3.policies.e3_agent import E3Agent

sm = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(sm.log[0], "w")
cfg = dict(sm.params.config)
scenarios = {Path(p).stem: yaml.safe_load(Path(p).read_text()) for p in sm.input.scenarios}
write_text(sm.output.setting, setting_tex(cfg, scenarios, load_paper_values(sm.input.paper_values), E3Agent.parameters))
write_text(sm.output.operating_points,
           operating_point_tex(read_optional_csv(sm.params.operating_points), cfg["sweep"]["operating_points"],
                               cfg["workload"]["arrival_rate_per_s"]))
write_text(sm.output.studies, studies_tex(read_optional_csv(sm.params.scale), read_optional_csv(sm.params.trace)))
