"""Snakemake script: write the validated config that every simulation job reads."""

import sys

import yaml

from e3.io import write_text_atomic

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake
write_text_atomic(snakemake.output[0], yaml.safe_dump(dict(snakemake.params.config), sort_keys=True))  # noqa: F821
