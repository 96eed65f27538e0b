"""The engines' lean salabim classes (:mod:`e3.sim.components`) against plain salabim.

:class:`LeanComponent` and :class:`QuietEnvironment` take short paths through ``hold``,
``activate``, ``passivate``, event removal and ``step`` (issue 11). Random programs of those calls,
run once on plain salabim classes (with :func:`quiet_component`'s lean status monitor, as the engines
had before) and once on the lean ones, must give the same events in the same
order, the same statuses and the same event list.
"""

from __future__ import annotations

import salabim as sim
from hypothesis import given, settings
from hypothesis import strategies as st

from e3.sim.components import LeanComponent, QuietEnvironment, quiet_component

sim.yieldless(False)

N_COMPONENTS = 4

# One step of a component's script: hold(duration), hold(till = now + dt), passivate(), or
# activate another component (now or at now + dt, urgent or not), then go on.
_steps = st.one_of(
    st.tuples(st.just("hold"), st.sampled_from([0, 0.0, 1, 2.5, 7.0]), st.sampled_from([0, 1, -1]), st.booleans()),
    st.tuples(st.just("till"), st.sampled_from([0.0, 1.0, 3.5])),
    st.tuples(st.just("passivate")),
    st.tuples(st.just("activate"), st.integers(0, N_COMPONENTS - 1), st.sampled_from([None, 0.0, 2.0, 4.5]),
              st.booleans()),
)
_programs = st.lists(st.lists(_steps, min_size=1, max_size=12), min_size=N_COMPONENTS, max_size=N_COMPONENTS)


def _run(lean: bool, programs: list[list[tuple]]) -> list:
    """Run the programs on plain or lean classes; return the log of events and the final state."""
    base = LeanComponent if lean else sim.Component
    env = (QuietEnvironment if lean else sim.Environment)(trace=False, random_seed=0, set_numpy_random_seed=False)
    log: list = []
    comps: list = []

    class Proc(base):
        def setup(self, index: int) -> None:
            self.index = index
            quiet_component(self)  # as the engines do, on both sides

        def process(self):
            for i, step in enumerate(programs[self.index]):
                log.append((env.now(), self.index, i, [c.status() for c in comps]))
                if step[0] == "hold":
                    yield self.hold(step[1], priority=step[2], urgent=step[3])
                elif step[0] == "till":
                    yield self.hold(till=env.now() + step[1])
                elif step[0] == "passivate":
                    yield self.passivate()
                else:
                    other = comps[step[1]]
                    if other is not self and other.status() != sim.salabim.data:
                        at = None if step[2] is None else env.now() + step[2]
                        other.activate(at=at, urgent=step[3])

    comps.extend(Proc(env=env, index=i, name=f"p{i}") for i in range(N_COMPONENTS))
    env.run(till=100)
    events = sorted((t, prio, seq, c.name()) for t, prio, seq, c, _ in env._event_list)
    return [log, env.now(), [(c.status(), c.status._ttally, c.scheduled_time(), getattr(c, "_remaining_duration", None)) for c in comps],
            events, env._seq]


@settings(max_examples=300, deadline=None)
@given(_programs)
def test_lean_classes_run_the_same_events_as_salabim(programs):
    assert _run(True, programs) == _run(False, programs)


def test_lean_component_falls_back_for_calls_off_the_short_path():
    """A mode, a callable duration or a time in the past go through salabim's own methods."""
    env = QuietEnvironment(trace=False, random_seed=0, set_numpy_random_seed=False)
    seen = []

    class Proc(LeanComponent):
        def setup(self) -> None:
            quiet_component(self)

        def process(self):
            yield self.hold(lambda: 2.0, mode="waiting")
            seen.append((env.now(), self.mode()))
            yield self.hold(till=env.now() - 1.0, cap_now=True)
            seen.append(env.now())

    Proc(env=env)
    env.run(till=10)
    assert seen == [(2.0, "waiting"), 2.0]
