"""Drawn events of the held-out event benchmark (issue 31): announcements and hidden effects.

A scenario with an ``events`` section (``config/scenarios/events.yaml``) does not list its events:
each run draws them from the section's rules and the catalogue (``config/events/catalogue.yaml``)
with its own seed stream, so ten seeds are ten different event sequences under one frozen rule.

An event has an announced window [``start_task``, ``end_task``) (absent for a silent one) and a
hidden effect window [``effect_start_task``, ``effect_end_task``) with a ``slowdown`` (absent for a
benign one, a false alarm). The effect is drawn independently of the type and of the wording, so
no text carries the answer; only telemetry (residuals) tells a harmful notice from a benign one.

This module is part of the kernel: it imports nothing above ``e3.sim``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

#: Announced classes and the silent one (catalogue ``known`` / ``held_out``; scenario ``classes``).
EVENT_CLASSES = ("known", "held_out", "silent")
#: Hidden effect kinds.
EFFECTS = ("harmful", "benign", "delayed", "silent")


@dataclass(frozen=True)
class DrawnEvent:
    """One event of one run.

    Attributes:
        index: position in the run's sequence (0-based, in time order).
        event_class: ``known``, ``held_out`` or ``silent``.
        event_type: catalogue type (``game``, ``firmware_update``, ...; ``silent`` for silent).
        device: the device concerned.
        start_task, end_task: announced window (arrival indices, [start, end)); for a silent event
            the effect's window (nothing is announced).
        effect: ``harmful``, ``benign`` (no slowdown), ``delayed`` or ``silent``.
        effect_start_task, effect_end_task: hidden slowdown window; equal (empty) when benign.
        slowdown: hidden multiplier on every service parameter of ``device`` (1.0 when benign).
        onset_text, end_text: the annotation labels (a known type's name; a held-out type's
            wording with the device filled in; "" for silent).
    """

    index: int
    event_class: str
    event_type: str
    device: str
    start_task: int
    end_task: int
    effect: str
    effect_start_task: int
    effect_end_task: int
    slowdown: float
    onset_text: str
    end_text: str

    @property
    def announced(self) -> bool:
        return self.event_class != "silent"

    @property
    def degrades(self) -> bool:
        return self.effect_end_task > self.effect_start_task and self.slowdown > 1.0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _uniform_int(rng: random.Random, lo_hi: list[int]) -> int:
    return rng.randint(int(lo_hi[0]), int(lo_hi[1]))


def draw_events(family: dict[str, Any], catalogue: dict[str, Any], devices: list[str],
                rng: random.Random) -> tuple[DrawnEvent, ...]:
    """Draw one run's events by the rules of a scenario's ``events`` section.

    Args:
        family: the scenario's validated ``events`` section (``first_task``, ``slot_tasks``,
            ``classes``, ``window_tasks``, ``informative_fraction``, ``delayed_fraction``,
            ``delay_tasks``, ``slowdown``).
        catalogue: the validated catalogue (``known``: type names; ``held_out``: type -> {onset:
            [wordings], end: wording}).
        devices: the devices events may hit (the pool's devices of ``device_kind``, pool order).
        rng: the run's own stream (``e3.seeds.stream(seed, "events", scenario)``).

    Returns:
        The events in time order, one per slot.

    Raises:
        ValueError: no device, or a delay that does not fit inside the shortest window.
    """
    if not devices:
        raise ValueError("draw_events: no device to place events on")
    if int(family["delay_tasks"][1]) >= int(family["window_tasks"][0]):
        raise ValueError(f"draw_events: delay_tasks {family['delay_tasks']} must end before the shortest window "
                         f"{family['window_tasks'][0]}")
    classes = [c for c in EVENT_CLASSES for _ in range(int(family["classes"].get(c, 0)))]
    rng.shuffle(classes)
    known, held_out = list(catalogue["known"]), sorted(catalogue["held_out"])
    out = []
    for i, cls in enumerate(classes):
        start = int(family["first_task"]) + i * int(family["slot_tasks"])
        end = start + _uniform_int(rng, family["window_tasks"])
        device = rng.choice(devices)
        slowdown = rng.uniform(float(family["slowdown"][0]), float(family["slowdown"][1]))
        # The effect is drawn before and apart from the wording: no text depends on it.
        if cls == "silent":
            effect, e_start = "silent", start
        elif rng.random() < float(family["informative_fraction"][cls]):
            delayed = rng.random() < float(family["delayed_fraction"])
            effect = "delayed" if delayed else "harmful"
            e_start = start + (_uniform_int(rng, family["delay_tasks"]) if delayed else 0)
        else:
            effect, e_start = "benign", start
        if cls == "known":
            etype = rng.choice(known)
            onset_text = end_text = etype
        elif cls == "held_out":
            etype = rng.choice(held_out)
            entry = catalogue["held_out"][etype]
            onset_text = rng.choice(list(entry["onset"])).format(device=device)
            end_text = str(entry["end"]).format(device=device)
        else:
            etype, onset_text, end_text = "silent", "", ""
        benign = effect == "benign"
        out.append(DrawnEvent(i, cls, etype, device, start, end, effect, e_start, e_start if benign else end,
                              1.0 if benign else slowdown, onset_text, end_text))
    return tuple(out)
