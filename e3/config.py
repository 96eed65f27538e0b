"""Load and validate e3 configuration files against their JSON schemas (defaults filled in).

The schemas live in ``e3/schemas/`` so that the CLI and the Snakemake workflow validate with the
same file (the Snakefile calls ``snakemake.utils.validate`` on ``e3/schemas/config.schema.yaml``).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from e3.errors import ConfigError
from e3.io import sha256_hex


def project_root(cwd: Path | None = None, install: Path | None = None) -> Path:
    """The e3 checkout whose files a run reads: ``$E3_ROOT`` if set, else the working folder or
    its nearest ancestor holding both ``Snakefile`` and ``config/config.yaml`` (the clone you run
    in is the clone you read, even when several clones share one environment: issue 33, defect
    2), else the folder e3 is installed from.

    Raises:
        ConfigError: ``$E3_ROOT`` is set but holds no ``config/config.yaml``.
    """
    env = os.environ.get("E3_ROOT")
    if env:
        root = Path(env).resolve()
        if not (root / "config" / "config.yaml").is_file():
            raise ConfigError(f"E3_ROOT={env!r}: no config/config.yaml there")
        return root
    here = (cwd or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "Snakefile").is_file() and (d / "config" / "config.yaml").is_file():
            return d
    return install or Path(__file__).resolve().parent.parent


#: Root of the checkout being run (config, scenario, priors and LLM reply paths are relative to it).
REPO_ROOT = project_root()


#: libyaml's safe loader when PyYAML was built with it (same documents, ~10x faster), else PyYAML's.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(name: str) -> dict[str, Any]:
    """Return the schema ``e3/schemas/{name}`` (YAML or JSON) as a dict (a fresh copy each call;
    the file is parsed once per process: a batch validates many configs)."""
    return copy.deepcopy(_parsed_schema(name))


@functools.cache
def _parsed_schema(name: str) -> dict[str, Any]:
    text = resources.files("e3.schemas").joinpath(name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_SafeLoader)


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


def non_finite_fields(instance: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(dotted field path, value) of every NaN or infinite float inside ``instance``.

    JSON Schema cannot reject them: every comparison with NaN is false, so ``.nan`` passes
    ``exclusiveMinimum: 0``, and ``.inf`` passes any minimum.
    """
    if isinstance(instance, float):
        return [] if math.isfinite(instance) else [(prefix or "(top level)", instance)]
    if isinstance(instance, dict):
        items = instance.items()
    elif isinstance(instance, (list, tuple)):
        items = enumerate(instance)
    else:
        return []
    return [hit for k, v in items for hit in non_finite_fields(v, f"{prefix}.{k}" if prefix else str(k))]


def validate(instance: Any, schema: dict[str, Any], source: str | Path) -> Any:
    """Validate ``instance`` in place (filling schema defaults) and return it.

    Raises:
        ConfigError: naming ``source``, the JSON path of the field and the offending value;
            NaN and infinities are rejected by name before the schema is applied.
    """
    bad = non_finite_fields(instance)
    if bad:
        field, value = bad[0]
        name = "NaN" if math.isnan(value) else ("infinity" if value > 0 else "-infinity")
        raise ConfigError(f"{source}: field {field!r}: {name} is not allowed; give a finite number")
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
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
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
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: field '(top level)': a config is a YAML mapping, got {type(cfg).__name__}")
    if overlays:
        from snakemake.utils import update_config  # the pipeline's own merge semantics

        for extra in overlays:
            update_config(cfg, read_yaml(Path(extra)) or {})
    for k, v in (overrides or {}).items():
        cfg[k] = v
    if sets:
        apply_sets(cfg, list(sets))
    validate(cfg, load_schema("config.schema.yaml"), path)
    check_sub_schemas(cfg, path)
    check_references(cfg, path)
    return cfg


#: Config sections whose full schema lives in a file of its own (the third system's); the main
#: schema only says they are objects. Checked here too, so a bad value fails before any run.
SUB_SCHEMAS = {"placement": "placement.schema.yaml"}


def check_sub_schemas(cfg: dict[str, Any], source: str | Path) -> None:
    """Validate each :data:`SUB_SCHEMAS` section present in ``cfg`` (on a copy: no defaults are
    filled into ``cfg``, so hashes do not change).

    Raises:
        ConfigError: naming ``source`` and the field as ``SECTION.path``, and the value.
    """
    for key, schema in SUB_SCHEMAS.items():
        if key not in cfg:
            continue
        errors = sorted(_Validator(load_schema(schema)).iter_errors(copy.deepcopy(cfg[key])),
                        key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            field = ".".join([key, *(str(x) for x in e.absolute_path)])
            raise ConfigError(f"{source}: field {field!r}: {e.message}")


#: Which ``truth.mismatch`` factors apply to a device of each task kind (Eq. 1 / Eq. 2).
MISMATCH_PARAMETERS = {"llm": ("alpha", "beta"), "sdxl": ("c",)}


def pool_kinds(cfg: dict[str, Any]) -> dict[str, str]:
    """Pool device name -> task kind (``llm``/``sdxl``), from the config alone (no priors)."""
    from e3.mlperf.rounds import BENCHMARKS

    return {e["name"]: BENCHMARKS[e["benchmark"]] for e in cfg["pool"]}


def check_references(cfg: dict[str, Any], source: str | Path) -> None:
    """Every config entry that names a pool device or a model parameter must match one.

    Checks ``truth.mismatch`` (devices of the pool; ``alpha``/``beta`` for an LLM device, ``c``
    for an SDXL one) and ``pool[*].scenario`` (the simulator's priors are SingleStream latencies).

    Raises:
        ConfigError: naming ``source``, the field and the value.
    """
    kinds = pool_kinds(cfg)
    for i, e in enumerate(cfg["pool"]):
        if e.get("scenario", "SingleStream") != "SingleStream":
            raise ConfigError(f"{source}: field 'pool.{i}.scenario': {e['scenario']!r}: the simulator's "
                              "Eq. 1/Eq. 2 priors are SingleStream latencies (TTFT, TPOT, p99); "
                              f"{e['scenario']} records carry throughput only. Use SingleStream")
    for dev, factors in cfg.get("truth", {}).get("mismatch", {}).items():
        if dev not in kinds:
            raise ConfigError(f"{source}: field 'truth.mismatch.{dev}': unknown device {dev!r}; "
                              f"pool devices: {sorted(kinds)}")
        allowed = MISMATCH_PARAMETERS[kinds[dev]]
        for k in factors:
            if k not in allowed:
                raise ConfigError(f"{source}: field 'truth.mismatch.{dev}.{k}': {dev} is an "
                                  f"{kinds[dev]} device; its factors are {list(allowed)}")


def config_hash(cfg: Any) -> str:
    """sha256 of the canonical (sorted-key) JSON form of a config object."""
    return sha256_hex(json.dumps(cfg, sort_keys=True, default=str))
