"""salabim components without monitors: what both engines (:mod:`e3.sim.engine`, the E3 dispatch
model, and :mod:`e3.fairness.engine`, the fairness and placement model) do to every long-lived
component they create.

salabim keeps a level monitor of every status change per component by default: a list that grows
with the horizon, and several interpreter steps per event. :func:`quiet_component` switches the
monitors off and swaps in :class:`LeanStatusMonitor`, so memory stays flat in the number of tasks
and each event costs less. :class:`QuietEnvironment` is the environment both engines create per run,
without the animation texts salabim builds for every environment; :class:`LeanComponent` is the base
of their components. Both take short paths through salabim's scheduling for the calls the engines
make. None of these changes a state or the order of events (tests/test_components.py).
"""

from __future__ import annotations

import heapq
from math import inf

import salabim as sim

from e3.sim import salabim_patch

salabim_patch.apply()  # salabim's per-run frame lookup and per-component signature checks (see there)


class LeanStatusMonitor(sim.salabim._StatusMonitor):
    """salabim's status monitor with monitoring off, minus the per-change bookkeeping.

    salabim sets ``status._value`` several times per event; with the monitor off, its ``tally``
    only stores the value and its time (after clearing a statistics cache and checking for the
    reserved "off" value, which no status takes). This does just that: same states, same event
    order, fewer interpreter steps per event.
    """

    @property
    def _value(self):
        return self._tally

    @_value.setter
    def _value(self, value) -> None:
        self._tally = value
        self._ttally = self.env._now


# salabim's status values (module constants there); compared by value, as salabim does.
_CURRENT, _DATA, _PASSIVE, _SCHEDULED = sim.salabim.current, sim.salabim.data, sim.salabim.passive, sim.salabim.scheduled


class QuietEnvironment(sim.Environment):
    """A salabim ``Environment`` that draws no model name and no clock, and steps through its
    event list on a short path (:meth:`step`).

    salabim builds three animation objects for the model name and one for the clock in every
    environment, animated or not; ``an_modelname`` and ``an_clocktext`` are the hooks salabim
    documents for changing that ("may be overridden"). The engines never animate and create one
    environment per run, where those objects were about 3 % of an operating-point job (py-spy).
    """

    def an_modelname(self) -> None:
        """No model-name text (the engines never animate)."""

    def an_clocktext(self) -> None:
        """No clock text (the engines never animate)."""

    def step(self) -> None:
        """salabim's ``Environment.step`` for the one case the engines run: no user interface, no
        trace, generator processes (not yieldless), no standby components, a non-empty event list.
        The same event is popped (the heap's smallest (time, priority, seq)) and the same state
        set in the same order; anything else goes to salabim's own ``step``. About a fifth of the
        event loop's cost was salabim's general-case checks (issue 11; benchmarks/PROFILE.md)."""
        lst = self._event_list
        if (self._ui or self._trace or self._yieldless or self._pendingstandbylist or self._standbylist
                or not lst or self._current_component._skip_standby):
            return super().step()
        t, _, _, c, return_value = heapq.heappop(lst)
        c._on_event_list = False
        self._now = t
        self._current_component = c
        st = c.status
        if st.__class__ is LeanStatusMonitor:
            st._tally = _CURRENT
            st._ttally = t
        else:
            st._value = _CURRENT
        c._scheduled_time = inf
        if c is self._main:
            self.running = False
            return
        if c._requests or c._waits or c._from_stores or c._to_stores:
            c._check_fail()
        try:
            if c._process_isgenerator:
                try:
                    try:
                        c._process.send(return_value)
                    except TypeError as e:
                        if "just-started" in str(e):  # salabim's rule for a generator's first send
                            c._process.send(None)
                        else:
                            raise e
                except StopIteration:
                    self._terminate(c)
            else:
                c._process(**c._process_kwargs)
                self._terminate(c)
        except Exception as e:
            if self._animate:
                self.an_quit()
            raise e


class LeanComponent(sim.Component):
    """A salabim ``Component`` whose ``hold``, ``activate``, ``passivate`` and event-list removal
    take a short path for the calls the engines make: no mode, no trace, not yieldless, plain
    numbers for times, a :class:`LeanStatusMonitor` (see :func:`quiet_component`). The short path
    makes the same state changes in the same order and pushes the same (time, priority, seq)
    entry; every other call is salabim's own method. Tested against plain salabim components
    (tests/test_components.py)."""

    def hold(self, duration=None, till=None, priority=0, urgent=False, mode=None, interrupted=False, cap_now=None):
        """salabim's ``Component.hold`` (time units: the environment's, ms here); see the class."""
        env, st = self.env, self.status
        if (mode is not None or interrupted or env._trace or env._yieldless or st.__class__ is not LeanStatusMonitor
                or st._tally != _CURRENT or (duration is None) == (till is None)):
            return super().hold(duration, till, priority, urgent, mode, interrupted, cap_now)
        now = env._now
        if till is None:
            if not isinstance(duration, (int, float)):
                return super().hold(duration, till, priority, urgent, mode, interrupted, cap_now)
            scheduled_time = now + float(duration)
        else:
            if not isinstance(till, (int, float)):
                return super().hold(duration, till, priority, urgent, mode, interrupted, cap_now)
            scheduled_time = float(till) + env._offset
        if scheduled_time < now:  # salabim's cap_now rule or its ValueError
            return super().hold(duration, till, priority, urgent, mode, interrupted, cap_now)
        st._tally = _SCHEDULED
        st._ttally = now
        self._scheduled_time = scheduled_time
        self._push(scheduled_time, priority, urgent)

    def activate(self, at=None, delay=0, priority=0, urgent=False, process=None, keep_request=False,
                 keep_wait=False, mode=None, cap_now=None, **kwargs):
        """salabim's ``Component.activate`` (time units: the environment's, ms here); see the class."""
        env, st = self.env, self.status
        if (process is not None or kwargs or mode is not None or env._trace or env._yieldless
                or st.__class__ is not LeanStatusMonitor or st._tally == _DATA
                or not (at is None or isinstance(at, (int, float))) or not isinstance(delay, (int, float))):
            return super().activate(at, delay, priority, urgent, process, keep_request, keep_wait, mode, cap_now,
                                    **kwargs)
        now = env._now
        scheduled_time = now + float(delay) if at is None else float(at) + env._offset + float(delay)
        if scheduled_time < now:  # salabim's cap_now rule or its ValueError
            return super().activate(at, delay, priority, urgent, process, keep_request, keep_wait, mode, cap_now,
                                    **kwargs)
        if st._tally != _CURRENT:
            self._remove()
            if not (keep_request or keep_wait) and (self._requests or self._waits or self._from_stores
                                                    or self._to_stores):
                self._check_fail()
        st._tally = _SCHEDULED
        st._ttally = now
        self._scheduled_time = scheduled_time
        self._push(scheduled_time, priority, urgent)

    def passivate(self, mode=None) -> None:
        """salabim's ``Component.passivate``; see the class."""
        env, st = self.env, self.status
        if mode is not None or env._trace or env._yieldless or st.__class__ is not LeanStatusMonitor or st._tally != _CURRENT:
            return super().passivate(mode)
        self._remaining_duration = 0.0
        self._scheduled_time = inf
        st._tally = _PASSIVE
        st._ttally = env._now

    def _push(self, t, priority, urgent, return_value=None, switch=True) -> None:
        env = self.env
        if env._yieldless:
            return super()._push(t, priority, urgent, return_value, switch)
        if t != inf:
            env._seq += 1
            seq = -env._seq if urgent else env._seq
            self._on_event_list = True
            heapq.heappush(env._event_list, (t, priority, seq, self, return_value))

    def _remove(self) -> None:
        # salabim's removal (the same entry replaced the same way, so the same heap afterwards),
        # with an identity scan instead of indexing the event list through attributes per entry.
        if self._on_event_list:
            lst = self.env._event_list
            for i, entry in enumerate(lst):
                if entry[3] is self:
                    lst[i] = lst[0]
                    lst.pop(0)
                    heapq.heapify(lst)
                    self._on_event_list = False
                    return
        super()._remove()


def quiet_component(comp: sim.Component) -> None:
    """Switch off ``comp``'s status and mode monitors and make its status monitor lean.

    Call it in the component's ``setup``, before its first event. Salabim's own status monitor
    class is the only one replaced (a subclass someone set is left alone).
    """
    comp.status.monitor(False)
    comp.mode.monitor(False)
    if type(comp.status) is sim.salabim._StatusMonitor and not comp.status._monitor:
        comp.status.__class__ = LeanStatusMonitor


class CallbackTimers(LeanComponent):
    """One salabim component that runs timed callbacks in (time, push order): the fairness
    engine's network deliveries and pod life-cycle steps, and every event of the placement
    engine. A component per event costs far more in salabim (see :mod:`e3.sim.engine`).

    ``push(at_ms, fn, *args)`` schedules ``fn(*args)``; callbacks due at the same time run in the
    order they were pushed, and one pushed for the current time by a running callback runs before
    the clock moves on.
    """

    def setup(self) -> None:
        self.heap: list[tuple] = []
        self.seq = 0
        self.running = False
        quiet_component(self)

    def push(self, at_ms: float, fn, *args) -> None:
        """Schedule ``fn(*args)`` at simulated time ``at_ms`` (>= now)."""
        heapq.heappush(self.heap, (at_ms, self.seq, fn, args))
        self.seq += 1
        if not self.running and self.heap[0][1] == self.seq - 1:
            self.activate(at=at_ms)  # the new event is the earliest: wake for it

    def process(self):
        while True:
            while self.heap and self.heap[0][0] <= self.env.now():
                _, _, fn, args = heapq.heappop(self.heap)
                self.running = True
                fn(*args)
                self.running = False
            if self.heap:
                yield self.hold(till=self.heap[0][0])
            else:
                yield self.passivate()

