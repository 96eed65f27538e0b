"""Load and validate e3 configuration files against their JSON schemas (defaults filled in).

The schemas live in ``e3/schemas/`` so that the CLI and the Snakemake workflow validate with the
same file (the Snakefile calls ``snakemake.utils.validate`` on ``e3/schemas/config.schema.yaml``).
"""

from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from e3.errors import ConfigError
from e3.io import sha256_hex

#: Repository root when e3 runs from a checkout (config paths are relative to it).
REPO_ROOT = Path(__file__).resolve().parent.parent


def load_schema(name: str) -> dict[str, Any]:
    """Return the schema ``e3/schemas/{name}`` (YAML or JSON) as a dict."""
    text = resources.files("e3.schemas").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _with_defaults(validator_class):
    # The jsonschema FAQ recipe: fill "default" values while validating.
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate(instance: Any, schema: dict[str, Any], source: str | Path) -> Any:
    """Validate ``instance`` in place (filling schema defaults) and return it.

    Raises:
        ConfigError: naming ``source``, the JSON path of the field and the offending value.
    """
    errors = sorted(_Validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"{source}: field {path!r}: {e.message}")
    return instance


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file. Raises ConfigError when missing or not parseable."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                overlays: list[str | Path] | None = None) -> dict[str, Any]:
    """Load ``config/config.yaml`` (or ``path``), merge ``overlays``, apply ``overrides``, validate,
    fill defaults.

    Args:
        overlays: further YAML files merged over the base in order, recursively, exactly as
            ``snakemake --configfile`` merges them (``snakemake.utils.update_config``), e.g.
            ``config/test/config.yaml``.
        overrides: top-level keys replaced after merging.

    Raises:
        ConfigError: missing file, bad YAML, or a schema violation (naming the field).
    """
    path = Path(path) if path else REPO_ROOT / "config" / "config.yaml"
    cfg = read_yaml(path) or {}
    if overlays:
        from snakemake.utils import update_config  # the pipeline's own merge semantics

        for extra in overlays:
            update_config(cfg, read_yaml(Path(extra)) or {})
    for k, v in (overrides or {}).items():
        cfg[k] = v
    return validate(cfg, load_schema("config.schema.yaml"), path)


def mlperf_mirror(cfg: dict[str, Any]) -> str | None:
    """The local MLPerf mirror folder: ``mlperf_mirror`` override, ``mlperf.mirror``, or
    the ``E3_MLPERF_MIRROR`` environment variable (first set wins); None means download."""
    return cfg.get("mlperf_mirror") or cfg.get("mlperf", {}).get("mirror") or os.environ.get("E3_MLPERF_MIRROR") or None


def config_hash(cfg: Any) -> str:
    """sha256 of the canonical (sorted-key) JSON form of a config object."""
    return sha256_hex(json.dumps(cfg, sort_keys=True, default=str))
