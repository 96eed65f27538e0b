"""Snakemake script: build paper/build/main.pdf, or skip with the reason (e3.analysis.pdf)."""

from e3.analysis.pdf import build_pdf

sm = snakemake  # noqa: F821 - injected by Snakemake
print(build_pdf(sm.input.tex, sm.output[0], sm.log[0], engine=sm.params.engine))
