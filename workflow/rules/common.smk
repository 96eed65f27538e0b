# Shared helpers: config validation (before any rule runs) and named input/param functions.
import os

from snakemake.utils import validate

# The CLI validates with the same schema, so the two can never disagree.
validate(config, "../../e3/schemas/config.schema.yaml")


def mlperf_mirror_arg(wildcards):
    """`--mirror PATH` when a local MLPerf mirror is configured, else '' (download)."""
    mirror = (
        config.get("mlperf_mirror")
        or config["mlperf"].get("mirror")
        or os.environ.get("E3_MLPERF_MIRROR")
    )
    return f"--mirror {mirror}" if mirror else ""


def mlperf_selection_args(wildcards):
    """`--rounds ... --benchmarks ...` from the validated config."""
    return "--rounds {} --benchmarks {}".format(
        " ".join(config["mlperf"]["rounds"]), " ".join(config["mlperf"]["benchmarks"])
    )
