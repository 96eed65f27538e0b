"""Scenarios: declarative event plans in ``config/scenarios/*.yaml`` (paper section 4.1).

* ``semantic``: windows of hidden slowdown on a device; onset/offset are exposed to the
  controller as coarse annotations, the magnitude is not. Tasks dispatched to a device inside a
  window stutter (Eq. 3).
* ``churn``: a device leaves the feasible set and later returns.
* ``drift``: a hidden step slowdown of one LLM device (alpha and beta), later restored; never exposed.
* ``warmup_budget_tasks``: tasks during which the e3 agent explores and calibrates fast.
* ``workload``: overrides of the config's ``workload`` (e.g. a trace replay, ``arrivals:
  trace``), checked against the config schema's ``workload`` and merged by :func:`scenario_workload`.

A user adds a scenario by adding one YAML file; it is validated against
``e3/schemas/scenario.schema.yaml`` and then against the device pool.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from e3.config import REPO_ROOT, load_schema, read_yaml, validate
from e3.errors import ConfigError, did_you_mean
from e3.scenario_files import ScenarioFolder

SCENARIO_DIR = REPO_ROOT / "config" / "scenarios"


@dataclass(frozen=True)
class SemanticWindow:
    """Hidden slowdown of ``device`` for tasks [start_task, end_task); annotated on/offset."""

    device: str
    start_task: int
    end_task: int
    label: str
    slowdown: float


@dataclass(frozen=True)
class ChurnWindow:
    """``device`` is unavailable from ``leave_task`` until ``return_task``."""

    device: str
    leave_task: int
    return_task: int


@dataclass(frozen=True)
class DriftWindow:
    """Hidden multiplier ``factor`` on an LLM device's alpha and beta for [start_task, end_task)."""

    device: str
    start_task: int
    end_task: int
    factor: float


@dataclass(frozen=True)
class Scenario:
    """A validated event plan. See the module docstring for the semantics."""

    name: str
    description: str
    block: str = "other"
    setting: str = ""
    warmup_budget_tasks: int = 0
    semantic: tuple[SemanticWindow, ...] = field(default_factory=tuple)
    churn: tuple[ChurnWindow, ...] = field(default_factory=tuple)
    drift: tuple[DriftWindow, ...] = field(default_factory=tuple)
    source: str = ""
    workload: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: a drawn event family (``events`` section, :mod:`e3.sim.events`) with its catalogue under
    #: ``catalogue_content``; empty for a listed plan
    events: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (for hashing and provenance). ``workload`` appears only when set, so
        the scenarios that have none hash as they did before it existed."""
        from dataclasses import asdict

        d = asdict(self)
        for optional in ("workload", "events"):
            if not d[optional]:
                d.pop(optional)
        return d

    def content_hash(self) -> str:
        """sha256 of the plan's content: everything but ``source`` (the file's path), so two
        clones in different folders give the same hash (``summary.json`` ``scenario_hash``)."""
        from e3.config import config_hash

        return config_hash({k: v for k, v in self.to_dict().items() if k != "source"})


def horizon_warnings(scenario: Scenario, horizon_tasks: int) -> list[str]:
    """One line per event of ``scenario`` that starts at or after the horizon (it has no effect).

    Such an event is legal (e.g. the CI config shortens the horizon of the paper's plans), but a
    silent no-op misleads, so :func:`e3.experiment.run.build_simulation` prints these lines.
    """
    out = []
    for kind, start_field in (("semantic", "start_task"), ("churn", "leave_task"), ("drift", "start_task")):
        for i, ev in enumerate(getattr(scenario, kind)):
            start = getattr(ev, start_field)
            if start >= horizon_tasks:
                out.append(f"{scenario.source or scenario.name}: field '{kind}.{i}.{start_field}': "
                           f"the event starts at task {start}, at or after the {horizon_tasks}-task "
                           f"horizon; it has no effect in this run")
    if scenario.events and scenario.events["horizon_end_task"] > horizon_tasks:
        out.append(f"{scenario.source or scenario.name}: field 'events': the drawn events may run to task "
                   f"{scenario.events['horizon_end_task']}, past the {horizon_tasks}-task horizon; the later "
                   "ones have no (or a cut) effect in this run")
    return out


#: E3's scenario files (one home for the helpers: e3.scenario_files)
SCENARIOS = ScenarioFolder(SCENARIO_DIR)
scenario_path = SCENARIOS.path


def available_scenarios(folder: Path = SCENARIO_DIR) -> list[str]:
    """Names of the scenario files in ``folder`` (default: E3's)."""
    return ScenarioFolder(folder).names()


def _check_windows(src: str, kind: str, items: list[tuple[int, int, str, int]]) -> None:
    # items: (start, end, device, index); end must follow start; same-device windows must not overlap.
    for start, end, _dev, i in items:
        if end <= start:
            raise ConfigError(f"{src}: field '{kind}.{i}': end ({end}) must be after start ({start})")
    by_dev: dict[str, list[tuple[int, int, int]]] = {}
    for start, end, dev, i in items:
        by_dev.setdefault(dev, []).append((start, end, i))
    for dev, ws in by_dev.items():
        ws.sort()
        for (s1, e1, i1), (s2, e2, i2) in zip(ws, ws[1:], strict=False):
            if s2 < e1:
                raise ConfigError(f"{src}: field '{kind}.{i2}': window [{s2}, {e2}) on {dev} overlaps "
                                  f"'{kind}.{i1}' [{s1}, {e1})")


# The task whose prior service time ranks devices for `order: fastest` (scenario schema
# $defs.device): mid-range of the paper's token bins (input 128..2048, output 32..256).
RANK_TASK_TOKENS = (1024, 128)


def select_devices(src: str, field_name: str, rule: dict[str, Any], device_kinds: dict[str, str],
                   rank_ms: dict[str, float] | None = None) -> list[str]:
    """Devices chosen by a selector rule ``{kind, fraction, offset, order}`` (scenario schema
    ``$defs.device``).

    Of the ``n`` devices of ``kind``, in pool order (``order: pool``, the default) or by ascending
    ``rank_ms`` (``order: fastest``; ties keep pool order), those from index ``floor(offset * n)``,
    count ``max(1, round(fraction * n))``. Windows at disjoint offsets hit disjoint devices.

    Args:
        rank_ms: device -> prior service time (ms) of the :data:`RANK_TASK_TOKENS` task (Eq. 1/2);
            needed only by ``order: fastest``.

    Raises:
        ConfigError: the pool has no device of that kind, the selection runs past its end, or
            ``order: fastest`` without ``rank_ms``.
    """
    import math

    devs = [d for d, k in device_kinds.items() if k == rule["kind"]]
    if not devs:
        raise ConfigError(f"{src}: field {field_name!r}: the pool has no {rule['kind']} device")
    if rule.get("order", "pool") == "fastest":
        if rank_ms is None:
            raise ConfigError(f"{src}: field {field_name}.order: 'fastest' ranks devices by their priors, "
                              "which this caller did not give (load the scenario with the pool's priors)")
        devs = sorted(devs, key=lambda d: rank_ms[d])  # stable: ties stay in pool order
    start = math.floor(rule.get("offset", 0.0) * len(devs))
    count = max(1, round(rule["fraction"] * len(devs)))
    if start + count > len(devs):
        raise ConfigError(f"{src}: field {field_name!r}: offset {rule.get('offset', 0.0)} + fraction "
                          f"{rule['fraction']} selects devices {start}..{start + count - 1} of {len(devs)} "
                          f"{rule['kind']} devices")
    return devs[start:start + count]


def _expand_selectors(src: str, raw: dict[str, Any], device_kinds: dict[str, str],
                      rank_ms: dict[str, float] | None) -> None:
    # Replace each window whose device is a selector rule by one window per selected device.
    for kind in ("semantic", "churn", "drift"):
        out = []
        for i, ev in enumerate(raw[kind]):
            if isinstance(ev["device"], dict):
                out += [{**ev, "device": d} for d in select_devices(src, f"{kind}.{i}.device", ev["device"], device_kinds,
                                                                    rank_ms)]
            else:
                out.append(ev)
        raw[kind] = out


def _rescale(raw: dict[str, Any], horizon_tasks: int) -> None:
    # Plans with reference_horizon_tasks: k -> round(k * H / reference), windows kept non-empty.
    ref = raw["reference_horizon_tasks"]

    def k(x: int) -> int:
        return round(x * horizon_tasks / ref)

    raw["warmup_budget_tasks"] = k(raw["warmup_budget_tasks"])
    for kind, (a, b) in (("semantic", ("start_task", "end_task")), ("drift", ("start_task", "end_task")),
                         ("churn", ("leave_task", "return_task"))):
        for ev in raw[kind]:
            ev[a], ev[b] = k(ev[a]), max(k(ev[b]), k(ev[a]) + 1)


def load_scenario(name_or_path: str | Path, device_kinds: dict[str, str],
                  horizon_tasks: int | None = None, rank_ms: dict[str, float] | None = None) -> Scenario:
    """Load, schema-validate and pool-check a scenario.

    Args:
        name_or_path: scenario name (file in ``config/scenarios``) or a YAML path.
        device_kinds: pool device name -> ``"llm"``/``"sdxl"``, in pool order (device selector
            rules pick by this order).
        horizon_tasks: the run's horizon; plans with ``reference_horizon_tasks`` are rescaled to
            it (None: the plan as written, at its reference horizon).
        rank_ms: device -> prior service time of the :data:`RANK_TASK_TOKENS` task (ms), for
            selectors with ``order: fastest`` (:func:`select_devices`).

    Raises:
        ConfigError: missing file, schema violation (e.g. a negative time, NaN), a ``name`` that
            differs from the file's name, an unknown device, an end before its start,
            overlapping windows on one device, drift on a non-LLM device, or churn that leaves a
            task kind with no device at some point.
    """
    path = scenario_path(name_or_path)
    if not path.is_file():
        raise ConfigError(f"{path}: scenario not found{did_you_mean(Path(path).stem, available_scenarios())}; "
                          f"available: {available_scenarios()}")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: field '(top level)': a scenario is a YAML mapping, got {type(raw).__name__}")
    raw = validate(raw, load_schema("scenario.schema.yaml"), path)
    src = str(path)
    if raw["name"] != path.stem:  # the sweep, the run folders and the tables key on the file name
        raise ConfigError(f"{src}: field 'name': {raw['name']!r} differs from the file name "
                          f"{path.stem!r}; rename one so they agree")
    if raw.get("reference_horizon_tasks") and horizon_tasks is not None:
        _rescale(raw, horizon_tasks)  # without a horizon the plan stays as written
    _expand_selectors(src, raw, device_kinds, rank_ms)
    for kind in ("semantic", "churn", "drift"):
        for i, ev in enumerate(raw[kind]):
            if ev["device"] not in device_kinds:
                raise ConfigError(f"{src}: field '{kind}.{i}.device': unknown device {ev['device']!r}; "
                                  f"pool devices: {sorted(device_kinds)}")
    for i, ev in enumerate(raw["drift"]):
        if device_kinds[ev["device"]] != "llm":
            raise ConfigError(f"{src}: field 'drift.{i}.device': drift applies to LLM devices; "
                              f"{ev['device']!r} is {device_kinds[ev['device']]}")
    _check_windows(src, "semantic", [(e["start_task"], e["end_task"], e["device"], i) for i, e in enumerate(raw["semantic"])])
    _check_windows(src, "churn", [(e["leave_task"], e["return_task"], e["device"], i) for i, e in enumerate(raw["churn"])])
    _check_windows(src, "drift", [(e["start_task"], e["end_task"], e["device"], i) for i, e in enumerate(raw["drift"])])
    # Every task kind must keep at least one available device at every task index.
    for kind in set(device_kinds.values()):
        devs = {d for d, k in device_kinds.items() if k == kind}
        edges = sorted({e["leave_task"] for e in raw["churn"]} | {e["return_task"] for e in raw["churn"]})
        for t in edges:
            away = {e["device"] for e in raw["churn"] if e["leave_task"] <= t < e["return_task"]}
            if devs <= away:
                raise ConfigError(f"{src}: field 'churn': at task {t} every {kind} device is away "
                                  f"({sorted(devs)}); {kind} tasks could not be served")
    if "workload" in raw:
        _check_workload_overrides(src, raw["workload"])
    events = _load_event_family(src, raw["events"], device_kinds) if "events" in raw else {}
    return Scenario(
        name=raw["name"], description=raw["description"], block=raw["block"],
        setting=str(raw.get("setting", raw["name"])), warmup_budget_tasks=raw["warmup_budget_tasks"],
        semantic=tuple(SemanticWindow(**e) for e in raw["semantic"]),
        churn=tuple(ChurnWindow(**e) for e in raw["churn"]),
        drift=tuple(DriftWindow(**e) for e in raw["drift"]),
        source=src, workload=copy.deepcopy(raw.get("workload", {})), events=events,
    )


def _load_event_family(src: str, family: dict[str, Any], device_kinds: dict[str, str]) -> dict[str, Any]:
    # The section with its catalogue's content folded in (so the scenario hash covers the
    # wording) and the devices it may hit; the per-run draw is e3.sim.events.draw_events.
    for key in ("window_tasks", "delay_tasks", "slowdown"):
        lo, hi = family[key]
        if hi < lo:
            raise ConfigError(f"{src}: field 'events.{key}': high ({hi}) below low ({lo})")
    n = sum(family["classes"].values())
    if n < 1:
        raise ConfigError(f"{src}: field 'events.classes': no event to draw")
    if family["window_tasks"][1] > family["slot_tasks"]:
        raise ConfigError(f"{src}: field 'events.window_tasks': a window of up to {family['window_tasks'][1]} tasks "
                          f"does not fit a slot of {family['slot_tasks']}; windows would overlap")
    if family["delay_tasks"][1] >= family["window_tasks"][0]:
        raise ConfigError(f"{src}: field 'events.delay_tasks': a delay of up to {family['delay_tasks'][1]} tasks "
                          f"must end before the shortest window ({family['window_tasks'][0]} tasks)")
    devices = [d for d, k in device_kinds.items() if k == family["device_kind"]]
    if not devices:
        raise ConfigError(f"{src}: field 'events.device_kind': the pool has no {family['device_kind']} device")
    cat_path = Path(family["catalogue"])
    if not cat_path.is_absolute():
        cat_path = REPO_ROOT / cat_path
    if not cat_path.is_file():
        raise ConfigError(f"{src}: field 'events.catalogue': {cat_path} not found")
    catalogue = validate(read_yaml(cat_path), load_schema("event_catalogue.schema.yaml"), cat_path)
    return {**copy.deepcopy(family), "devices": devices, "catalogue_content": catalogue,
            # the last slot's announced window ends by then (windows fit their slots)
            "horizon_end_task": family["first_task"] + (n - 1) * family["slot_tasks"] + family["window_tasks"][1]}


def _workload_schema() -> dict[str, Any]:
    return load_schema("config.schema.yaml")["properties"]["workload"]


def _check_workload_overrides(src: str, overrides: dict[str, Any]) -> None:
    # Partial: no field is required here and no default is filled in (the config supplies the
    # rest); the merged workload is validated in full by scenario_workload.
    schema = copy.deepcopy(_workload_schema())
    schema.pop("required", None)
    schema["properties"]["trace"].pop("required", None)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(overrides), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(["workload"] + [str(p) for p in e.absolute_path])
        raise ConfigError(f"{src}: field {where!r}: {e.message}")


def scenario_workload(cfg_workload: dict[str, Any], sc: Scenario) -> dict[str, Any]:
    """The config's ``workload`` with the scenario's overrides applied (``trace`` merged key by
    key), validated against the config schema with defaults filled in.

    Raises:
        ConfigError: the merged workload does not validate, names a NaN or infinite trace value,
            or has ``arrivals: trace`` without a ``trace`` section.
    """
    w = copy.deepcopy(cfg_workload)
    for k, v in sc.workload.items():
        w[k] = {**w.get(k, {}), **v} if k == "trace" and isinstance(v, dict) else copy.deepcopy(v)
    src = f"{sc.source or sc.name} (workload merged over the config's)"
    validate(w, _workload_schema(), src)
    if w["arrivals"] == "trace" and "trace" not in w:
        raise ConfigError(f"{src}: field 'workload.trace': arrivals is 'trace' but no trace is given")
    for k, v in w.get("trace", {}).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{src}: field 'workload.trace.{k}': must be finite (value: {v!r})")
    return w
