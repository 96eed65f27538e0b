"""Load and validate e3 configuration files against their JSON schemas (defaults filled in).

The schemas live in ``e3/schemas/`` so that the CLI and the Snakemake workflow validate with the
same file (the Snakefile calls ``snakemake.utils.validate`` on ``e3/schemas/config.schema.yaml``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from e3.errors import ConfigError

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


#: Sections under which ``--set`` may create a missing key (their keys are names: a policy's or a
#: controller's parameters are checked by the policy or controller itself).
_OPEN_SECTIONS = ("policies", "controllers")


def apply_sets(cfg: dict[str, Any], sets: list[str], source: str | Path = "--set") -> dict[str, Any]:
    """Apply ``KEY=VALUE`` assignments (``e3 simulate --set``) to ``cfg`` in place and return it.

    ``KEY`` is a dotted path (``workload.arrival_rate_per_s``, ``policies.e3.risk_penalty_ms``);
    ``VALUE`` is parsed as YAML (``0.15``, ``null``, ``[1, 2]``). The path must name an existing
    key, except under ``policies`` and ``controllers``; the result is validated against the schema
    by :func:`load_config` afterwards.

    Raises:
        ConfigError: no ``=``, an empty or unknown key, unparseable or NaN value.
    """
    for item in sets:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"{source}: {item!r} is not KEY=VALUE with a dotted KEY")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: field {key!r}: value {raw!r} is not valid YAML: {exc}") from None
        if isinstance(value, float) and value != value:
            raise ConfigError(f"{source}: field {key!r}: NaN is not accepted")
        node: Any = cfg
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: field {key!r}: {'.'.join(parts[:i])!r} is not a mapping")
            if part not in node and parts[0] in _OPEN_SECTIONS:
                node[part] = {}
            if part not in node:
                raise ConfigError(f"{source}: field {key!r}: unknown key {'.'.join(parts[:i + 1])!r}")
            node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: field {key!r}: {'.'.join(parts[:-1])!r} is not a mapping")
        if parts[-1] not in node and parts[0] not in _OPEN_SECTIONS and not _schema_knows(parts):
            raise ConfigError(f"{source}: field {key!r}: unknown key")
        node[parts[-1]] = value
    return cfg


def _schema_knows(parts: list[str]) -> bool:
    node = load_schema("config.schema.yaml")
    for part in parts:
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return False
    return True


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                overlays: list[str | Path] | None = None, sets: list[str] | None = None) -> dict[str, Any]:
    """Load ``config/config.yaml`` (or ``path``), merge ``overlays``, apply ``overrides`` and then
    ``sets`` (:func:`apply_sets`), validate, fill defaults.

    Args:
        overlays: further YAML files merged over the base in order, recursively, exactly as
            ``snakemake --configfile`` merges them (``snakemake.utils.update_config``), e.g.
            ``config/test/config.yaml``.
        overrides: top-level keys replaced after merging.
        sets: ``KEY=VALUE`` assignments with dotted keys (``e3 simulate --set``).

    Raises:
        ConfigError: missing file, bad YAML, a bad assignment, or a schema violation (naming the
            field).
    """
    path = Path(path) if path else REPO_ROOT / "config" / "config.yaml"
    cfg = read_yaml(path) or {}
    if overlays:
        from snakemake.utils import update_config  # the pipeline's own merge semantics

        for extra in overlays:
            update_config(cfg, read_yaml(Path(extra)) or {})
    for k, v in (overrides or {}).items():
        cfg[k] = v
    if sets:
        apply_sets(cfg, list(sets))
    return validate(cfg, load_schema("config.schema.yaml"), path)


def mlperf_mirror(cfg: dict[str, Any]) -> str | None:
    """The local MLPerf mirror folder: ``mlperf_mirror`` override, ``mlperf.mirror``, or
    the ``E3_MLPERF_MIRROR`` environment variable (first set wins); None means download."""
    return cfg.get("mlperf_mirror") or cfg.get("mlperf", {}).get("mirror") or os.environ.get("E3_MLPERF_MIRROR") or None


def config_hash(cfg: Any) -> str:
    """sha256 of the canonical (sorted-key) JSON form of a config object."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()
